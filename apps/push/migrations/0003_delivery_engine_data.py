"""Push on the delivery engine (2/3): the rows in the engine's terms.

- `sending` (a claimed try, its claim lapsing at next_attempt_at) → `pending` with the engine's
  lease lapsing then: the sweep hands it to another worker once the lease is over, as beat did.
- failed / refused rows no longer use next_attempt_at (it meant "report to OOB"): NULL. Those not
  reported yet (undeliverable_reported_at NULL) are reported by the sweep's safety net.
- An attempt's error_class (the exception's class name) is kept as its error_message; its
  provider is the delivery's, and so is the message id of its successful try.
"""

from django.db import migrations
from django.db.models import F, OuterRef, Subquery


def forwards(apps, schema_editor):
    PushDelivery = apps.get_model('push', 'PushDelivery')
    PushAttempt = apps.get_model('push', 'PushAttempt')
    PushDelivery.objects.filter(status='sending').update(status='pending', lease_expires_at=F('next_attempt_at'))
    PushDelivery.objects.filter(status__in=['sent', 'failed', 'refused']).update(next_attempt_at=None, lease_expires_at=None)
    PushAttempt.objects.filter(error_message='').exclude(error_class='').update(error_message=F('error_class'))
    PushAttempt.objects.update(
        provider=Subquery(PushDelivery.objects.filter(pk=OuterRef('delivery_id')).values('provider')[:1])
    )
    PushAttempt.objects.filter(state='succeeded').update(
        provider_message_id=Subquery(
            PushDelivery.objects.filter(pk=OuterRef('delivery_id')).values('provider_message_id')[:1]
        )
    )


def backwards(apps, schema_editor):
    PushDelivery = apps.get_model('push', 'PushDelivery')
    PushAttempt = apps.get_model('push', 'PushAttempt')
    PushDelivery.objects.filter(status='pending', lease_expires_at__isnull=False).update(
        status='sending', next_attempt_at=F('lease_expires_at')
    )
    # Not yet reported: due now, for the old beat job.
    PushDelivery.objects.filter(status__in=['failed', 'refused'], undeliverable_reported_at__isnull=True).update(
        next_attempt_at=F('finished_at')
    )
    PushAttempt.objects.filter(error_class='').exclude(error_message='').update(error_class=F('error_message'))


class Migration(migrations.Migration):

    dependencies = [
        ('push', '0002_delivery_engine_shape'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
