"""The policy pages in a real headless Chromium at 1366×768 under the site's CSP: an issuer admin
edits the risk policy, backtests the draft, publishes it with a reason and reads the history; the
OTP policy form in Japanese. Screenshots go to var/screenshots/ for a person to look at."""

from pathlib import Path

import pytest
from django.conf import settings

from apps.accounts.roles import ISSUER_ADMIN
from apps.analyst.models import TransactionLabel
from apps.otp.services import otp_policy_create_default
from apps.threeds.models import RiskPolicy, RiskPolicyVersion
from tests.factories import IssuerFactory, make_staff
from tests.policies.conftest import make_tx
from tests.support.fixtures import CHROMIUM, chromium, role_groups  # noqa: F401 (fixtures)

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
    page.csp_violations = []
    page.on("console", lambda m: page.csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()


def sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "x")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_an_issuer_admin_backtests_a_draft_publishes_it_and_reads_the_history(page, live_server):
    issuer = IssuerFactory(name="Sakura Bank")
    make_staff(issuer, ISSUER_ADMIN, username="hanako")
    policy = RiskPolicy.objects.create(issuer=issuer, amount_thresholds={"392": "30000"})
    make_tx(issuer, days_ago=1)
    mid = make_tx(issuer, days_ago=2, purchase_amount=25_000, merchant_name="Kyoto Camera")
    fraud = make_tx(issuer, days_ago=3, merchant_name="Osaka Electronics", risk_facts={"recent_count": 0, "merchant_known": False})
    make_tx(issuer, days_ago=4, purchase_amount=50_000, merchant_name="Ginza Watches")
    TransactionLabel.objects.create(transaction=mid, issuer=issuer, label="genuine")
    TransactionLabel.objects.create(transaction=fraud, issuer=issuer, label="fraud")

    sign_in(page, live_server, "hanako")
    page.goto(f"{live_server.url}/admin/threeds/riskpolicy/{policy.pk}/change/")
    page.fill("#id_challenge_threshold", "40")
    page.locator('input[name="amount_thresholds_value"]').first.fill("20000")
    page.locator('select[name="tra_max_amounts_key"]').first.select_option("392")
    page.locator('input[name="tra_max_amounts_value"]').first.fill("5000")
    page.screenshot(path=str(SCREENSHOTS / "policy-risk-form.png"))
    page.locator("fieldset", has_text="Amount").first.screenshot(path=str(SCREENSHOTS / "policy-risk-form-amounts.png"))

    page.click("input[name=_backtest]")
    page.wait_for_url(f"**/riskpolicy/{policy.pk}/backtest/")
    outcomes = page.locator("#backtest-outcomes")
    assert outcomes.locator("tr[data-outcome=frictionless] td.current").inner_text() == "3"
    assert outcomes.locator("tr[data-outcome=frictionless] td.draft").inner_text() == "1"
    assert outcomes.locator("tr[data-outcome=challenge] td.draft").inner_text() == "3"
    assert page.locator("#backtest-samples tbody tr").count() == 2
    assert page.locator("#backtest-labels tr[data-row=fraud-frictionless] td.draft").inner_text() == "0"
    assert "Amount threshold JPY: ¥30,000 → ¥20,000" in page.locator("#draft-changes").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "policy-risk-backtest.png"), full_page=True)
    assert RiskPolicyVersion.objects.count() == 0  # a backtest writes nothing

    page.fill("#id_publish_reason", "Challenge more mid-size JPY purchases after October's fraud")
    page.click("#publish-form input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/threeds/riskpolicy/")
    policy.refresh_from_db()
    assert policy.version == 2 and policy.challenge_threshold == 40  # 1: the policy before its first change
    assert policy.amount_thresholds == {"392": "20000"} and policy.tra_max_amounts == {"392": "5000"}

    page.goto(f"{live_server.url}/admin/threeds/riskpolicy/{policy.pk}/change/")
    page.fill("#id_challenge_threshold", "45")
    page.fill("#id_reason", "Slightly fewer challenges")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/threeds/riskpolicy/")
    page.goto(f"{live_server.url}/admin/threeds/riskpolicy/{policy.pk}/change/")
    page.get_by_role("link", name="History").click()
    page.wait_for_url(f"**/riskpolicy/{policy.pk}/history/")
    latest = page.locator("tr.policy-version").first
    assert "Challenge threshold: 40 → 45" in latest.inner_text() and "Slightly fewer challenges" in latest.inner_text()
    published = page.locator("tr.policy-version[data-version='2']").inner_text()
    assert "Challenge threshold: 50 → 40" in published and "Amount threshold JPY: ¥30,000 → ¥20,000" in published
    page.screenshot(path=str(SCREENSHOTS / "policy-risk-history.png"), full_page=True)
    assert page.csp_violations == []


def test_the_otp_policy_form_in_japanese(page, live_server):
    issuer = IssuerFactory(name="Sakura Bank")
    make_staff(issuer, ISSUER_ADMIN, username="hanako")
    policy = otp_policy_create_default(issuer=issuer).policy
    sign_in(page, live_server, "hanako")
    page.context.add_cookies([{"name": "django_language", "value": "ja", "url": live_server.url}])
    page.goto(f"{live_server.url}/admin/otp/otppolicy/{policy.pk}/change/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator('select[name="allowed_countries"] option[value="JP"]').inner_text() == "日本"
    page.locator('select[name="allowed_countries"]').select_option(["JP", "FR"])
    page.locator('select[name="sender_ids_key"]').first.select_option("FR")
    page.locator('input[name="sender_ids_value"]').first.fill("SAKURA")
    page.fill("#id_sms_template_fr", "Votre code {code} pour {shop}")
    page.fill("#id_reason", "フランスへの送信を追加")
    page.click("input[name=_save]")
    errors = page.locator(".field-sms_template_fr .errorlist").inner_text()
    assert "{shop}" in errors
    page.screenshot(path=str(SCREENSHOTS / "policy-otp-form-ja.png"), full_page=False)
    page.fill("#id_sms_template_fr", "Votre code {code} pour {merchant}")
    page.fill("#id_reason", "フランスへの送信を追加")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}/admin/otp/otppolicy/")
    page.goto(f"{live_server.url}/admin/otp/otppolicy/{policy.pk}/history/")
    page.screenshot(path=str(SCREENSHOTS / "policy-otp-history-ja.png"), full_page=True)
    policy.refresh_from_db()
    assert policy.version == 2 and policy.sender_ids == {"FR": "SAKURA"}
    assert page.csp_violations == []
