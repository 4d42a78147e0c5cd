"""The admin that reads like the business (issue 14 item 1): the landing page, the cardholder hub,
search, values in words and "Retry now", each through every role: anonymous, analyst, staff of
this issuer, staff of another issuer, superuser."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django.test import Client

from apps.audit.models import AuditEvent
from apps.issuers import services as issuer_services
from apps.issuers.models import ApiKey
from apps.webhooks.models import WebhookDelivery
from tests.admin.conftest import OTP
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
LOGIN = reverse("admin:login")


def page(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def results(html: str) -> str:
    """The changelist's result table only (the search term is echoed elsewhere on the page)."""
    match = re.search(r'<table id="result_list">.*?</table>', html, re.S)
    return match.group(0) if match else ""


def attention(html: str) -> dict[str, str]:
    """The landing page's items: label → count as shown."""
    block = html.split('id="attention"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<a href="[^"]*">([^<]+)</a></th>\s*<td>(?:<strong>)?([^<]+)', block)
    return {label.strip(): count.strip() for label, count in rows}


def hub_url(bank) -> str:
    return reverse("admin:cards_cardholder_change", args=[bank.cardholder.pk])


def never_secret(html: str, *banks) -> None:
    for bank in banks:
        assert bank.pan not in html
    assert OTP not in html


# ---------------------------------------------------------------- the landing page


def test_anonymous_visitors_are_sent_to_the_login_page(ours):
    response = Client().get(INDEX)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("role", ["issuer_admin", "operator", "analyst", "other_issuer"])
def test_the_landing_page_counts_only_the_users_own_issuer(clients, role):
    items = attention(page(clients[role], INDEX))
    assert items["SMS not delivered (last 24 hours)"] == "1"
    assert items["Webhooks failed (last 24 hours)"] == "1"
    assert items["Challenges stuck past their timeout"] == "1"
    assert items["SMS provider primary:twilio: failed tries in the last hour"] == "1 / 1 (100%)"
    # The platform's certificates are the superuser's to act on, not an issuer's.
    assert not any("certificate" in label for label in items)


def test_the_superuser_landing_page_counts_every_issuer_and_the_certificates(clients):
    items = attention(page(clients["superuser"], INDEX))
    assert items["SMS not delivered (last 24 hours)"] == "2"
    assert items["Webhooks failed (last 24 hours)"] == "2"
    assert items["Challenges stuck past their timeout"] == "2"
    assert "Signing certificates missing, expired or expiring within 30 days" in items


def test_the_landing_page_links_lead_to_the_filtered_lists_of_the_own_issuer(clients, ours, theirs):
    html = page(clients["issuer_admin"], INDEX)
    links = dict((label, url.replace("&amp;", "&")) for url, label in re.findall(r'<a href="([^"]+)">([^<]+)</a></th>', html))

    sms = page(clients["issuer_admin"], links["SMS not delivered (last 24 hours)"])
    assert ours.sms.masked_to in sms and "Failed" in sms
    stuck = page(clients["issuer_admin"], links["Challenges stuck past their timeout"])
    assert "Osaka Games" in stuck and "Tokyo Books" not in stuck
    assert str(theirs.stuck.acs_trans_id)[:8] not in stuck
    webhooks = results(page(clients["issuer_admin"], links["Webhooks failed (last 24 hours)"]))
    change = "admin:webhooks_webhookdelivery_change"
    assert reverse(change, args=[ours.webhook.pk]) in webhooks and reverse(change, args=[theirs.webhook.pk]) not in webhooks


def test_the_scheduler_models_are_not_in_the_admin(clients):
    html = page(clients["superuser"], INDEX)
    assert "Periodic tasks" not in html and "django_celery_beat" not in html
    assert clients["superuser"].get("/admin/django_celery_beat/periodictask/").status_code == 404


# ---------------------------------------------------------------- the cardholder hub


