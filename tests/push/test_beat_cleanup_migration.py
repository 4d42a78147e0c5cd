"""Migration push 0005 deletes the beat entry of the removed task push.resume_stalled."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

BEFORE, AFTER = [("push", "0004_delivery_engine_cleanup")], [("push", "0005_remove_resume_stalled_beat_entry")]


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)


@pytest.mark.django_db(transaction=True)
def test_the_resume_stalled_entry_is_deleted_and_the_others_kept():
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    try:
        migrate(BEFORE)
        # As an older deployment's DatabaseScheduler left it (name from the old CELERY_BEAT_SCHEDULE).
        PeriodicTask.objects.create(name="push-resume-stalled", task="push.resume_stalled", interval=every_minute)
        PeriodicTask.objects.create(name="delivery-sweep", task="delivery.sweep", interval=every_minute)
        PeriodicTasks.objects.filter(ident=1).delete()
    finally:
        migrate(AFTER)

    assert list(PeriodicTask.objects.values_list("task", flat=True)) == ["delivery.sweep"]
    # A running beat sees the change (the model's signals do not run in a migration).
    assert PeriodicTasks.last_change() is not None
    assert IntervalSchedule.objects.filter(pk=every_minute.pk).exists()  # shared schedules stay
