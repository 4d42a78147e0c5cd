"""Webhook deliveries, read-only, with every try. Only the redacted copy of a payload is shown."""

import json

from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.core.admin_display import created, transaction_link, words_filter
from apps.core.admin_scoping import IssuerScopedAdmin, RetryDeliveriesMixin
from apps.webhooks import services
from apps.webhooks.models import KIND_3DS_NOTIFICATION, KIND_DELIVER_OTP, WebhookAttempt, WebhookDelivery

STATUS_WORDS = {
    WebhookDelivery.PENDING: _("Waiting to be sent"), WebhookDelivery.SUCCEEDED: _("Delivered"), WebhookDelivery.FAILED: _("Failed"),
}
KIND_WORDS = {KIND_DELIVER_OTP: _("One-time code to deliver"), KIND_3DS_NOTIFICATION: _("Authentication result")}
ATTEMPT_STATE_WORDS = {
    WebhookAttempt.CLAIMED: _("In flight"), WebhookAttempt.SUCCEEDED: _("Delivered"),
    WebhookAttempt.FAILED_TRANSIENT: _("Failed (will retry)"), WebhookAttempt.FAILED_PERMANENT: _("Failed (no retry)"),
    WebhookAttempt.INTERRUPTED: _("Interrupted"),
}


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = [
        "number", "state_words", "started_at", "duration_ms", "status_code", "error_code", "error_message",
        "response_excerpt",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = _("try")
    verbose_name_plural = _("tries")

    @admin.display(description=_("Outcome"))
    def state_words(self, obj) -> str:
        return ATTEMPT_STATE_WORDS.get(obj.state, obj.state)

    def has_view_permission(self, request, obj=None):
        # The tries are part of the delivery: whoever may see it sees them.
        return self.admin_site._registry[WebhookDelivery].has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RetryDeliveriesMixin, IssuerScopedAdmin):
    # The id is the X-Webhook-Id header the issuer's backend logs: a business identifier.
    list_display = ["id", created, "kind_words", "status_words", "tries", "transaction", "last_error"]
    list_filter = [words_filter("status", _("status"), STATUS_WORDS), words_filter("kind", _("kind"), KIND_WORDS), "created_at"]
    search_fields = ["=id", "=acs_trans_id"]
    search_help_text = _("Delivery id (X-Webhook-Id) or acsTransID.")
    fields = [
        "id", "kind_words", "url", "transaction", "status_words", "tries", "max_tries", "next_attempt_at", "created_at",
        "finished_at", "last_error", "payload_kept", "payload_pretty",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    retry_permission = "webhooks.change_webhookdelivery"
    show_full_result_count = False

    @admin.display(description=_("Status"), ordering="status")
    def status_words(self, obj) -> str:
        return STATUS_WORDS.get(obj.status, obj.status)

    @admin.display(description=_("Kind"), ordering="kind")
    def kind_words(self, obj) -> str:
        return KIND_WORDS.get(obj.kind, obj.kind)

    @admin.display(description="acsTransID")
    def transaction(self, obj):
        return transaction_link(obj.acs_trans_id)

    @admin.display(description=_("Payload (secrets redacted)"))
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.display_payload, indent=2, ensure_ascii=False))

    @admin.display(boolean=True, description=_("Payload kept (can be retried)"))
    def payload_kept(self, obj) -> bool:
        return obj.has_payload

    def get_queryset(self, request):
        # A page never needs the encrypted payload, only whether it is still there.
        kept = ExpressionWrapper(Q(payload_blob__isnull=False), output_field=BooleanField())
        return super().get_queryset(request).defer("payload_blob").annotate(has_payload=kept)

    def retry_one(self, delivery, *, actor: str) -> None:
        services.webhook_delivery_retry(delivery=delivery, actor=actor)
