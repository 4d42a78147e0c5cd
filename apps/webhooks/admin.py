"""Webhook deliveries, read-only, with every try. Only the redacted copy of a payload is shown."""

import json

from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils.html import format_html

from apps.core.admin_scoping import IssuerScopedAdmin, RetryDeliveriesMixin
from apps.webhooks import services
from apps.webhooks.models import WebhookAttempt, WebhookDelivery


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = [
        "number", "state", "started_at", "finished_at", "duration_ms", "status_code", "error_code", "error_message",
        "error_class", "response_excerpt", "task_id",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        # The tries are part of the delivery: whoever may see it sees them.
        return self.admin_site._registry[WebhookDelivery].has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RetryDeliveriesMixin, IssuerScopedAdmin):
    list_display = ["id", "created_at", "kind", "status", "tries", "acs_trans_id", "finished_at", "last_error"]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["=id", "=acs_trans_id"]
    search_help_text = "Delivery id (X-Webhook-Id) or acsTransID."
    fields = [
        "kind", "url", "acs_trans_id", "status", "tries", "max_tries", "next_attempt_at", "lease_expires_at", "created_at",
        "finished_at", "last_error", "payload_kept", "payload_pretty",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    retry_permission = "webhooks.change_webhookdelivery"
    show_full_result_count = False

    @admin.display(description="Payload (secrets redacted)")
    def payload_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.display_payload, indent=2, ensure_ascii=False))

    @admin.display(boolean=True, description="Payload kept (can be retried)")
    def payload_kept(self, obj) -> bool:
        return obj.has_payload

    def get_queryset(self, request):
        # A page never needs the encrypted payload, only whether it is still there.
        kept = ExpressionWrapper(Q(payload_blob__isnull=False), output_field=BooleanField())
        return super().get_queryset(request).defer("payload_blob").annotate(has_payload=kept)

    def retry_one(self, delivery, *, actor: str) -> None:
        services.webhook_delivery_retry(delivery=delivery, actor=actor)
