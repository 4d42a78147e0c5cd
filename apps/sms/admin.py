"""SMS in the admin: deliveries and their tries, read-only (never the body or the full
number), and each issuer's provider accounts with a write-only auth token."""

from django import forms
from django.contrib import admin

from apps.core.admin_scoping import (
    IssuerScopedAdmin,
    IssuerScopedTabularInline,
    ReadOnlyAdminMixin,
    ServiceModelForm,
    admin_actor,
)
from apps.sms import services
from apps.sms.models import SmsAttempt, SmsDelivery, SmsProviderConfig


class SmsAttemptInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = SmsAttempt
    issuer_field = "delivery__issuer"
    fields = [
        "provider_role", "provider", "try_number", "state", "provider_message_id", "provider_status",
        "error_code", "error_message", "started_at", "finished_at", "duration_ms", "task_id",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(SmsDelivery)
class SmsDeliveryAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["created_at", "masked_to", "purpose", "status", "provider", "tries", "error_code"]
    list_filter = ["status", "purpose", "created_at"]
    search_fields = ["=id", "=acs_trans_id", "=provider_message_id"]
    search_help_text = "Delivery id, acsTransID or provider message id."
    fields = [
        "id", "issuer", "masked_to", "sender_id", "purpose", "acs_trans_id", "otp_code", "status", "provider",
        "provider_message_id", "error_code", "tries", "max_tries", "created_at", "accepted_at", "finished_at",
        "next_attempt_at", "lease_expires_at",
    ]
    readonly_fields = fields
    inlines = [SmsAttemptInline]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("attempts")


class SmsProviderConfigForm(ServiceModelForm):
    auth_token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: stored encrypted and never shown. Leave empty to keep the current one.",
    )

    class Meta:
        model = SmsProviderConfig
        fields = ["issuer", "role", "backend", "is_active", "account_sid", "auth_token", "from_number", "messaging_service_sid"]

    def run_service(self):
        # The service checks the account (SIDs, sender, token); its refusals land on these fields.
        data = self.cleaned_data
        if self.adding:
            return services.sms_provider_config_create(
                issuer=data["issuer"], actor=self.actor, auth_token=data.get("auth_token") or "",
                **{f: data[f] for f in services.SMS_PROVIDER_FIELDS},
            )
        config = SmsProviderConfig.objects.select_related("issuer").get(pk=self.instance.pk)
        return services.sms_provider_config_update(
            config=config, actor=self.actor, auth_token=data.get("auth_token") or "",
            **{f: data[f] for f in services.SMS_PROVIDER_FIELDS},
        )


@admin.register(SmsProviderConfig)
class SmsProviderConfigAdmin(IssuerScopedAdmin):
    form = SmsProviderConfigForm
    list_display = ["role", "backend", "account_sid", "from_number", "is_active", "updated_at"]
    list_filter = ["backend", "role", "is_active"]

    def delete_model(self, request, obj):
        services.sms_provider_config_delete(config=obj, actor=admin_actor(request))
