from django.contrib import admin

from apps.core.admin_scoping import IssuerScopedAdmin, IssuerScopedTabularInline, ReadOnlyAdminMixin, ServiceModelForm
from apps.otp.models import OtpCode, OtpPolicy, OtpPolicyVersion, OtpRefusal, OtpSession
from apps.otp.services import otp_policy_save


class OtpPolicyVersionInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = OtpPolicyVersion
    issuer_field = "policy__issuer"
    fields = ["version", "created_at", "created_by", "settings"]
    readonly_fields = fields
    extra = 0
    ordering = ["-version"]


class OtpPolicyForm(ServiceModelForm):
    class Meta:
        model = OtpPolicy
        exclude = ["version", "updated_by"]

    def run_service(self):
        # Every change is a new frozen version; challenges keep the version they started under.
        otp_policy_save(policy=self.instance, actor=self.actor)
        return self.instance


@admin.register(OtpPolicy)
class OtpPolicyAdmin(IssuerScopedAdmin):
    form = OtpPolicyForm
    list_display = ["__str__", "product", "delivery_mode", "code_length", "lifetime_seconds", "max_attempts", "max_resends", "version", "updated_at"]
    readonly_fields = ["version", "updated_at", "updated_by"]
    fieldsets = [
        (None, {"fields": ["issuer", "product", "delivery_mode", "version", "updated_at", "updated_by"]}),
        ("Code", {"fields": ["code_length", "lifetime_seconds", "max_attempts"]}),
        ("Resends", {"fields": ["max_resends", "resend_cooldown_seconds"]}),
        ("Send limits (SMS-pumping protection)", {"fields": ["allowed_countries", "max_sends_per_card_hour", "max_sends_per_card_day", "max_sends_per_phone_day"]}),
        ("Message", {"fields": ["sms_templates", "sender_ids"]}),
    ]
    inlines = [OtpPolicyVersionInline]

    def has_delete_permission(self, request, obj=None):
        # Versions are referenced by past challenges; a policy is edited, never removed.
        return False


class OtpCodeInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = OtpCode
    issuer_field = "session__issuer"
    fields = ["state", "delivery_mode", "created_at", "expires_at"]  # never the hash
    readonly_fields = fields
    extra = 0


@admin.register(OtpSession)
class OtpSessionAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["acs_trans_id", "masked_phone", "state", "attempts_used", "resends_used", "created_at"]
    list_filter = ["state", "created_at"]
    search_fields = ["=acs_trans_id"]
    fields = ["acs_trans_id", "card", "masked_phone", "locale", "policy_version", "state", "attempts_used", "resends_used",
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
