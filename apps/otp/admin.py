from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin_display import words_filter
from apps.core.admin_scoping import IssuerScopedAdmin, IssuerScopedTabularInline, ReadOnlyAdminMixin
from apps.core.policy_admin import PolicyHistoryMixin
from apps.otp.forms import TEMPLATE_FIELDS, OtpPolicyForm
from apps.otp.models import OtpCode, OtpPolicy, OtpRefusal, OtpSession
from apps.otp.policy_words import otp_policy_changes, otp_policy_words


@admin.register(OtpPolicy)
class OtpPolicyAdmin(PolicyHistoryMixin, IssuerScopedAdmin):
    """An issuer's OTP rules as a form; every save a version with its reason, listed with the
    changes in words on the policy's History page."""

    form = OtpPolicyForm

    class Media:
        css = {"all": ["core/policies.css"]}

    list_display = ["__str__", "product", "delivery_mode", "code_length", "lifetime_seconds", "max_attempts", "max_resends", "version", "updated_at"]
    readonly_fields = ["version", "updated_at", "updated_by"]
    fieldsets = [
        (None, {"fields": ["issuer", "product", "delivery_mode", "version", "updated_at", "updated_by"]}),
        (_("Code"), {"fields": ["code_length", "lifetime_seconds", "max_attempts"]}),
        (_("Resends"), {"fields": ["max_resends", "resend_cooldown_seconds"]}),
        (_("Send limits (SMS-pumping protection)"), {"fields": ["allowed_countries", "max_sends_per_card_hour", "max_sends_per_card_day", "max_sends_per_phone_day"]}),
        (_("Message"), {"fields": [*TEMPLATE_FIELDS, "sender_ids"]}),
        (_("Reason for change"), {"fields": ["reason"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj) if obj else self.has_add_permission(request):
            return fieldsets
        # Read only: every setting in words (the texts per locale and the reason are form fields).
        return [(None, {"fields": ["issuer", "product", "version", "updated_at", "updated_by", "settings_in_words"]})]

    def policy_words(self, obj):
        return otp_policy_words(obj.snapshot())

    @admin.display(description=_("Settings"))
    def settings_in_words(self, obj):
        return super().settings_in_words(obj)

    def has_delete_permission(self, request, obj=None):
        # Versions are referenced by past challenges; a policy is edited, never removed.
        return False

    def policy_versions(self, obj):
        return obj.versions.order_by("version")

    def policy_changes(self, before, after):
        return otp_policy_changes(before, after)


SESSION_STATE_WORDS = {
    OtpSession.ACTIVE: _("Waiting for the code"), OtpSession.VERIFIED: _("Verified"), OtpSession.LOCKED: _("Locked (too many wrong codes)"),
    OtpSession.EXPIRED: _("Expired"), OtpSession.CANCELLED: _("Cancelled"),
}
CODE_STATE_WORDS = {
    OtpCode.ACTIVE: _("Valid"), OtpCode.USED: _("Used"), OtpCode.SUPERSEDED: _("Replaced by a resend"),
    OtpCode.EXPIRED: _("Expired"), OtpCode.DEAD: _("Invalidated"),
}
# The send limits that refuse an SMS (SMS-pumping protection), as apps.otp.services names them.
REFUSAL_WORDS = {
    "country_not_allowed": _("Country not allowed for SMS"), "card_hourly_limit": _("Card's hourly SMS limit reached"),
    "card_daily_limit": _("Card's daily SMS limit reached"), "phone_daily_limit": _("Phone's daily SMS limit reached"),
}


class OtpCodeInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = OtpCode
    issuer_field = "session__issuer"
    fields = ["state_words", "delivery_mode", "created_at", "expires_at"]  # never the hash
    readonly_fields = fields
    extra = 0

    @admin.display(description=_("State"))
    def state_words(self, obj) -> str:
        return CODE_STATE_WORDS.get(obj.state, obj.state)


@admin.register(OtpSession)
class OtpSessionAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["acs_trans_id", "masked_phone", "state_words", "attempts_used", "resends_used", "created_at"]
    list_filter = [words_filter("state", _("state"), SESSION_STATE_WORDS), "created_at"]
    search_fields = ["=acs_trans_id"]
    fields = ["acs_trans_id", "card", "masked_phone", "locale", "policy_version", "state_words", "attempts_used", "resends_used",
              "last_sent_at", "created_at", "finished_at", "transaction_details"]
    readonly_fields = fields
    inlines = [OtpCodeInline]

    @admin.display(description=_("State"), ordering="state")
    def state_words(self, obj) -> str:
        return SESSION_STATE_WORDS.get(obj.state, obj.state)


@admin.register(OtpRefusal)
class OtpRefusalAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["created_at", "reason_words", "card", "masked_destination"]
    list_filter = [words_filter("reason", _("reason"), REFUSAL_WORDS), "created_at"]
    fields = ["created_at", "reason_words", "card", "session", "masked_destination"]
    readonly_fields = fields

    @admin.display(description=_("Reason"), ordering="reason")
    def reason_words(self, obj) -> str:
        return REFUSAL_WORDS.get(obj.reason, obj.reason)

    @admin.display(description=_("Destination"))
    def masked_destination(self, obj) -> str:
        return f"{obj.phone_e164[:3]}••••{obj.phone_e164[-4:]}"
