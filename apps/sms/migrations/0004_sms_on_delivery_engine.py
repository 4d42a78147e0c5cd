"""SMS deliveries and attempts take the delivery engine's common shape (apps.delivery.models):
`claims` becomes `tries`, a delivery gets `max_tries` and a lease, an attempt its overall try
`number`, `task_id` (was `celery_task_id`), HTTP status and response excerpt. Data-safe: renames
and new columns; existing rows get their values below."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

import apps.delivery.models


def fill(apps, schema_editor):
    SmsDelivery = apps.get_model("sms", "SmsDelivery")
    SmsAttempt = apps.get_model("sms", "SmsAttempt")
    # Both providers get OUTBOUND_MAX_TRIES tries each.
    SmsDelivery.objects.update(max_tries=2 * settings.OUTBOUND_MAX_TRIES)
    pending = SmsDelivery.objects.filter(status="pending")
    # NULL used to mean "due now"; the engine reads a due time.
    pending.filter(next_attempt_at__isnull=True).update(next_attempt_at=Coalesce(F("created_at"), timezone.now()))
    # A try claimed before the deploy may still be in flight: leave it one lease.
    pending.filter(attempts__state="claimed").update(lease_expires_at=timezone.now() + timedelta(seconds=30))
    batch = []
    for delivery_id in SmsAttempt.objects.values_list("delivery_id", flat=True).distinct().iterator():
        for number, attempt in enumerate(SmsAttempt.objects.filter(delivery_id=delivery_id).order_by("started_at", "id"), 1):
            attempt.number = number
            batch.append(attempt)
        if len(batch) >= 1000:
            SmsAttempt.objects.bulk_update(batch, ["number"])
            batch = []
    SmsAttempt.objects.bulk_update(batch, ["number"])


class Migration(migrations.Migration):

    dependencies = [
        ("sms", "0003_delivery_claims"),
    ]

    operations = [
        migrations.RenameField(model_name="smsdelivery", old_name="claims", new_name="tries"),
        migrations.AlterField(
            model_name="smsdelivery", name="tries", field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="smsdelivery", name="max_tries",
            field=models.PositiveSmallIntegerField(default=apps.delivery.models.default_max_tries),
        ),
        migrations.AddField(
            model_name="smsdelivery", name="lease_expires_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RenameField(model_name="smsattempt", old_name="celery_task_id", new_name="task_id"),
        migrations.AlterField(model_name="smsattempt", name="task_id", field=models.CharField(blank=True, max_length=255)),
        migrations.AddField(model_name="smsattempt", name="number", field=models.PositiveSmallIntegerField(default=0), preserve_default=False),
        migrations.AddField(
            model_name="smsattempt", name="status_code",
            field=models.PositiveSmallIntegerField(blank=True, help_text="The provider's HTTP status.", null=True),
        ),
        migrations.AddField(
            model_name="smsattempt", name="response_excerpt",
            field=models.CharField(blank=True, help_text="Scrubbed.", max_length=500),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="smsdelivery",
            index=models.Index(condition=Q(status="pending"), fields=["next_attempt_at"], name="sms_delivery_due_idx"),
        ),
    ]
