"""The cardholder's page as the hub of the admin (SPEC §5.6): phones, cards, devices, recent
transactions and their SMS and webhook deliveries, each a link to its own page; and the card's
page linking back to its cardholder, its transactions and deliveries.

Cards (layer 2) may not import the apps above it, so the pages that gather them are composed
here, at the top of the layers the hub shows, by extending the cards app's own admins."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.utils.translation import gettext, gettext_lazy as _

from apps.cards.admin import CARD_STATUS_WORDS, CardAdmin, CardholderAdmin
from apps.cards.models import Card, Cardholder
from apps.core import display
from apps.devices.admin import STATUS_WORDS as DEVICE_STATUS_WORDS
from apps.sms.admin import STATUS_WORDS as SMS_STATUS_WORDS
from apps.sms.models import SmsDelivery
from apps.threeds import emv
from apps.threeds.models import Transaction
from apps.webhooks.admin import KIND_WORDS as WEBHOOK_KIND_WORDS
from apps.webhooks.admin import STATUS_WORDS as WEBHOOK_STATUS_WORDS
from apps.webhooks.models import WebhookDelivery

RECENT = 10
# Deliveries are found through the transactions they belong to (acsTransID is indexed on both).
DELIVERY_LOOKBACK = 50


def short_id(value):
    """A UUID as people tell it apart: its first group, the whole as a tooltip."""
    return format_html('<span title="{}">{}…</span>', value, str(value)[:8])


def _link(viewname: str, pk, text):
    return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)


def _table(headers, rows, empty):
    if not rows:
        return format_html("<p>{}</p>", empty)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),) for row in rows))
    return format_html('<table class="hub"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def transactions_table(transactions):
    rows = [
        (
            _link("admin:threeds_transaction_change", tx.acs_trans_id, short_id(tx.acs_trans_id)),
            localtime(tx.created_at).strftime("%Y-%m-%d %H:%M"),
            f"•••• {tx.pan_last4}",
            tx.merchant_name or "—",
            display.amount(tx.purchase_amount, tx.purchase_currency, tx.purchase_exponent),
            emv.trans_status_text(tx.trans_status or tx.ares_trans_status),
        )
        for tx in transactions
    ]
    headers = ["acsTransID", gettext("When"), gettext("Card"), gettext("Merchant"), gettext("Amount"), gettext("Result")]
    return _table(headers, rows, gettext("No transactions yet."))


def delivery_links(*, issuer_id, acs_trans_ids):
    """The SMS and webhook deliveries of these transactions, newest first, as a table of links."""
    if not acs_trans_ids:
        return _table([], [], gettext("No SMS or webhook deliveries."))
    sms = (
        SmsDelivery.objects.filter(issuer_id=issuer_id, acs_trans_id__in=acs_trans_ids)
        .defer("body_blob", "to").order_by("-created_at")[: RECENT * 2]
    )
    webhooks = (
        WebhookDelivery.objects.filter(issuer_id=issuer_id, acs_trans_id__in=acs_trans_ids)
        .defer("payload_blob", "display_payload").order_by("-created_at")[: RECENT * 2]
    )
    rows = [
        (d.created_at, "SMS", d.masked_to, SMS_STATUS_WORDS.get(d.status, d.status), d.tries, "admin:sms_smsdelivery_change", d.pk)
        for d in sms
    ] + [
        (d.created_at, gettext("Webhook"), WEBHOOK_KIND_WORDS.get(d.kind, d.kind), WEBHOOK_STATUS_WORDS.get(d.status, d.status), d.tries,
         "admin:webhooks_webhookdelivery_change", d.pk)
        for d in webhooks
    ]
    rows = sorted(rows, key=lambda r: r[0], reverse=True)[: RECENT * 2]
    cells = [
        (_link(view, pk, localtime(when).strftime("%Y-%m-%d %H:%M:%S")), channel, to, status, tries)
        for when, channel, to, status, tries, view, pk in rows
    ]
    headers = [gettext("When"), gettext("Channel"), gettext("To / kind"), gettext("Status"), gettext("Tries")]
    return _table(headers, cells, gettext("No SMS or webhook deliveries."))


def _recent_transactions(cards_filter: dict, limit: int = RECENT):
    return list(Transaction.objects.filter(**cards_filter).order_by("-created_at")[:limit])


def _recent_acs_trans_ids(cards_filter: dict) -> list:
    return list(
        Transaction.objects.filter(**cards_filter).order_by("-created_at").values_list("acs_trans_id", flat=True)[:DELIVERY_LOOKBACK]
    )


class CardholderHubAdmin(CardholderAdmin):
    hub_fields = ["cards_section", "devices_section", "transactions_section", "deliveries_section"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [
            *fieldsets,
            (_("Cards"), {"fields": ["cards_section"]}),
            (_("Devices"), {"fields": ["devices_section"]}),
            (_("Recent transactions"), {"fields": ["transactions_section"]}),
            (_("Recent SMS and webhook deliveries"), {"fields": ["deliveries_section"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else [*fields, *self.hub_fields]

    @admin.display(description=_("Cards"))
    def cards_section(self, obj):
        rows = [
            (
                _link("admin:cards_card_change", card.pk, card.card_id), card.masked_pan,
                CARD_STATUS_WORDS.get(card.status, card.status), card.get_network_display(), card.expiry,
            )
            for card in obj.cards.order_by("card_id")
        ]
        headers = [gettext("Card id"), gettext("Card"), gettext("Status"), gettext("Network"), gettext("Expiry")]
        return _table(headers, rows, gettext("No cards."))

    @admin.display(description=_("Devices"))
    def devices_section(self, obj):
        rows = [
            (
                _link("admin:devices_device_change", device.pk, str(device)),
                DEVICE_STATUS_WORDS.get(device.status, device.status), device.get_push_platform_display(),
                localtime(device.last_used_at).strftime("%Y-%m-%d %H:%M") if device.last_used_at else "—",
            )
            for device in obj.devices.order_by("-created_at")
        ]
        headers = [gettext("Device"), gettext("Status"), gettext("Push"), gettext("Last used")]
        return _table(headers, rows, gettext("No devices registered."))

    @admin.display(description=_("Recent transactions"))
    def transactions_section(self, obj):
        return transactions_table(_recent_transactions({"card__cardholder": obj}))

    @admin.display(description=_("Recent SMS and webhook deliveries"))
    def deliveries_section(self, obj):
        ids = _recent_acs_trans_ids({"card__cardholder": obj})
        return delivery_links(issuer_id=obj.issuer_id, acs_trans_ids=ids)


class CardHubAdmin(CardAdmin):
    # The cardholder field, read-only here, is already the link back to the cardholder's page.
    change_fields = [*CardAdmin.change_fields, "transactions_section", "deliveries_section"]

    @admin.display(description=_("Recent transactions"))
    def transactions_section(self, obj):
        return transactions_table(_recent_transactions({"card": obj}))

    @admin.display(description=_("Recent SMS and webhook deliveries"))
    def deliveries_section(self, obj):
        ids = _recent_acs_trans_ids({"card": obj})
        return delivery_links(issuer_id=obj.issuer_id, acs_trans_ids=ids)


admin.site.unregister(Cardholder)
admin.site.register(Cardholder, CardholderHubAdmin)
admin.site.unregister(Card)
admin.site.register(Card, CardHubAdmin)
