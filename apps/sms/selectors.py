from datetime import timedelta

from django.utils import timezone

from apps.sms.models import SmsDelivery


def sms_deliveries_overdue_ids(*, grace_seconds: float = 60.0, limit: int = 500) -> list:
    """Pending deliveries that no task has touched for a while (their task was lost), and whose
    next try is not scheduled in the future."""
    overdue = timezone.now() - timedelta(seconds=grace_seconds)
    return list(
        SmsDelivery.objects.filter(status=SmsDelivery.PENDING, created_at__lt=overdue, body_blob__isnull=False)
        .exclude(next_attempt_at__gt=overdue)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
