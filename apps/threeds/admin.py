"""3-D Secure transactions and their RReqs in the admin, read-only: what happened is recorded by
the protocol, never edited by hand. No PAN exists to show (last 4 only), and the authentication
value (a cryptogram good for an authorisation) is not shown either."""

import json
import uuid

from cryptography.hazmat.primitives import hashes
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from apps.core import display
from apps.core.admin_display import created, words_filter
from apps.core.admin_scoping import IssuerScopedAdmin, ReadOnlyAdminMixin, RetryDeliveriesMixin
from apps.core.pan import NETWORK_CHOICES
from apps.core.policy_admin import PolicyHistoryMixin
from apps.issuers.models import Issuer
from apps.threeds import attention, emv, rreq
from apps.threeds.admin_hub import delivery_links, short_id
from apps.threeds.attention import stuck_challenges
from apps.threeds.backtest import DEFAULT_DAYS, risk_policy_backtest
from apps.threeds.card_ranges import card_range_data
from apps.threeds.explanation import explain
from apps.threeds.method import method_status_text
from apps.threeds.models import AcsSigningKey, Challenge, RiskPolicy, RReqAttempt, RReqDelivery, Transaction
from apps.threeds.policy_forms import LABEL_WORDS, OUTCOME_WORDS, RiskPolicyForm
from apps.threeds.policy_words import risk_policy_changes, risk_policy_words
from apps.threeds.selectors import transaction_timeline
from apps.threeds.signing_keys import common_name, signing_key_alerts
from apps.threeds.signing_keys import days_left as cert_days_left

HIDDEN = "[not shown]"
CHALLENGE_METHOD_WORDS = {Challenge.OOB: _("Challenge: app (out of band)"), Challenge.SMS_OTP: _("Challenge: SMS code")}
# Lazy: the words are those of the language of the request that shows them.
TRANS_STATUS_WORDS = {status: lazy(emv.trans_status_text, str)(status) for status in emv.TRANS_STATUSES}
DEVICE_CHANNEL_WORDS = {
    Transaction.DEVICE_APP: _("App"), Transaction.DEVICE_BROWSER: _("Browser"), Transaction.DEVICE_3RI: _("Requestor-initiated (3RI)"),
}
RREQ_STATUS_WORDS = {
    RReqDelivery.PENDING: _("Waiting to be sent"), RReqDelivery.SUCCEEDED: _("Delivered"), RReqDelivery.FAILED: _("Failed"),
}
CHALLENGE_STATE_WORDS = {
    Challenge.AWAITING_CREQ: _("waiting for the cardholder"), Challenge.IN_PROGRESS: _("in progress"),
    Challenge.SUCCEEDED: _("succeeded"), Challenge.FAILED: _("failed"), Challenge.CANCELLED: _("cancelled"),
    Challenge.TIMED_OUT: _("timed out"),
}
# Message elements never shown on a page.
_HIDDEN_ELEMENTS = {"authenticationValue"}


def _pretty(document) -> str:
    def hide(value):
        if isinstance(value, dict):
            return {k: HIDDEN if k in _HIDDEN_ELEMENTS else hide(v) for k, v in value.items()}
        if isinstance(value, list):
            return [hide(v) for v in value]
        return value

    return format_html("<pre>{}</pre>", json.dumps(hide(document), indent=2, ensure_ascii=False))


def _search_by_uuid(queryset, search_term: str, *fields: str):
    """UUID columns compared as UUIDs: their text form differs between databases."""
    try:
        value = uuid.UUID(search_term.strip())
    except ValueError:
        return None
    result = queryset.none()
    for field in fields:
        result = result | queryset.filter(**{field: value})
    return result


# ---------------------------------------------------------------- transactions


