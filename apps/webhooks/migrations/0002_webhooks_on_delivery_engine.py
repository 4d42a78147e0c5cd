"""Webhook deliveries and attempts take the delivery engine's shape (apps.delivery.models): a try
in flight is a pending delivery with a lease (no more "delivering" status); attempts get a state,
an end time and an error code and message. Data-safe: new columns, filled below."""

from django.db import migrations, models
from django.db.models import F, Q

import apps.delivery.models


def fill(apps, schema_editor):
    WebhookDelivery = apps.get_model("webhooks", "WebhookDelivery")
    WebhookAttempt = apps.get_model("webhooks", "WebhookAttempt")
    # A claim in flight: its lapse time becomes the lease.
    WebhookDelivery.objects.filter(status="delivering").update(status="pending", lease_expires_at=F("next_attempt_at"))
    # Tries were recorded after the answer: 2xx succeeded; else the delivery's end tells.
    WebhookAttempt.objects.filter(status_code__gte=200, status_code__lt=300).update(state="succeeded")
    failed = WebhookAttempt.objects.exclude(status_code__gte=200, status_code__lt=300)
    failed.update(state="failed_transient", error_message=F("error_class"))
    failed.filter(Q(status_code__gte=400, status_code__lt=500) & ~Q(status_code=429)).update(state="failed_permanent")




class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookattempt',
            name='error_code',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='webhookattempt',
            name='error_message',
            field=models.CharField(blank=True, help_text='Scrubbed.', max_length=255),
        ),
        migrations.AddField(
            model_name='webhookattempt',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='webhookattempt',
            name='state',
            field=models.CharField(choices=[('claimed', 'claimed'), ('succeeded', 'succeeded'), ('failed_transient', 'failed_transient'), ('failed_permanent', 'failed_permanent'), ('interrupted', 'interrupted')], default='claimed', max_length=20),
        ),
        migrations.AddField(
            model_name='webhookdelivery',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='webhookattempt',
            name='duration_ms',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='webhookattempt',
            name='response_excerpt',
            field=models.CharField(blank=True, help_text='Scrubbed.', max_length=500),
        ),
        migrations.AlterField(
            model_name='webhookattempt',
            name='status_code',
            field=models.PositiveSmallIntegerField(blank=True, help_text="The provider's HTTP status.", null=True),
        ),
        migrations.AlterField(
            model_name='webhookdelivery',
            name='max_tries',
            field=models.PositiveSmallIntegerField(default=apps.delivery.models.default_max_tries),
        ),
        migrations.AlterField(
            model_name='webhookdelivery',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='pending', max_length=12),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
