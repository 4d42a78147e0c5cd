"""What needs the attention of an issuer's operations staff, for the admin's landing page: failed
SMS and webhook deliveries, the SMS providers' error rate, challenges stuck past their timeout.
Each count is scoped to one issuer (None: the platform, every issuer) and bounded in time, so
every query walks an index by issuer and date, never a whole table."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from apps.sms.models import SmsAttempt, SmsDelivery
from apps.threeds.models import Challenge
from apps.webhooks.models import WebhookDelivery

# Failed deliveries older than this are history (the analysts' dashboards), not today's work.
FAILED_DELIVERY_WINDOW = timedelta(days=1)
PROVIDER_ERROR_WINDOW = timedelta(hours=1)
# The challenge sweep runs every few seconds; a challenge open this long past its deadline means
# the sweep is not running (or fails), which staff must hear about.
STUCK_GRACE = timedelta(minutes=5)

SMS_FAILED_STATUSES = (SmsDelivery.FAILED, SmsDelivery.UNDELIVERED)
OPEN_CHALLENGE_STATES = (Challenge.AWAITING_CREQ, Challenge.IN_PROGRESS)
FAILED_ATTEMPT_STATES = (SmsAttempt.FAILED_TRANSIENT, SmsAttempt.FAILED_PERMANENT, SmsAttempt.INTERRUPTED)


@dataclass(frozen=True)
class ProviderErrorRate:
    provider: str
    tries: int
    failed: int

    @property
    def percent(self) -> float:
        return 100.0 * self.failed / self.tries if self.tries else 0.0


def _scoped(queryset, issuer_id, field: str = "issuer_id"):
    return queryset if issuer_id is None else queryset.filter(**{field: issuer_id})


def failed_sms_deliveries(*, issuer_id, now=None):
    since = (now or timezone.now()) - FAILED_DELIVERY_WINDOW
    return _scoped(SmsDelivery.objects.filter(status__in=SMS_FAILED_STATUSES, created_at__gte=since), issuer_id)


def failed_webhook_deliveries(*, issuer_id, now=None):
    since = (now or timezone.now()) - FAILED_DELIVERY_WINDOW
    return _scoped(WebhookDelivery.objects.filter(status=WebhookDelivery.FAILED, created_at__gte=since), issuer_id)


def sms_provider_error_rates(*, issuer_id, now=None) -> list[ProviderErrorRate]:
    """Tries started in the last hour per provider, and how many failed. A try belongs to a
    delivery made shortly before it, so the deliveries of the last two windows bound the read."""
    now = now or timezone.now()
    since = now - PROVIDER_ERROR_WINDOW
    deliveries = _scoped(SmsDelivery.objects.filter(created_at__gte=since - PROVIDER_ERROR_WINDOW), issuer_id)
    rows = (
        SmsAttempt.objects.filter(delivery__in=deliveries.values("pk"), started_at__gte=since)
        .values("provider_role", "provider")
        .annotate(tries=Count("pk"), failed=Count("pk", filter=Q(state__in=FAILED_ATTEMPT_STATES)))
        .order_by("provider_role", "provider")
    )
    return [ProviderErrorRate(f"{r['provider_role']}:{r['provider']}", r["tries"], r["failed"]) for r in rows]


def stuck_challenges(*, issuer_id=None, now=None):
    """Open challenges whose deadline passed more than STUCK_GRACE ago."""
    before = (now or timezone.now()) - STUCK_GRACE
    stuck = Challenge.objects.filter(state__in=OPEN_CHALLENGE_STATES, deadline__lt=before)
    return _scoped(stuck, issuer_id, "transaction__issuer_id")