@pytest.mark.parametrize("role", ["issuer_admin", "operator", "analyst", "superuser"])
def test_the_cardholder_page_links_everything_of_the_cardholder(clients, ours, theirs, role):
    html = page(clients[role], hub_url(ours))
    assert reverse("admin:cards_card_change", args=[ours.card.pk]) in html
    assert f"•••• {ours.card.last4}" in html and "Active" in html and f"{ours.card.expiry}" in html
    assert reverse("admin:devices_device_change", args=[ours.device.pk]) in html
    assert reverse("admin:threeds_transaction_change", args=[ours.tx.pk]) in html
    assert reverse("admin:threeds_transaction_change", args=[ours.stuck.pk]) in html
    assert reverse("admin:sms_smsdelivery_change", args=[ours.sms.pk]) in html
    assert reverse("admin:webhooks_webhookdelivery_change", args=[ours.webhook.pk]) in html
    assert "¥1,500" in html and "Y — Authenticated" in html
    assert ours.phone.masked in html
    assert "card-theirs" not in html and theirs.cardholder.external_id not in html
    never_secret(html, ours, theirs)


def test_the_hub_of_another_issuer_is_not_found(clients, ours):
    response = clients["other_issuer"].get(hub_url(ours))
    # Django's admin answers an object outside its queryset with a redirect to the index.
    assert response.status_code in (302, 404) and response.get("Location", INDEX) == INDEX
    assert "card-ours" not in page(clients["other_issuer"], INDEX)


def test_anonymous_visitors_never_see_a_hub(ours):
    response = Client().get(hub_url(ours))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_the_card_page_links_back_to_its_cardholder_its_transactions_and_deliveries(clients, ours):
    html = page(clients["operator"], reverse("admin:cards_card_change", args=[ours.card.pk]))
    assert hub_url(ours) in html
    assert reverse("admin:threeds_transaction_change", args=[ours.tx.pk]) in html
    assert reverse("admin:sms_smsdelivery_change", args=[ours.sms.pk]) in html
    assert reverse("admin:webhooks_webhookdelivery_change", args=[ours.webhook.pk]) in html
    never_secret(html, ours)


def test_the_transaction_page_reads_in_words_and_links_its_cardholder_and_deliveries(clients, ours):
    from apps.threeds.models import Transaction

    Transaction.objects.filter(pk=ours.stuck.pk).update(trans_status="N", trans_status_reason="13")
    html = page(clients["analyst"], reverse("admin:threeds_transaction_change", args=[ours.stuck.pk]))
    assert "N — Not authenticated / declined" in html and "13 — Cardholder not enrolled in service" in html
    assert "C — Challenge required" in html
    assert "Japan" in html and "¥1,500" in html and "(392)" not in html
    assert hub_url(ours) in html
    assert reverse("admin:sms_smsdelivery_change", args=[ours.sms.pk]) in html
    never_secret(html, ours)


# ---------------------------------------------------------------- search

CARDHOLDERS = reverse("admin:cards_cardholder_changelist")
CARDS = reverse("admin:cards_card_changelist")


@pytest.mark.parametrize("term", [
    "+819012345678", "+81 90-1234-5678", "090-1234-5678", "090 1234 5678", "09012345678", " card-ours ", "cust-ours",
])
@pytest.mark.parametrize("role", ["issuer_admin", "analyst", "superuser"])
def test_the_cardholder_list_finds_by_phone_card_id_external_id(clients, ours, theirs, role, term):
    html = results(page(clients[role], CARDHOLDERS, q=term))
    assert "cust-ours" in html and "cust-theirs" not in html


def test_the_cardholder_list_finds_by_last4(clients, ours, theirs):
    html = results(page(clients["operator"], CARDHOLDERS, q=ours.card.last4))
    assert "cust-ours" in html and "cust-theirs" not in html


@pytest.mark.parametrize("term", ["090-1234-5678", "card-ours", "cust-ours"])
def test_staff_of_another_issuer_never_find_our_cardholders(clients, ours, term):
    html = page(clients["other_issuer"], CARDHOLDERS, q=term)
    assert results(html) == "" and "0 results" in html


def test_the_superuser_finds_each_issuers_cardholder_by_its_own_number(clients, ours, theirs):
    html = results(page(clients["superuser"], CARDHOLDERS, q="090-8765-4321"))
    assert "cust-theirs" in html and "cust-ours" not in html


def test_a_search_that_is_no_phone_number_finds_nothing_and_fails_nothing(clients, ours):
    for term in ["%", "' OR 1=1 --", "x" * 300, "+", "１２３４"]:
        assert results(page(clients["operator"], CARDHOLDERS, q=term)) == ""


