"""A policy's history in the admin: its versions, newest first, each with who, when, why and what
changed from the one before, in words. Replaces the admin's own "History" page of the policy
(ModelAdmin.history_view), so the button staff already know leads there."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _


class PolicyHistoryMixin:
    """For the admin of a policy model with versions; subclasses say how to read them."""

    history_template = "admin/policies/history.html"

    def policy_versions(self, obj):
        """The policy's versions, oldest first: objects with version, settings, created_by,
        created_at and reason."""
        raise NotImplementedError

    def policy_changes(self, before: dict | None, after: dict) -> list:
        """apps.core.diff changes between two versions' settings."""
        raise NotImplementedError

    def policy_words(self, obj) -> dict[str, str]:
        """The policy's settings as label → value in words."""
        raise NotImplementedError

    def settings_in_words(self, obj):
        """For those who only read the policy: every setting in words, one per line."""
        rows = format_html_join("", "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", self.policy_words(obj).items())
        return format_html('<table class="policy-settings">{}</table>', rows)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)  # scoped to the user's issuer: others' are not found
        if obj is None:
            raise Http404(_("No such policy."))
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        entries, previous = [], None
        for version in self.policy_versions(obj):
            changes = self.policy_changes(previous, version.settings) if previous is not None else None
            entries.append({"version": version, "changes": changes})
            previous = version.settings
        entries.reverse()
        context = {
            **self.admin_site.each_context(request),
            "title": _("History of %(policy)s") % {"policy": obj},
            "subtitle": None,
            "object": obj,
            "opts": self.model._meta,
            "entries": entries,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.history_template, context)
