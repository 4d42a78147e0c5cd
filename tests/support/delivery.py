"""Deliveries in process (tasks run eagerly): a wake-up makes only the tries due now and leaves a
retry to the sweep once its backoff is over (apps.delivery.engine.run_task). A test that follows a
delivery through its retries lets the sweep make them, skipping the waits."""

from django.utils import timezone

from apps.delivery import engine
from apps.delivery.models import OutboundDelivery


def sweep_until_settled(*names: str, rounds: int = 50) -> None:
    """Make every pending delivery of the named channels due and run its task here, as the sweep
    (`run_schedule`) would once the backoff is over, until none is pending: the retries without
    the waiting. The task runs in this process even when a broker is configured."""
    for _ in range(rounds):
        woken = 0
        for name in names:
            ch = engine.channel(name)
            # What the backoff (and a lapsed lease) would be after their wait.
            ch.delivery_model.objects.filter(status=OutboundDelivery.PENDING).update(
                next_attempt_at=timezone.now(), lease_expires_at=None
            )
            for delivery_id in engine.overdue_ids(ch, grace_seconds=0):
                ch.task().apply(args=[delivery_id if isinstance(delivery_id, int) else str(delivery_id)])
                woken += 1
        if not woken:
            return
    raise AssertionError(f"deliveries of {names} still pending after {rounds} rounds")
