import json
import uuid

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.audit.models import AuditEvent
from apps.core.admin_scoping import IssuerScopedAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(IssuerScopedAdmin):
    """Read-only for everybody, superusers included: the trail is append-only."""

    list_display = ["created_at", "kind", "actor", "object_type", "object_id", "acs_trans_id"]
    list_filter = ["kind", "created_at"]
    search_fields = ["=object_id"]
    search_help_text = _("acsTransID or object id.")
    fields = ["created_at", "kind", "actor", "acs_trans_id", "object_type", "object_id", "data_pretty"]
    readonly_fields = fields
    show_full_result_count = False  # a COUNT over millions of rows on every page is not worth it

    @admin.display(description=_("Data"))
    def data_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, ensure_ascii=False, sort_keys=True))

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            acs_trans_id = uuid.UUID(search_term.strip())
        except ValueError:
            return results, may_have_duplicates
        # A UUID column is compared as a UUID: its text form differs between databases.
        return results | queryset.filter(acs_trans_id=acs_trans_id), may_have_duplicates

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
