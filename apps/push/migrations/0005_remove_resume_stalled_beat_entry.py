"""The beat entry of the removed task push.resume_stalled goes from django-celery-beat's table.

CELERY_BEAT_SCHEDULE no longer names it, but the DatabaseScheduler only adds and updates the rows
of the entries it is given: a deployment that ran it keeps its row, and beat would keep sending a
task no worker registers. Reverse: nothing to restore (the task is gone)."""

from django.db import migrations
from django.utils import timezone

REMOVED_TASK = "push.resume_stalled"


def delete_resume_stalled(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    deleted, _ = PeriodicTask.objects.filter(task=REMOVED_TASK).delete()
    if deleted:
        # What PeriodicTasks.update_changed does from the model's signals, which a migration's
        # historical model does not send: a running beat reloads its schedule.
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):

    dependencies = [
        ('push', '0004_delivery_engine_cleanup'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.RunPython(delete_resume_stalled, migrations.RunPython.noop),
    ]
