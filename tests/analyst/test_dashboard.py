"""Dashboards: the figures of a period (by day or by hour), aggregated by the database, drawn as
accessible SVG beside tables of the same numbers; with data and without."""

import re
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.analyst import dashboards
from apps.analyst.selectors import Scope
from apps.sms.models import SmsAttempt, SmsDelivery
from apps.sms.services import sms_delivery_create
from apps.threeds.models import Challenge
from tests.analyst.conftest import make_tx

pytestmark = pytest.mark.django_db


def sms(issuer, *, status, provider="primary:twilio", tries=(("succeeded", 200),), accepted_after_ms=300, created_at=None):
    delivery = sms_delivery_create(issuer=issuer, to="+819011112222", body="code 12345678", secret="12345678")
    created_at = created_at or timezone.now()
    SmsDelivery.objects.filter(pk=delivery.pk).update(
        status=status, provider=provider if status != "failed" else "", created_at=created_at,
        accepted_at=created_at + timedelta(milliseconds=accepted_after_ms) if status != "failed" else None,
    )
    role, backend = provider.split(":")
    for n, (state, ms) in enumerate(tries, start=1):
        SmsAttempt.objects.create(
            delivery=delivery, number=n, provider_role=role, provider=backend, try_number=n, state=state, duration_ms=ms,
            started_at=created_at, callback_token=f"{delivery.pk}-{n}",
            provider_status=status if state == "succeeded" and status in ("delivered", "undelivered") else "",
        )
    return delivery


@pytest.fixture
def week(issuer):
    now = timezone.now()
    make_tx(issuer, created_at=now - timedelta(hours=1))
    make_tx(issuer, created_at=now - timedelta(hours=1), trans_status="N", ares_trans_status="N", eci="07")
    make_tx(issuer, created_at=now - timedelta(days=1), challenge={"method": Challenge.OOB})
    make_tx(issuer, created_at=now - timedelta(days=2), challenge={"method": Challenge.SMS_OTP, "fallback_reason": "oob_timeout"})
    make_tx(issuer, created_at=now - timedelta(days=2), trans_status="", challenge={"method": Challenge.SMS_OTP})
    make_tx(issuer, created_at=now - timedelta(days=30))  # outside the default period
    sms(issuer, status="delivered", tries=(("failed_transient", 1000), ("succeeded", 100)))
    sms(issuer, status="sent", tries=(("succeeded", 300),))
    sms(issuer, status="failed", tries=(("failed_permanent", 50),))
    sms(issuer, status="delivered", provider="fallback:twilio", tries=(("succeeded", 700),), accepted_after_ms=2000)


def test_the_default_is_the_last_7_days_by_day(analyst_client, week):
    response = analyst_client.get("/analyst/dashboard/")
    assert response.status_code == 200
    board = response.context["board"]
    assert board.granularity == "day" and len(board.buckets) == 7
    assert board.buckets[-1].date() == timezone.now().date()
    totals = response.context["totals"]
    assert (totals["transactions"], totals["frictionless"], totals["challenged"]) == (5, 2, 3)
    assert totals["outcomes"] == {"Y": 3, "A": 0, "N": 1, "U": 0, "R": 0, "C": 1}
    assert (totals["oob_started"], totals["fell_back"]) == (2, 1) and totals["fallback_rate"] == 50.0
    assert totals["sms"] == 4 and totals["sms_success_rate"] == 75.0
    assert board.fallback_reasons == [("oob_timeout", 1)]


def test_sms_by_provider_rates_and_latencies(analyst_client, week):
    providers = {p.provider: p for p in analyst_client.get("/analyst/dashboard/").context["board"].providers}
    primary, fallback = providers["primary:twilio"], providers["fallback:twilio"]
    assert (primary.tries, primary.accepted, primary.failed_transient, primary.failed_permanent) == (4, 2, 1, 1)
    assert (primary.delivered, fallback.delivered) == (1, 1)
    assert primary.call_p50_ms == 200 and primary.call_p95_ms == pytest.approx(895)  # 50, 100, 300, 1000
    assert fallback.enqueue_p50_ms == pytest.approx(2000, abs=1) and primary.enqueue_p50_ms == pytest.approx(300, abs=1)


def test_by_hour_over_a_chosen_period(analyst_client, issuer):
    when = datetime(2026, 4, 2, 10, 30, tzinfo=dt_timezone.utc)
    make_tx(issuer, created_at=when)
    make_tx(issuer, created_at=when + timedelta(minutes=20))
    make_tx(issuer, created_at=when + timedelta(hours=3))
    response = analyst_client.get("/analyst/dashboard/", {"start": "2026-04-02", "end": "2026-04-02", "granularity": "hour"})
    board = response.context["board"]
    assert len(board.buckets) == 24 and board.frictionless[10] == 2 and board.frictionless[13] == 1
    html = response.content.decode()
    assert "04-02 10:00" in html


def test_it_renders_without_data(analyst_client):
    response = analyst_client.get("/analyst/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No transaction and no SMS in this period." in html and "No fallback in this period." in html
    assert html.count("<svg") == 6


def test_charts_are_accessible_svg_beside_tables(analyst_client, week):
    html = analyst_client.get("/analyst/dashboard/").content.decode()
    svgs = re.findall(r"<svg[^>]*>", html)
    assert len(svgs) == 6
    for tag in svgs:
        assert 'role="img"' in tag and "aria-labelledby" in tag
    assert html.count("<title id=") == 6 and html.count("<desc id=") == 6
    assert html.count('<table class="data">') == 5
    assert "style=" not in html and "<script" not in html


@pytest.mark.parametrize("query, field", [
    ({"start": "2026-04-10", "end": "2026-04-01"}, "end"),
    ({"start": "2026-01-01", "end": "2026-03-01", "granularity": "hour"}, "end"),
    ({"granularity": "minute"}, "granularity"),
    ({"start": "yesterday"}, "start"),
])
def test_bad_periods_are_explained(analyst_client, query, field):
    response = analyst_client.get("/analyst/dashboard/", query)
    assert response.status_code == 200 and field in response.context["form"].errors
    assert "Fix the period" in response.content.decode()


def test_it_aggregates_in_the_database_bounded_to_the_period(issuer, week):
    start = timezone.now() - timedelta(days=7)
    with CaptureQueriesContext(connection) as queries:
        dashboards.dashboard(scope=Scope(issuer), start=start, end=timezone.now(), granularity="day")
    transactions = [q["sql"] for q in queries.captured_queries if 'FROM "threeds_transaction"' in q["sql"]]
    assert len(transactions) == 1 and "GROUP BY" in transactions[0] and '"created_at" >=' in transactions[0]
    assert len(queries.captured_queries) <= 8  # 7, and the labels of the period (one grouped query)


def test_percentile_matches_percentile_cont():
    assert dashboards.percentile([], 0.5) is None
    assert dashboards.percentile([10], 0.95) == 10
    assert dashboards.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert dashboards.percentile([50, 100, 300, 1000], 0.95) == pytest.approx(895)
