from datetime import timedelta

from django.utils import timezone

from apps.push.models import PushDelivery


def push_deliveries_due_ids(*, overdue_seconds: float, limit: int = 500) -> list:
    """Deliveries a worker should have acted on more than `overdue_seconds` ago (the partial
    index on next_attempt_at holds only deliveries with work left)."""
    cutoff = timezone.now() - timedelta(seconds=overdue_seconds)
    return list(
        PushDelivery.objects.filter(next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
