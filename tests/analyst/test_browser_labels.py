"""In Chromium at 1366×768: an analyst labels a transaction confirmed fraud with a note, finds it
with the label filter and on the dashboard, then switches the workspace to Japanese with the
header's link. Screenshots for a person to look at go to var/screenshots/."""

from pathlib import Path

import pytest
from django.conf import settings

from apps.accounts.roles import ANALYST
from apps.analyst.models import TransactionLabel
from apps.audit.models import AuditEvent
from tests.analyst.conftest import make_staff, make_tx
from tests.factories import CardholderFactory, IssuerFactory, make_card
from tests.support.fixtures import CHROMIUM, chromium  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda m: page.console_messages.append(m.text))
    yield page
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"analyst-{name}.png"))


def test_an_analyst_labels_a_transaction_and_reads_the_workspace_in_japanese(page, live_server):
    issuer = IssuerFactory(name="Sakura Bank")
    make_staff(issuer, ANALYST, username="hanako")
    card = make_card(cardholder=CardholderFactory(issuer=issuer, external_id="CUST-0042"), card_id="card-77")
    make_tx(issuer, merchant_name="Alpine Books")
    target = make_tx(issuer, merchant_name="Kyoto Coffee", trans_status="N", trans_status_reason="13", card=card,
                     purchase_amount=12800, purchase_currency="392", merchant_country_code="392")

    page.goto(f"{live_server.url}/admin/login/?next=/analyst/")
    page.fill("#id_username", "hanako")
    page.fill("#id_password", "x")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/analyst/")

    page.fill("#id_cardholder", "CUST-0042")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/analyst/?**")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1 and "13 — Cardholder not enrolled in service" in rows.inner_text()
    rows.locator("a").first.click()
    page.wait_for_url(f"**/analyst/transactions/{target.acs_trans_id}/")

    page.get_by_label("Confirmed fraud").check()
    page.fill("#id_note", "Card testing: three merchants in two minutes.")
    shot(page, "label-form")
    page.get_by_role("button", name="Save label").click()
    page.wait_for_url(f"**/analyst/transactions/{target.acs_trans_id}/#label")
    box = page.locator("#label")
    assert "Label saved." in page.locator("main").inner_text()
    assert "Confirmed fraud" in box.inner_text() and "by hanako at" in box.inner_text()
    assert "Card testing: three merchants in two minutes." in box.inner_text()
    shot(page, "labelled-transaction")
    label = TransactionLabel.objects.get(transaction=target)
    assert (label.label, label.labelled_by.username) == ("fraud", "hanako")
    assert AuditEvent.objects.filter(kind="analyst.label_set", acs_trans_id=target.acs_trans_id).count() == 1

    page.goto(f"{live_server.url}/analyst/?label=fraud")
    assert page.locator("table.list tbody tr").count() == 1
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/analyst/dashboard/")
    assert "1" in page.locator("table.labels tbody tr").first.inner_text()

    # The language switch in the header: a POST to /i18n/setlang/, back to the same page.
    page.get_by_role("button", name="日本語").click()
    page.wait_for_url("**/analyst/dashboard/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert "ダッシュボード" in page.locator("h1").inner_text() and "アナリスト判定" in page.content()
    shot(page, "dashboard-ja")
    page.goto(f"{live_server.url}/analyst/transactions/{target.acs_trans_id}/")
    text = page.locator("main").inner_text()
    assert "不正確定" in text and "判定を保存" in text and "12,800" in text and "日本" in text
    assert "13 — " in text and "Cardholder not enrolled" not in text  # the reason's meaning, in Japanese
    shot(page, "transaction-ja")
    page.goto(f"{live_server.url}/analyst/")
    assert "取引一覧" in page.locator("h1").inner_text() and "絞り込む" in page.locator("form.filters").inner_text()
    shot(page, "list-ja")

    page.get_by_role("button", name="English").click()
    page.wait_for_url("**/analyst/")
    assert page.locator("h1").inner_text() == "Transactions"
    assert [m for m in page.console_messages if "Content Security Policy" in m or "Refused to" in m] == []
