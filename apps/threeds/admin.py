"""3-D Secure transactions and their RReqs in the admin, read-only: what happened is recorded by
the protocol, never edited by hand. No PAN exists to show (last 4 only), and the authentication
value (a cryptogram good for an authorisation) is not shown either."""

import json
import uuid
from decimal import Decimal

from cryptography.hazmat.primitives import hashes
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apps.core.admin_scoping import IssuerScopedAdmin, ReadOnlyAdminMixin, RetryDeliveriesMixin
from apps.core.pan import NETWORK_CHOICES
from apps.issuers.models import Issuer
from apps.threeds.card_ranges import card_range_data
from apps.core.policy_admin import PolicyHistoryMixin
from apps.threeds.backtest import DEFAULT_DAYS, risk_policy_backtest
from apps.threeds.policy_forms import LABEL_WORDS, OUTCOME_WORDS, RiskPolicyForm
from apps.threeds.policy_words import risk_policy_changes, risk_policy_words
from apps.threeds import rreq
from apps.threeds.models import AcsSigningKey, RiskPolicy, RReqAttempt, RReqDelivery, Transaction
from apps.threeds.selectors import transaction_timeline
from apps.threeds.signing_keys import common_name, signing_key_alerts
from apps.threeds.signing_keys import days_left as cert_days_left

HIDDEN = "[not shown]"
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


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = [
        "acs_trans_id", "created_at", "last4", "merchant_name", "amount", "ares_trans_status", "trans_status", "method",
    ]
    list_filter = ["trans_status", "ares_trans_status", "challenge__method", "device_channel", "network", "created_at"]
    list_select_related = ["challenge"]
    search_fields = ["=pan_last4", "merchant_name"]
    search_help_text = "acsTransID, dsTransID, card last 4 or merchant name."
    show_full_result_count = False  # no COUNT over millions of rows on every page
    fieldsets = [
        (None, {"fields": [
            "acs_trans_id", "ds_trans_id", "three_ds_server_trans_id", "sdk_trans_id", "created_at", "finished_at",
        ]}),
        ("Card and purchase", {"fields": [
            "card", "last4", "network", "co_badge", "merchant_name", "acquirer_merchant_id", "acquirer_bin", "mcc",
            "merchant_country_code", "amount", "purchase_date",
        ]}),
        ("Message", {"fields": ["message_version", "device_channel", "message_category", "three_ds_requestor_challenge_ind", "ds_url"]}),
        ("Decision", {"fields": ["risk_score", "rules", "exemption"]}),
        ("Result", {"fields": [
            "ares_trans_status", "trans_status", "trans_status_reason", "eci", "authentication_type",
            "authentication_value_issued", "authentication_value_key_id", "challenge_cancel", "interaction_counter",
        ]}),
        ("Challenge", {"fields": ["challenge_summary", "rreq_summary"]}),
        ("Timeline", {"fields": ["timeline"]}),
        ("Messages", {"classes": ["collapse"], "fields": ["areq_pretty", "ares_pretty"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        by_id = _search_by_uuid(queryset, search_term, "acs_trans_id", "ds_trans_id")
        return (results | by_id if by_id is not None else results), may_have_duplicates

    @admin.display(description="Card", ordering="pan_last4")
    def last4(self, obj) -> str:
        return f"•••• {obj.pan_last4}"

    @admin.display(description="Amount")
    def amount(self, obj) -> str:
        if obj.purchase_amount is None:
            return "—"
        major = Decimal(obj.purchase_amount).scaleb(-(obj.purchase_exponent or 0))
        return f"{major:,} ({obj.purchase_currency})"

    @admin.display(description="Method")
    def method(self, obj) -> str:
        challenge = getattr(obj, "challenge", None)
        return challenge.get_method_display() if challenge else "—"

    @admin.display(description="Rules that fired")
    def rules(self, obj):
        return format_html_join("", "<div>{} ({})</div>", ((r.get("rule"), f"{r.get('weight', 0):+d}") for r in obj.risk_rules or []))

    @admin.display(boolean=True, description="Authentication value issued")
    def authentication_value_issued(self, obj) -> bool:
        return bool(obj.authentication_value)

    @admin.display(description="Challenge")
    def challenge_summary(self, obj):
        challenge = getattr(obj, "challenge", None)
        if challenge is None:
            return "—"
        session = challenge.otp_session
        attempts = f", OTP attempts {session.attempts_used}, resends {session.resends_used}" if session else ""
        fallback = f", fell back: {challenge.fallback_reason}" if challenge.fallback_reason else ""
        return f"{challenge.get_method_display()} — {challenge.state}{fallback}{attempts}"

    @admin.display(description="RReq to the DS")
    def rreq_summary(self, obj):
        delivery = RReqDelivery.objects.filter(transaction=obj).first()
        if delivery is None:
            return "—"
        url = reverse("admin:threeds_rreqdelivery_change", args=[delivery.pk])
        detail = f"resultsStatus {delivery.results_status}" if delivery.results_status else delivery.last_error
        return format_html('<a href="{}">{}</a> after {} tries {}', url, delivery.get_status_display(), delivery.tries, detail)

    @admin.display(description="Events, oldest first")
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
        return format_html("<table><tr><th>When</th><th>What</th><th>Who</th><th>Data</th></tr>{}</table>", rows)

    @admin.display(description="AReq (PAN removed)")
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
    list_display = ["id", "created_at", "transaction_id", "status", "tries", "results_status", "finished_at", "last_error"]
    list_filter = ["status", "created_at"]
    search_fields = ["=id"]
    search_help_text = "Delivery id or acsTransID."
    fields = [
        "transaction_link", "url", "status", "tries", "max_tries", "next_attempt_at", "results_status", "last_error",
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

    @admin.display(description="Transaction")
    def transaction_link(self, obj):
        url = reverse("admin:threeds_transaction_change", args=[obj.transaction_id])
        return format_html('<a href="{}">{}</a>', url, obj.transaction_id)

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

    @admin.display(description="Subject CN")
    def subject_cn(self, obj) -> str:
        return common_name(self._leaf(obj).subject)

    @admin.display(description="Issuer CN")
    def issuer_cn(self, obj) -> str:
        return common_name(self._leaf(obj).issuer)

    @admin.display(description="Not after")
    def not_after(self, obj):
        return self._leaf(obj).not_valid_after_utc

    @admin.display(description="Days left")
    def days_left(self, obj) -> int:
        return cert_days_left(self._leaf(obj))

    @admin.display(description="SHA-256 fingerprint")
    def fingerprint(self, obj):
        return format_html("<code>{}</code>", _fingerprint(self._leaf(obj)))

    @admin.display(description="Certificate chain, leaf first")
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
            "<table><tr><th>Subject</th><th>Issuer</th><th>Not before</th><th>Not after</th>"
            "<th>SHA-256 fingerprint</th></tr>{}</table>", rows,
        )


# The alerts also on the admin index, where an operator lands: AdminSite has no hook for it, so its
# index view is wrapped (admin modules load before the admin's URLs are built, which bind it).
_admin_index = admin.site.index


def _index_with_signing_key_alerts(request, extra_context=None):
    return signing_key_alerts_show(request, _admin_index(request, extra_context))


admin.site.index = _index_with_signing_key_alerts
