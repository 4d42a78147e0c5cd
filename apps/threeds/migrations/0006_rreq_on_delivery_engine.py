"""RReq deliveries and attempts take the delivery engine's shape (apps.delivery.models): a try in
flight is a pending delivery with a lease (no more "sending" status); an attempt's `error` becomes
`error_message`, and attempts get a state, an end time and an error code. Data-safe: a rename and
new columns, filled below."""

from django.db import migrations, models
from django.db.models import F

import apps.delivery.models


def fill(apps, schema_editor):
    RReqDelivery = apps.get_model("threeds", "RReqDelivery")
    RReqAttempt = apps.get_model("threeds", "RReqAttempt")
    # A claim in flight: its lapse time becomes the lease.
    RReqDelivery.objects.filter(status="sending").update(status="pending", lease_expires_at=F("next_attempt_at"))
    # Tries were recorded after the answer: no error means the RRes acknowledged it.
    RReqAttempt.objects.filter(error_message="").update(state="succeeded")
    RReqAttempt.objects.exclude(error_message="").update(state="failed_transient")
    RReqAttempt.objects.filter(error_class="DestinationNotAllowed").update(state="failed_permanent")


class Migration(migrations.Migration):

    dependencies = [
        ('threeds', '0005_drop_redundant_indexes'),
    ]

    operations = [
        migrations.RenameField(model_name='rreqattempt', old_name='error', new_name='error_message'),
        migrations.AlterField(
            model_name='rreqattempt',
            name='error_message',
            field=models.CharField(blank=True, help_text='Scrubbed.', max_length=255),
        ),
        migrations.AddField(
            model_name='rreqattempt',
            name='error_code',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='rreqattempt',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='rreqattempt',
            name='state',
            field=models.CharField(choices=[('claimed', 'claimed'), ('succeeded', 'succeeded'), ('failed_transient', 'failed_transient'), ('failed_permanent', 'failed_permanent'), ('interrupted', 'interrupted')], default='claimed', max_length=20),
        ),
        migrations.AddField(
            model_name='rreqdelivery',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='rreqattempt',
            name='duration_ms',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='rreqattempt',
            name='response_excerpt',
            field=models.CharField(blank=True, help_text='Scrubbed.', max_length=500),
        ),
        migrations.AlterField(
            model_name='rreqattempt',
            name='status_code',
            field=models.PositiveSmallIntegerField(blank=True, help_text="The provider's HTTP status.", null=True),
        ),
        migrations.AlterField(
            model_name='rreqdelivery',
            name='max_tries',
            field=models.PositiveSmallIntegerField(default=apps.delivery.models.default_max_tries),
        ),
        migrations.AlterField(
            model_name='rreqdelivery',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='pending', max_length=10),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
