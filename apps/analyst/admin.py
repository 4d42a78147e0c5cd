"""The analysts' access log in the admin: who viewed which transaction and who exported what, with
which filters. Read-only for everybody; issuer admins see their issuer's records (role permission
analyst.view_accessrecord), superusers every issuer's. Analysts do not read it."""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.analyst.models import AccessRecord
from apps.core.admin_scoping import IssuerScopedAdmin, ReadOnlyAdminMixin


@admin.register(AccessRecord)
class AccessRecordAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    list_display = ["at", "actor", "kind", "acs_trans_id", "export_id", "rows"]
    list_filter = ["kind", "at"]
    search_fields = ["actor"]
    search_help_text = _("Username.")
    fields = ["at", "actor", "kind", "acs_trans_id", "export_id", "rows", "filters_pretty"]
    readonly_fields = fields
    date_hierarchy = "at"
    show_full_result_count = False  # one row per page viewed: this table grows fast

    @admin.display(description=_("filters"))
    def filters_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.filters, indent=2, ensure_ascii=False, sort_keys=True))