class StuckChallengeFilter(admin.SimpleListFilter):
    """Challenges still open past their deadline: the timeout sweep should have ended them."""

    title = _("attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("stuck", _("Challenge stuck past its timeout"))]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset.filter(challenge__in=stuck_challenges())
        return queryset


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["acs_trans_id_and_time", "last4", "merchant_name", "amount", "outcome_and_flow"]
    list_filter = [
        StuckChallengeFilter,
        words_filter("trans_status", _("result"), TRANS_STATUS_WORDS),
        words_filter("ares_trans_status", _("ARes"), TRANS_STATUS_WORDS),
        words_filter("challenge__method", _("challenge"), CHALLENGE_METHOD_WORDS),
        words_filter("device_channel", _("channel"), DEVICE_CHANNEL_WORDS),
        "network", "created_at",
    ]
    list_select_related = ["challenge"]
    search_fields = ["=pan_last4", "merchant_name"]
    search_help_text = _("acsTransID, dsTransID, card last 4 or merchant name.")
    show_full_result_count = False  # no COUNT over millions of rows on every page
    fieldsets = [
        (None, {"fields": [
            "acs_trans_id", "ds_trans_id", "three_ds_server_trans_id", "sdk_trans_id", "created_at", "finished_at",
        ]}),
        (_("Card and purchase"), {"fields": [
            "card", "cardholder_link", "last4", "network", "co_badge", "merchant_name", "acquirer_merchant_id", "acquirer_bin",
            "mcc", "merchant_country", "amount", "purchase_date",
        ]}),
        (_("Message"), {"fields": ["message_version", "device_channel", "message_category", "three_ds_requestor_challenge_ind", "ds_url"]}),
        (_("Decision"), {"fields": ["explanation", "risk_score", "rules", "exemption", "three_ds_method_text"]}),
        (_("Result"), {"fields": [
            "ares_outcome", "outcome", "reason", "eci", "authentication_type",
            "authentication_value_issued", "authentication_value_key_id", "challenge_cancel", "interaction_counter",
        ]}),
        (_("Challenge"), {"fields": ["challenge_summary", "rreq_summary", "deliveries"]}),
        (_("Timeline"), {"fields": ["timeline"]}),
        (_("Messages"), {"classes": ["collapse"], "fields": ["areq_pretty", "ares_pretty"]}),
    ]
    readonly_fields = [field for _title, options in fieldsets for field in options["fields"]]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        by_id = _search_by_uuid(queryset, search_term, "acs_trans_id", "ds_trans_id")
        return (results | by_id if by_id is not None else results), may_have_duplicates

    @admin.display(description=_("acsTransID and time"), ordering="created_at")
    def acs_trans_id_and_time(self, obj):
        # The first group tells transactions apart; the page shows the whole id. One column for
        # both: a list of 1366 px has no room for a second.
        return format_html('{}<div class="quiet">{}</div>', short_id(obj.acs_trans_id), created(obj))

    @admin.display(description=_("Card"), ordering="pan_last4")
    def last4(self, obj) -> str:
        return f"•••• {obj.pan_last4}"

    @admin.display(description=_("Amount"))
    def amount(self, obj) -> str:
        return display.amount(obj.purchase_amount, obj.purchase_currency, obj.purchase_exponent)

    @admin.display(description=_("Merchant country"))
    def merchant_country(self, obj) -> str:
        return display.country_name(obj.merchant_country_code)

    @admin.display(description=_("Result"), ordering="trans_status")
    def outcome(self, obj) -> str:
        return emv.trans_status_text(obj.trans_status or obj.ares_trans_status)

    @admin.display(description=_("Result"), ordering="trans_status")
    def outcome_and_flow(self, obj):
        return format_html('{}<div class="quiet">{}</div>', self.outcome(obj), self.flow(obj))

    @admin.display(description=_("ARes"))
    def ares_outcome(self, obj) -> str:
        return emv.trans_status_text(obj.ares_trans_status)

    @admin.display(description=_("Reason"))
    def reason(self, obj) -> str:
        return emv.reason_text(obj.trans_status_reason)

    @admin.display(description=_("In words"))
    def explanation(self, obj) -> str:
        return explain(obj)

    @admin.display(description=_("3DS Method"))
    def three_ds_method_text(self, obj) -> str:
        return method_status_text(obj.three_ds_method)

    @admin.display(description=_("Flow"))
    def flow(self, obj) -> str:
        challenge = getattr(obj, "challenge", None)
        if challenge is None:
            return gettext("Frictionless")
        return CHALLENGE_METHOD_WORDS.get(challenge.method, challenge.method)

    @admin.display(description=_("Cardholder"))
    def cardholder_link(self, obj):
        if obj.card_id is None:
            return "—"
        cardholder = obj.card.cardholder
        url = reverse("admin:cards_cardholder_change", args=[cardholder.pk])
        return format_html('<a href="{}">{}</a>', url, cardholder)

    @admin.display(description=_("Rules that fired"))
    def rules(self, obj):
        return format_html_join("", "<div>{} ({})</div>", ((r.get("rule"), f"{r.get('weight', 0):+d}") for r in obj.risk_rules or []))

    @admin.display(boolean=True, description=_("Authentication value issued"))
    def authentication_value_issued(self, obj) -> bool:
        return bool(obj.authentication_value)

    @admin.display(description=_("Challenge"))
    def challenge_summary(self, obj):
        challenge = getattr(obj, "challenge", None)
        if challenge is None:
            return "—"
        session = challenge.otp_session
        parts = [CHALLENGE_METHOD_WORDS.get(challenge.method, challenge.method), CHALLENGE_STATE_WORDS.get(challenge.state, challenge.state)]
        if challenge.fallback_reason:
            parts.append(gettext("fell back: %(reason)s") % {"reason": challenge.fallback_reason})
        if session:
            parts.append(gettext("OTP attempts %(attempts)s, resends %(resends)s") % {
                "attempts": session.attempts_used, "resends": session.resends_used})
        return " — ".join(str(p) for p in parts)

    @admin.display(description=_("RReq to the DS"))
    def rreq_summary(self, obj):
        delivery = RReqDelivery.objects.filter(transaction=obj).first()
        if delivery is None:
            return "—"
        url = reverse("admin:threeds_rreqdelivery_change", args=[delivery.pk])
        detail = f"resultsStatus {delivery.results_status}" if delivery.results_status else delivery.last_error
        return format_html(
            '<a href="{}">{}</a> — {} {}', url, delivery.get_status_display(),
            ngettext("%(count)d try", "%(count)d tries", delivery.tries) % {"count": delivery.tries}, detail,
        )

    @admin.display(description=_("SMS and webhooks"))
    def deliveries(self, obj):
        return delivery_links(issuer_id=obj.issuer_id, acs_trans_ids=[obj.acs_trans_id])

    @admin.display(description=_("Events, oldest first"))
    def timeline(self, obj):
        events = transaction_timeline(tx=obj)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (e.created_at.isoformat(timespec="milliseconds"), e.kind, e.actor, json.dumps(e.data, ensure_ascii=False, sort_keys=True))
                for e in events
            ),
        )
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            gettext("When"), gettext("What"), gettext("Who"), gettext("Data"), rows,
        )

    @admin.display(description=_("AReq (PAN removed)"))
    def areq_pretty(self, obj):
        return _pretty(obj.areq)

    @admin.display(description="ARes")
    def ares_pretty(self, obj):
        return _pretty(obj.ares)