@pytest.mark.parametrize("term", ["card-ours", "cust-ours"])
def test_the_card_list_finds_by_card_id_and_external_id(clients, ours, theirs, term):
    html = page(clients["issuer_admin"], CARDS, q=term)
    assert "card-ours" in results(html) and "card-theirs" not in results(html)
    never_secret(html, ours, theirs)


def test_the_card_list_finds_by_last4_within_the_issuer(clients, ours, theirs):
    assert "card-ours" not in results(page(clients["other_issuer"], CARDS, q=ours.card.last4))
    html = results(page(clients["issuer_admin"], CARDS, q=ours.card.last4))
    assert "card-ours" in html and "Active" in html


# ---------------------------------------------------------------- deliveries and Retry now

WEBHOOKS = reverse("admin:webhooks_webhookdelivery_changelist")


def retry(client, delivery):
    return client.post(WEBHOOKS, {"action": "retry_now", "_selected_action": [delivery.pk]})


@pytest.mark.parametrize("role", ["issuer_admin", "operator", "superuser"])
def test_retry_now_requeues_a_failed_webhook_through_the_engine_and_is_audited(clients, ours, role):
    assert retry(clients[role], ours.webhook).status_code == 302
    ours.webhook.refresh_from_db()
    assert ours.webhook.status == WebhookDelivery.PENDING and ours.webhook.max_tries > ours.webhook.tries
    assert ours.webhook.next_attempt_at is not None  # the engine's sweep picks it up if the wake-up is lost
    assert AuditEvent.objects.filter(kind="webhook.retried", object_id=str(ours.webhook.pk), issuer=ours.issuer).exists()


@pytest.mark.parametrize("role", ["analyst", "other_issuer"])
def test_retry_now_changes_nothing_for_who_may_not(clients, ours, role):
    response = retry(clients[role], ours.webhook)
    assert response.status_code in (200, 302, 403)
    ours.webhook.refresh_from_db()
    assert ours.webhook.status == WebhookDelivery.FAILED
    assert not AuditEvent.objects.filter(kind="webhook.retried").exists()


def test_retry_now_by_anonymous_is_sent_to_login(ours):
    response = retry(Client(), ours.webhook)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    ours.webhook.refresh_from_db()
    assert ours.webhook.status == WebhookDelivery.FAILED


def test_the_delivery_lists_show_status_in_words_and_filter_by_it(clients, ours):
    sms = page(clients["operator"], reverse("admin:sms_smsdelivery_changelist"), status="failed")
    assert "Failed" in sms and ours.sms.masked_to in sms and f">{ours.sms.pk}<" not in sms  # a link, never a column
    assert page(clients["operator"], reverse("admin:sms_smsdelivery_changelist"), status="delivered").count(ours.sms.masked_to) == 0
    detail = page(clients["operator"], reverse("admin:sms_smsdelivery_change", args=[ours.sms.pk]))
    assert "Failed (no retry)" in detail and "30003" in detail  # the try, inline
    never_secret(detail, ours)
    webhooks = page(clients["operator"], WEBHOOKS, status="failed")
    assert "Authentication result" in webhooks and "Retry now" in webhooks


def test_the_analyst_is_not_offered_retry_now(clients, ours):
    assert "retry_now" not in page(clients["analyst"], WEBHOOKS)


# ---------------------------------------------------------------- API keys


def test_a_revoked_api_key_says_so_in_words(clients, ours):
    make_api_key(ours.issuer, name="old key")
    key = ApiKey.objects.get(issuer=ours.issuer, name="old key")
    issuer_services.api_key_revoke(api_key=key, actor="tests")
    html = page(clients["issuer_admin"], reverse("admin:issuers_apikey_changelist"))
    assert f"Revoked on {timezone.localtime(key.refresh_from_db() or key.revoked_at):%b}" in html
    assert "icon-yes.svg" not in html and "icon-no.svg" not in html


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("term", ["not-a-uuid", "%", "' OR 1=1 --", "9" * 40, "１２３４", "+81"])
def test_every_changelist_answers_any_search_term_without_an_error(clients, term):
    from django.apps import apps
    from django.contrib import admin

    for model in apps.get_models():
        if not admin.site.is_registered(model) or not admin.site.get_model_admin(model).get_search_fields(None):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert clients["superuser"].get(url, {"q": term}).status_code == 200, (model.__name__, term)
