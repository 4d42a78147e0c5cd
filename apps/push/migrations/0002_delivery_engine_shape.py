"""Push on the delivery engine (1/3): the engine's columns beside push's own. PushAttempt.outcome
becomes the engine's `state` (renamed: same values); the old ones go in 0004, after 0003 has
moved the rows over."""

import apps.delivery.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('push', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='pushdelivery',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name='pushdelivery',
            name='max_tries',
            field=models.PositiveSmallIntegerField(default=apps.delivery.models.default_max_tries),
        ),
        migrations.AlterField(
            model_name='pushdelivery',
            name='status',
            field=models.CharField(choices=[('pending', 'pending'), ('sent', 'sent'), ('failed', 'failed'), ('refused', 'refused')], default='pending', max_length=12),
        ),
        migrations.RenameField(
            model_name='pushattempt',
            old_name='outcome',
            new_name='state',
        ),
        migrations.AddField(
            model_name='pushattempt',
            name='error_message',
            field=models.CharField(blank=True, help_text='Scrubbed.', max_length=255),
        ),
        migrations.AddField(
            model_name='pushattempt',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='pushattempt',
            name='provider',
            field=models.CharField(blank=True, max_length=10),
        ),
        migrations.AddField(
            model_name='pushattempt',
            name='provider_message_id',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AlterField(
            model_name='pushattempt',
            name='task_id',
            field=models.CharField(blank=True, max_length=255),
        ),
    ]
