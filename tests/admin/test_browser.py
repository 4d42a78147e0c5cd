"""The operations admin in a real headless Chromium at 1366×768: the landing page, the cardholder
hub, a search, the transaction list and the delivery lists, in English and in Japanese. Every
changelist fits the width (no horizontal scrolling), no page carries a PAN or an OTP, and the
screenshots go to var/screenshots/ for a person to look at."""

from pathlib import Path

import pytest
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.roles import ISSUER_ADMIN
from tests.admin.conftest import OTP, make_bank, make_tx
from tests.analyst.test_browser import csp_violations
from tests.factories import IssuerFactory, make_staff, make_superuser
from tests.support.fixtures import CHROMIUM, chromium  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),  # the live server's thread must see committed rows
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTH, HEIGHT = 1366, 768
PASSWORD = "a long enough password 1"


def browser_page(chromium, locale: str):  # noqa: F811
    context = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT}, locale=locale)
    page = context.new_page()
    page.console_messages = []
    page.on("console", lambda m: page.console_messages.append(m.text))
    return context, page


@pytest.fixture
def banks(db):
    ours = make_bank(IssuerFactory(name="Sakura Bank"), "ours", "+819012345678")
    theirs = make_bank(IssuerFactory(name="Fuji Bank"), "theirs", "+819087654321")
    # A full first page of the transaction list, with long merchant names and every result.
    for n, status in enumerate("YNAURY" * 4):
        make_tx(ours.issuer, ours.card, trans_status=status, ares_trans_status=status, trans_status_reason="01" if status == "N" else "",
                merchant_name=f"Long Merchant Name Trading Co {n:02d}"[:40], purchase_amount=123456 + n, purchase_currency="978",
                purchase_exponent=2)
    make_staff(ours.issuer, ISSUER_ADMIN, username="hanako")
    return ours, theirs


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def check(page, name: str, *, banks) -> str:
    """The page is kept as a screenshot, fits 1366 px and shows no PAN or OTP."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, name
    # The changelist scrolls inside its own box: its table must fit that box too.
    overflow = page.evaluate("(() => { const r = document.querySelector('.results'); return r ? r.scrollWidth - r.clientWidth : 0; })()")
    assert overflow <= 0, f"{name}: the list is {overflow} px wider than its box"
    html = page.content()
    for bank in banks:
        assert bank.pan not in html
    assert OTP not in html
    return html


def user(username, superuser=False):
    """The account to sign in with, with a password (make_staff's users sign in by session)."""
    if superuser:
        return make_superuser(username, PASSWORD)
    account = User.objects.get(username=username)
    account.set_password(PASSWORD)
    account.save()
    return account


def test_issuer_staff_work_from_the_landing_page_to_the_hub(chromium, live_server, banks):  # noqa: F811
    ours, theirs = banks
    user("hanako")
    context, page = browser_page(chromium, "en-US")
    sign_in(page, live_server, "hanako")

    html = check(page, "landing", banks=banks)
    assert "Needs attention" in html and "Challenges stuck past their timeout" in html

    page.goto(f"{live_server.url}{reverse('admin:cards_cardholder_changelist')}?q=090-1234-5678")
    html = check(page, "search-phone", banks=banks)
    assert page.locator("#result_list tbody tr").count() == 1 and "cust-ours" in html and "cust-theirs" not in html

    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_url("**/change/**")
    html = check(page, "cardholder-hub", banks=banks)
    assert page.locator("table.hub").count() == 4  # cards, devices, transactions, deliveries
    page.get_by_role("link", name="card-ours").click()
    page.wait_for_url("**/cards/card/**")
    check(page, "card", banks=banks)
    assert page.get_by_role("link", name="Holder ours (cust-ours)").count() == 1

    for name, url in [
        ("transactions", reverse("admin:threeds_transaction_changelist")),
        ("sms-deliveries", reverse("admin:sms_smsdelivery_changelist")),
        ("webhook-deliveries", reverse("admin:webhooks_webhookdelivery_changelist")),
        ("cards", reverse("admin:cards_card_changelist")),
        ("api-keys", reverse("admin:issuers_apikey_changelist")),
    ]:
        page.goto(f"{live_server.url}{url}")
        html = check(page, name, banks=banks)
        assert "theirs" not in html

    page.goto(f"{live_server.url}{reverse('admin:threeds_transaction_changelist')}")
    assert "€1,234.56" in page.content() and "N — Not authenticated / declined" in page.content()
    assert csp_violations(page) == []
    context.close()


def test_the_superuser_lists_fit_with_the_issuer_column(chromium, live_server, banks):  # noqa: F811
    user("root", superuser=True)
    context, page = browser_page(chromium, "en-US")
    sign_in(page, live_server, "root")
    check(page, "landing-superuser", banks=banks)
    for name, url in [
        ("transactions-superuser", reverse("admin:threeds_transaction_changelist")),
        ("cardholders-superuser", reverse("admin:cards_cardholder_changelist")),
        ("sms-deliveries-superuser", reverse("admin:sms_smsdelivery_changelist")),
        ("webhook-deliveries-superuser", reverse("admin:webhooks_webhookdelivery_changelist")),
    ]:
        page.goto(f"{live_server.url}{url}")
        check(page, name, banks=banks)
    context.close()


def test_the_admin_in_japanese(chromium, live_server, banks):  # noqa: F811
    ours, _theirs = banks
    user("hanako")
    context, page = browser_page(chromium, "ja-JP")  # Accept-Language: ja
    sign_in(page, live_server, "hanako")
    html = check(page, "landing-ja", banks=banks)
    assert "要対応" in html
    page.goto(f"{live_server.url}{reverse('admin:cards_cardholder_change', args=[ours.cardholder.pk])}")
    html = check(page, "cardholder-hub-ja", banks=banks)
    assert "最近の取引" in html and "最近の SMS・Webhook 配信" in html and "認証結果" in html
    assert "€1,234.79" in html and "Y — 認証成功" in html
    page.goto(f"{live_server.url}{reverse('admin:threeds_transaction_changelist')}?q=Osaka")
    html = check(page, "transactions-ja", banks=banks)
    assert "￥1,500" in html and "C — チャレンジ要求" in html  # CLDR writes the yen full-width in Japanese and "チャレンジ：SMS 認証コード" in html
    context.close()