# ---------------------------------------------------------------- RReq deliveries


class RReqAttemptInline(admin.TabularInline):
    model = RReqAttempt
    fields = [
        "number", "state", "started_at", "finished_at", "duration_ms", "status_code", "results_status", "error_code",
        "error_message", "error_class", "response_excerpt", "task_id",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        # The tries are part of the delivery: whoever may see it sees them.
        return self.admin_site._registry[RReqDelivery].has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RReqDelivery)
class RReqDeliveryAdmin(RetryDeliveriesMixin, IssuerScopedAdmin):
    list_display = [created, "transaction_short", "status_words", "tries", "results_status", "last_error"]
    list_filter = [words_filter("status", _("status"), RREQ_STATUS_WORDS), "created_at"]
    search_fields = ["=id"]
    search_help_text = _("Delivery id or acsTransID.")
    fields = [
        "transaction_link", "url", "status_words", "tries", "max_tries", "next_attempt_at", "results_status", "last_error",
        "created_at", "finished_at", "message_pretty",
    ]
    readonly_fields = fields
    inlines = [RReqAttemptInline]
    retry_permission = "threeds.change_rreqdelivery"
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        by_id = _search_by_uuid(queryset, search_term, "transaction_id")
        return (results | by_id if by_id is not None else results), may_have_duplicates

    @admin.display(description=_("Transaction"))
    def transaction_link(self, obj):
        url = reverse("admin:threeds_transaction_change", args=[obj.transaction_id])
        return format_html('<a href="{}">{}</a>', url, obj.transaction_id)

    @admin.display(description="acsTransID", ordering="transaction_id")
    def transaction_short(self, obj):
        return short_id(obj.transaction_id)

    @admin.display(description=_("Status"), ordering="status")
    def status_words(self, obj) -> str:
        return RREQ_STATUS_WORDS.get(obj.status, obj.status)

    @admin.display(description="RReq")
    def message_pretty(self, obj):
        return _pretty(obj.message)

    def retry_one(self, delivery, *, actor: str) -> None:
        rreq.rreq_retry(delivery=delivery, actor=actor)


