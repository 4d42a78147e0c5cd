"""SMS in the admin: deliveries and their tries, read-only (never the body or the full
number), and each issuer's provider accounts with a write-only auth token."""

import re

from django import forms
from django.contrib import admin

from apps.core.admin_scoping import IssuerScopedAdmin, IssuerScopedTabularInline, ReadOnlyAdminMixin
from apps.sms.models import TWILIO, SmsAttempt, SmsDelivery, SmsProviderConfig


class SmsAttemptInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = SmsAttempt
    issuer_field = "delivery__issuer"
    fields = [
        "provider_role", "provider", "try_number", "state", "provider_message_id", "provider_status",
        "error_code", "error_message", "started_at", "finished_at", "duration_ms", "celery_task_id",
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
        "provider_message_id", "error_code", "created_at", "accepted_at", "finished_at", "next_attempt_at",
    ]
    readonly_fields = fields
    inlines = [SmsAttemptInline]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("attempts")

    @admin.display(description="Tries")
    def tries(self, obj) -> int:
        return len(obj.attempts.all())


class SmsProviderConfigForm(forms.ModelForm):
    auth_token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: stored encrypted and never shown. Leave empty to keep the current one.",
    )

    class Meta:
        model = SmsProviderConfig
        fields = ["issuer", "role", "backend", "is_active", "account_sid", "auth_token", "from_number", "messaging_service_sid"]

    def clean(self):
        data = super().clean()
        if data.get("backend") != TWILIO:
            return data
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", data.get("account_sid") or ""):
            self.add_error("account_sid", "A Twilio Account SID: AC followed by 32 hex digits.")
        if not data.get("from_number") and not data.get("messaging_service_sid"):
            self.add_error("from_number", "Set a From number or a Messaging Service SID.")
        sid = data.get("messaging_service_sid")
        if sid and not re.fullmatch(r"MG[0-9a-fA-F]{32}", sid):
            self.add_error("messaging_service_sid", "A Messaging Service SID: MG followed by 32 hex digits.")
        # The token is encrypted for this issuer and belongs to this account: either changing
        # needs the token typed again.
        rebound = {"account_sid", "issuer"} & set(self.changed_data)
        if not data.get("auth_token") and (not self.instance.auth_token_blob or rebound):
            self.add_error("auth_token", "Enter the account's auth token.")
        return data

    def save(self, commit=True):
        obj = super().save(commit=False)
        if self.cleaned_data.get("auth_token"):
            obj.set_auth_token(self.cleaned_data["auth_token"])
        if commit:
            obj.save()
        return obj


@admin.register(SmsProviderConfig)
class SmsProviderConfigAdmin(IssuerScopedAdmin):
    form = SmsProviderConfigForm
    list_display = ["role", "backend", "account_sid", "from_number", "is_active", "updated_at"]
    list_filter = ["backend", "role", "is_active"]
