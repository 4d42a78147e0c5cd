"""Push deliveries in the admin: read-only, per issuer, with every try. The push token is never
on a page (it is not on these rows at all).

No "send again" action: a push names an OOB request that waits 120 s; by the time anyone reads
this page it has expired or fallen back to SMS, and a new push would wake the app for nothing.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin_scoping import IssuerScopedAdmin, IssuerScopedTabularInline, ReadOnlyAdminMixin
from apps.push.models import PushAttempt, PushDelivery

STATUS_WORDS = {
    PushDelivery.PENDING: _("Waiting to be sent"), PushDelivery.SENT: _("Sent"), PushDelivery.FAILED: _("Failed"),
    PushDelivery.REFUSED: _("Refused by the provider"),
}


class PushAttemptInline(ReadOnlyAdminMixin, IssuerScopedTabularInline):
    model = PushAttempt
    issuer_field = "delivery__issuer"
    fields = [
        "number", "state", "provider", "started_at", "finished_at", "duration_ms", "status_code", "error_code",
        "error_message", "response_excerpt", "provider_message_id", "task_id",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(PushDelivery)
class PushDeliveryAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["created_at", "acs_trans_id", "device", "platform", "status_words", "tries", "error_code"]
    list_filter = ["status", "platform", "created_at"]
    list_select_related = ["device", "issuer"]
    search_fields = ["=acs_trans_id", "=provider_message_id"]
    search_help_text = _("acsTransID or the provider's message id.")
    # No internal id: the acsTransID and the provider's message id identify a push to people.
    fields = [
        "issuer", "device", "platform", "acs_trans_id", "status", "tries", "max_tries", "next_attempt_at",
        "lease_expires_at", "provider", "provider_message_id", "error_code", "error_message", "created_at", "finished_at",
        "undeliverable_reported_at",
    ]
    readonly_fields = fields
    inlines = [PushAttemptInline]
    show_full_result_count = False

    @admin.display(description=_("Status"), ordering="status")
    def status_words(self, obj) -> str:
        return STATUS_WORDS.get(obj.status, obj.status)