@admin.register(RiskPolicy)
class RiskPolicyAdmin(PolicyHistoryMixin, IssuerScopedAdmin):
    """The issuer's risk rules, edited by its issuer admins; every save is a version with its
    reason, and a draft can be backtested on the issuer's own recent AReqs before it is saved."""

    form = RiskPolicyForm

    class Media:
        css = {"all": ["core/policies.css"]}

    change_form_template = "admin/policies/risk_change_form.html"
    list_display = ["__str__", "challenge_threshold", "velocity_max_per_hour", "no_method_outcome", "allow_oob", "version", "updated_at"]
    readonly_fields = ["version", "updated_at"]
    fieldsets = [
        (None, {"fields": ["issuer", "base_score", "challenge_threshold", "version", "updated_at"]}),
        (_("Amount"), {"fields": ["amount_thresholds", "amount_weight"]}),
        (_("Exemptions"), {"fields": ["tra_max_amounts", "sca_performed_max_amounts", "exemption_credit"]}),
        (_("Requestor, velocity, merchant, category"), {"fields": [
            "requestor_prefers_challenge_weight", "velocity_max_per_hour", "velocity_warn_per_hour", "velocity_weight",
            "new_merchant_weight", "non_payment_weight"]}),
        (_("3DS Method"), {"fields": ["three_ds_method_missing_weight", "browser_data_mismatch_weight"]}),
        (_("Challenge"), {"fields": ["no_method_outcome", "allow_oob", "allow_fallback_to_sms", "first_creq_timeout_seconds",
                                     "challenge_timeout_seconds", "oob_timeout_seconds"]}),
    ]
    # Only on a form that can be saved: they are form fields, not the policy's.
    editing_fieldsets = [
        (_("Reason for change"), {"fields": ["reason"]}),
        (_("Backtest"), {"fields": ["backtest_days"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj) if obj else self.has_add_permission(request):
            return [*fieldsets, *self.editing_fieldsets]
        return [(None, {"fields": ["issuer", "version", "updated_at", "settings_in_words"]})]

    def policy_words(self, obj):
        return risk_policy_words(obj.snapshot())

    @admin.display(description=_("Settings"))
    def settings_in_words(self, obj):
        return super().settings_in_words(obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def policy_versions(self, obj):
        return obj.versions.order_by("version")

    def policy_changes(self, before, after):
        return risk_policy_changes(before, after)

    def get_urls(self):
        # The card ranges for one DS, every issuer's (SPEC §5.1, the issuer API's list): what the
        # platform operator hands to that network's DS, so superusers only.
        return [
            path("card-ranges/<str:network>.json", self.admin_site.admin_view(self.card_ranges_view), name="threeds_card_ranges"),
            path("<path:object_id>/backtest/", self.admin_site.admin_view(self.backtest_view), name="threeds_riskpolicy_backtest"),
            *super().get_urls(),
        ]

    def backtest_view(self, request, object_id):
        """The change form's values, unsaved, replayed over this issuer's recent AReqs beside the
        policy in force. Only for those who may change the policy; nothing is written."""
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(_("No such policy."))
        if request.method != "POST" or not self.has_change_permission(request, obj):
            raise PermissionDenied
        current = RiskPolicy.objects.get(pk=obj.pk)
        form = self.get_form(request, obj, change=True)(request.POST, instance=obj)
        form.dry_run = True
        result = None
        if form.is_valid():
            result = risk_policy_backtest(issuer=obj.issuer, current=current, draft=form.instance,
                                          days=form.cleaned_data.get("backtest_days") or DEFAULT_DAYS)
        changes = risk_policy_changes(current.snapshot(), form.instance.snapshot()) if result else []
        # The draft goes back to the change form as it was posted, for "Publish" (save with a reason).
        draft_fields = [(name, value) for name in request.POST for value in request.POST.getlist(name)
                        if name not in ("csrfmiddlewaretoken", "_backtest", "_save", "_continue", "reason")]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Backtest of a draft of %(policy)s") % {"policy": current},
            "subtitle": None,
            "opts": self.model._meta,
            "object": current,
            "form": form,
            "result": result,
            "changes": changes,
            "draft_fields": draft_fields,
        }
        if result:
            word = OUTCOME_WORDS.get
            context.update(
                outcome_rows=[(key, text, result.current[key], result.draft[key]) for key, text in OUTCOME_WORDS.items()],
                flip_rows=[{"before": b, "after": a, "before_word": word(b), "after_word": word(a), "count": n}
                           for (b, a), n in result.flips.most_common()],
                samples=[{**vars(s), "before_word": word(s.before), "after_word": word(s.after), "label_word": LABEL_WORDS.get(s.label, "")}
                         for s in result.samples],
            )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/policies/backtest.html", context)

    def card_ranges_view(self, request, network):
        if not request.user.is_superuser:
            raise PermissionDenied
        if network not in dict(NETWORK_CHOICES):
            raise Http404("No such network.")
        entries = [e for issuer in Issuer.objects.order_by("issuer_id") for e in card_range_data(issuer=issuer, network=network)]
        entries.sort(key=lambda e: e["startRange"].ljust(19, "0"))
        response = JsonResponse({"cardRangeData": entries})
        response["Content-Disposition"] = f'attachment; filename="card-ranges-{network}.json"'
        return response


# ---------------------------------------------------------------- ACS signing keys (platform-wide)


def _fingerprint(cert) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def signing_key_alerts_show(request, response):
    """The signing-key alerts as admin messages on `response`, for superusers (the only ones who
    can act). Only on a page about to be rendered (TemplateResponse renders after the view
    returns): messages added before a redirect would be kept for the next page and shown twice."""
    if request.user.is_superuser and isinstance(response, TemplateResponse) and not response.is_rendered:
        for alert in signing_key_alerts():
            level = messages.ERROR if alert.level == "error" else messages.WARNING
            messages.add_message(request, level, alert.message)
    return response


@admin.register(AcsSigningKey)
class AcsSigningKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ACS's signing certificates per card network, for superusers only: the keys are the
    platform's, not an issuer's. Read only, and the private key (or its sealed blob) is never
    shown: installing is `manage.py acs_signing_key install`'s job, which checks key and chain."""

    list_display = ["network", "subject_cn", "issuer_cn", "not_after", "days_left", "fingerprint", "active"]
    list_filter = ["active", "network"]
    fields = ["network", "active", "created_at", "certificates"]
    readonly_fields = fields
    actions = None

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def changelist_view(self, request, extra_context=None):
        return signing_key_alerts_show(request, super().changelist_view(request, extra_context))

    @staticmethod
    def _leaf(obj):
        # Parsed once per row: every column reads the leaf.
        if not hasattr(obj, "_leaf_cert"):
            obj._leaf_cert = obj.chain()[0]
        return obj._leaf_cert

    @admin.display(description=_("Subject CN"))
    def subject_cn(self, obj) -> str:
        return common_name(self._leaf(obj).subject)

    @admin.display(description=_("Issuer CN"))
    def issuer_cn(self, obj) -> str:
        return common_name(self._leaf(obj).issuer)

    @admin.display(description=_("Not after"))
    def not_after(self, obj):
        return self._leaf(obj).not_valid_after_utc

    @admin.display(description=_("Days left"))
    def days_left(self, obj) -> int:
        return cert_days_left(self._leaf(obj))

    @admin.display(description=_("SHA-256 fingerprint"))
    def fingerprint(self, obj):
        return format_html("<code>{}</code>", _fingerprint(self._leaf(obj)))

    @admin.display(description=_("Certificate chain, leaf first"))
    def certificates(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (c.subject.rfc4514_string(), c.issuer.rfc4514_string(), c.not_valid_before_utc.isoformat(),
                 c.not_valid_after_utc.isoformat(), _fingerprint(c))
                for c in obj.chain()
            ),
        )
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            pgettext("certificate", "Subject"), pgettext("certificate", "Issuer"), gettext("Not before"), gettext("Not after"),
            gettext("SHA-256 fingerprint"), rows,
        )


# ---------------------------------------------------------------- the landing page


def attention_items(request) -> list[dict]:
    """What needs the user's attention, each item scoped to their issuer (superusers: all) and
    shown only to a role that may open the list it links to."""
    user = request.user
    issuer_id = None if user.is_superuser else user.issuer_id
    if issuer_id is None and not user.is_superuser:
        return []
    since = timezone.localtime(timezone.now() - attention.FAILED_DELIVERY_WINDOW).isoformat(timespec="seconds")
    items = []
    if user.has_perm("sms.view_smsdelivery"):
        count = attention.failed_sms_deliveries(issuer_id=issuer_id).count()
        query = urlencode({"status__in": ",".join(attention.SMS_FAILED_STATUSES), "created_at__gte": since})
        items.append({
            "label": _("SMS not delivered (last 24 hours)"), "count": count, "alert": count > 0,
            "url": f"{reverse('admin:sms_smsdelivery_changelist')}?{query}",
        })
        for rate in attention.sms_provider_error_rates(issuer_id=issuer_id):
            items.append({
                "label": gettext("SMS provider %(provider)s: failed tries in the last hour") % {"provider": rate.provider},
                "count": f"{rate.failed} / {rate.tries} ({rate.percent:.0f}%)", "alert": rate.percent >= 10,
                "url": f"{reverse('admin:sms_smsdelivery_changelist')}",
            })
    if user.has_perm("webhooks.view_webhookdelivery"):
        count = attention.failed_webhook_deliveries(issuer_id=issuer_id).count()
        query = urlencode({"status__exact": "failed", "created_at__gte": since})
        items.append({
            "label": _("Webhooks failed (last 24 hours)"), "count": count, "alert": count > 0,
            "url": f"{reverse('admin:webhooks_webhookdelivery_changelist')}?{query}",
        })
    if user.has_perm("threeds.view_transaction"):
        count = attention.stuck_challenges(issuer_id=issuer_id).count()
        items.append({
            "label": _("Challenges stuck past their timeout"), "count": count, "alert": count > 0,
            "url": f"{reverse('admin:threeds_transaction_changelist')}?attention=stuck",
        })
    if user.is_superuser:
        soon = signing_key_alerts()
        items.append({
            "label": _("Signing certificates missing, expired or expiring within 30 days"), "count": len(soon),
            "alert": bool(soon), "url": reverse("admin:threeds_acssigningkey_changelist"),
        })
    return items


# The alerts and what needs attention on the admin index, where staff land: AdminSite has no hook
# for it, so its index view is wrapped (admin modules load before the admin's URLs are built,
# which bind it). templates/admin/index.html shows the items.
_admin_index = admin.site.index


def _index_with_attention(request, extra_context=None):
    extra_context = {**(extra_context or {}), "attention": attention_items(request)}
    return signing_key_alerts_show(request, _admin_index(request, extra_context))


admin.site.index = _index_with_attention
