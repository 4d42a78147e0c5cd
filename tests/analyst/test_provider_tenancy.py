"""The dashboard's "SMS by provider" figures are this issuer's only (issue 11 item 8): another
issuer's tries, acceptances and latencies never reach them, on either percentile path."""

import pytest

from apps.analyst import dashboards
from apps.analyst.selectors import Scope
from tests.analyst.test_dashboard import sms

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_issuers_sms(issuer, other_issuer):
    sms(issuer, status="delivered", tries=(("succeeded", 200),), accepted_after_ms=300)
    # The other issuer: more tries, another provider, other latencies.
    sms(other_issuer, status="delivered", tries=(("failed_transient", 5000), ("failed_transient", 5000), ("succeeded", 9000)),
        accepted_after_ms=7000)
    sms(other_issuer, status="failed", tries=(("failed_permanent", 50),))
    sms(other_issuer, status="delivered", provider="fallback:twilio", tries=(("succeeded", 800),), accepted_after_ms=4000)


def test_the_analyst_sees_only_this_issuers_provider_figures(analyst_client, two_issuers_sms):
    response = analyst_client.get("/analyst/dashboard/")
    providers = {p.provider: p for p in response.context["board"].providers}
    assert set(providers) == {"primary:twilio"}
    ours = providers["primary:twilio"]
    assert (ours.tries, ours.accepted, ours.failed_transient, ours.failed_permanent, ours.delivered) == (1, 1, 0, 0, 1)
    assert ours.call_p50_ms == 200 and ours.call_p95_ms == 200
    assert ours.enqueue_p50_ms == pytest.approx(300, abs=1)
    html = response.content.decode()
    assert "fallback:twilio" not in html


def test_the_platform_scope_sees_everyones(issuer, other_issuer, two_issuers_sms):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    board = dashboards.dashboard(scope=Scope(issuer=None), start=now - timedelta(days=1), end=now + timedelta(hours=1), granularity="day")
    providers = {p.provider: p for p in board.providers}
    assert providers["primary:twilio"].tries == 5 and providers["fallback:twilio"].tries == 1
