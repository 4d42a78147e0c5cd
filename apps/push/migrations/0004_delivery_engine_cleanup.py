"""Push on the delivery engine (3/3): the old columns and index go, the engine's indexes come."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('push', '0003_delivery_engine_data'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='pushdelivery',
            name='push_work_left_idx',
        ),
        migrations.RemoveField(
            model_name='pushattempt',
            name='error_class',
        ),
        migrations.AddIndex(
            model_name='pushdelivery',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='push_delivery_due_idx'),
        ),
        migrations.AddIndex(
            model_name='pushdelivery',
            index=models.Index(condition=models.Q(('status__in', ['failed', 'refused']), ('undeliverable_reported_at__isnull', True)), fields=['finished_at'], name='push_unreported_idx'),
        ),
    ]
