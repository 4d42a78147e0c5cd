from django.contrib import admin

from django.utils.translation import gettext_lazy as _

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


class OtpCodeInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = OtpCode
    issuer_field = "session__issuer"
    fields = ["id", "state", "delivery_mode", "created_at", "expires_at"]  # never the hash
    readonly_fields = fields
    extra = 0


@admin.register(OtpSession)
class OtpSessionAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["id", "acs_trans_id", "masked_phone", "state", "attempts_used", "resends_used", "created_at"]
    list_filter = ["state", "created_at"]
    search_fields = ["=id", "=acs_trans_id"]
    fields = ["id", "acs_trans_id", "card", "masked_phone", "locale", "policy_version", "state", "attempts_used", "resends_used",
              "last_sent_at", "created_at", "finished_at", "transaction_details"]
    readonly_fields = fields
    inlines = [OtpCodeInline]


@admin.register(OtpRefusal)
class OtpRefusalAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["created_at", "reason", "card", "masked_destination"]
    list_filter = ["reason", "created_at"]
    fields = ["created_at", "reason", "card", "session", "masked_destination"]
    readonly_fields = fields

    @admin.display(description="Destination")
    def masked_destination(self, obj) -> str:
        return f"{obj.phone_e164[:3]}••••{obj.phone_e164[-4:]}"
