"""OOB requests, read-only: who was asked, what they answered, and when."""

from django.contrib import admin

from apps.core.admin_scoping import IssuerScopedAdmin, ReadOnlyAdminMixin
from apps.oob.models import AuthnRequest


@admin.register(AuthnRequest)
class AuthnRequestAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["challenge_id", "cardholder", "state", "assertion_failures", "created_at", "decided_at"]
    list_filter = ["state"]
    list_select_related = ["cardholder", "issuer"]
    search_fields = ["challenge__transaction__acs_trans_id", "cardholder__external_id"]
    date_hierarchy = "created_at"
    # The WebAuthn challenge is not shown: it is only useful to whoever holds the key.
    fields = [
        "challenge", "cardholder", "devices", "state", "proceeded_device", "proceeded_at", "assertion_failures",
        "decided_device", "decided_at", "expires_at", "created_at",
    ]
