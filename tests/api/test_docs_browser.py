"""The issuer API's Swagger UI (/api/docs/) in a real headless Chromium: the card list and the phone
change are there with their summaries, and an operation lists its error responses. Screenshots at
1366×768 go to var/screenshots/ for a person to look at."""

from pathlib import Path

import pytest
from django.conf import settings

from tests.support.fixtures import CHROMIUM, chromium  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture
def page(chromium):  # noqa: F811
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    page = context.new_page()
    yield page
    context.close()


def test_swagger_ui_shows_the_card_list_and_the_phone_change_with_their_errors(page, live_server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)

    card_list = page.locator("#operations-cards-v1_cards_list, .opblock-get:has(.opblock-summary-path[data-path='/api/v1/cards'])").first
    card_list.scroll_into_view_if_needed()
    assert "List cards" in card_list.inner_text()
    card_list.locator(".opblock-summary").click()
    page.wait_for_selector(".opblock.is-open .responses-table")
    responses = page.locator(".opblock.is-open .responses-table").first.inner_text()
    for status in ("200", "400", "401", "403", "429"):
        assert status in responses
    page.locator(".opblock.is-open").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "api-docs-card-list.png"))

    phone = page.locator(".opblock-patch:has(.opblock-summary-path[data-path='/api/v1/cardholders/{cardholder_id}/phones/{phone_id}'])")
    phone.scroll_into_view_if_needed()
    assert "Change a phone" in phone.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "api-docs-phone-change.png"))
