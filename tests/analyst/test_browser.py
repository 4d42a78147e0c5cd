"""The workspace in a real headless Chromium: an analyst logs in through the admin's login page,
filters the list, opens a transaction and reads its timeline, looks at the dashboard — and the
browser reports no Content-Security-Policy violation on the way."""

from pathlib import Path

import pytest
from django.utils import timezone

from apps.accounts.roles import ANALYST
from apps.audit.services import audit_record
from apps.threeds.models import Challenge
from tests.analyst.conftest import make_staff, make_tx
from tests.factories import IssuerFactory
from tests.support.fixtures import CHROMIUM, chromium  # noqa: F401 (fixture)


pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1300, "height": 900}, locale="en-US")
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda m: page.console_messages.append(m.text))
    yield page
    context.close()


def csp_violations(page) -> list[str]:
    return [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m]


def test_an_analyst_filters_opens_a_transaction_and_reads_its_timeline(page, live_server):
    issuer = IssuerFactory(name="Sakura Bank")
    make_staff(issuer, ANALYST, username="hanako")
    make_tx(issuer, merchant_name="Alpine Books", created_at=timezone.now())
    target = make_tx(issuer, merchant_name="Kyoto Coffee", trans_status="N", trans_status_reason="19",
                     challenge={"method": Challenge.SMS_OTP, "fallback_reason": "oob_timeout", "state": Challenge.FAILED})
    for kind in ("threeds.areq_received", "threeds.oob_fallback", "otp.locked", "threeds.challenge_finished"):
        audit_record(issuer=issuer, kind=kind, actor="acs", acs_trans_id=target.acs_trans_id, data={"step": kind})

    page.goto(f"{live_server.url}/analyst/")
    assert "/admin/login/" in page.url  # not logged in yet
    page.fill("#id_username", "hanako")
    page.fill("#id_password", "x")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/analyst/")
    assert page.locator("table.list tbody tr").count() == 2

    page.fill("#id_merchant", "kyoto")
    page.select_option("#id_fell_back", "yes")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/analyst/?**")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1 and "Kyoto Coffee" in rows.inner_text() and "oob_timeout" in rows.inner_text()

    rows.locator("a").first.click()
    page.wait_for_url(f"**/analyst/transactions/{target.acs_trans_id}/")
    timeline = page.locator("table.timeline tbody")
    text = timeline.inner_text()
    assert text.index("threeds.areq_received") < text.index("threeds.oob_fallback") < text.index("otp.locked")
    assert "yes — oob_timeout" in page.locator("#h-challenge + dl").inner_text()
    page.screenshot(path="/tmp/analyst-transaction.png", full_page=True)

    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/analyst/dashboard/")
    assert page.locator("svg[role=img]").count() == 6
    assert page.locator("svg rect.s0").count() >= 1  # the volume bars were drawn
    # The stylesheet applied (a CSS rule, not an inline style): the charts are as wide as their box.
    assert page.locator("svg.chart").first.bounding_box()["width"] > 300
    page.screenshot(path="/tmp/analyst-dashboard.png", full_page=True)

    assert csp_violations(page) == []
