"""SMS in the admin: deliveries and their tries, read-only (never the body or the full
number), and each issuer's provider accounts with a write-only auth token."""

import uuid

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin_display import created, transaction_link, words_filter
from apps.core.admin_scoping import (
    IssuerScopedAdmin,
    IssuerScopedTabularInline,
    ReadOnlyAdminMixin,
    ServiceModelForm,
    admin_actor,
)
from apps.sms import services
from apps.sms.models import SmsAttempt, SmsDelivery, SmsProviderConfig

STATUS_WORDS = {
    SmsDelivery.PENDING: _("Waiting to be sent"), SmsDelivery.QUEUED: _("Queued at the provider"),
    SmsDelivery.SENDING: _("Sending"), SmsDelivery.SENT: _("Sent"), SmsDelivery.DELIVERED: _("Delivered"),
    SmsDelivery.UNDELIVERED: _("Not delivered"), SmsDelivery.FAILED: _("Failed"), SmsDelivery.CANCELLED: _("Cancelled"),
}
ATTEMPT_STATE_WORDS = {
    SmsAttempt.CLAIMED: _("In flight"), SmsAttempt.SUCCEEDED: _("Accepted"),
    SmsAttempt.FAILED_TRANSIENT: _("Failed (will retry)"), SmsAttempt.FAILED_PERMANENT: _("Failed (no retry)"),
    SmsAttempt.INTERRUPTED: _("Interrupted"),
}
PURPOSE_WORDS = {"otp": _("One-time code")}


class SmsAttemptInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = SmsAttempt
    issuer_field = "delivery__issuer"
    fields = [
        "provider_role", "provider", "try_number", "state_words", "provider_message_id", "provider_status",
        "error_code", "error_message", "started_at", "duration_ms",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = _("try")
    verbose_name_plural = _("tries")

    @admin.display(description=_("Outcome"))
    def state_words(self, obj) -> str:
        return ATTEMPT_STATE_WORDS.get(obj.state, obj.state)


@admin.register(SmsDelivery)
class SmsDeliveryAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = [created, "masked_to", "status_words", "provider", "tries", "error_code", "transaction"]  # purpose: a filter
    list_filter = [words_filter("status", _("status"), STATUS_WORDS), "provider", "purpose", "created_at"]
    search_fields = ["=acs_trans_id", "=provider_message_id"]
    search_help_text = _("acsTransID or the provider's message id.")
    # No internal id: the acsTransID and the provider's message id identify a delivery to people.
    fields = [
        "transaction", "issuer", "masked_to", "sender_id", "purpose_words", "status_words", "provider",
        "provider_message_id", "error_code", "tries", "max_tries", "created_at", "accepted_at", "finished_at",
        "next_attempt_at",
    ]
    readonly_fields = fields
    inlines = [SmsAttemptInline]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body_blob", "to").prefetch_related("attempts")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        try:
            return queryset.filter(acs_trans_id=uuid.UUID(term)), False  # compared as a UUID, as databases differ
        except ValueError:
            return (queryset.filter(provider_message_id=term) if term else queryset), False

    @admin.display(description=_("Status"), ordering="status")
    def status_words(self, obj) -> str:
        return STATUS_WORDS.get(obj.status, obj.status)

    @admin.display(description=_("Purpose"), ordering="purpose")
    def purpose_words(self, obj) -> str:
        return PURPOSE_WORDS.get(obj.purpose, obj.purpose)

    @admin.display(description="acsTransID")
    def transaction(self, obj):
        return transaction_link(obj.acs_trans_id)


class SmsProviderConfigForm(ServiceModelForm):
    auth_token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Write-only: stored encrypted and never shown. Leave empty to keep the current one."),
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
