"""System checks of the trust settings (SPEC §4), run by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from apps.core.outbound_guard import allowlist_entry_parts


@register(Tags.security, deploy=True)
def outbound_trust_check(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    problems = []
    if not settings.DS_URL_ALLOWLIST:
        problems.append(
            Error(
                "DS_URL_ALLOWLIST is empty: every AReq is answered with Erro 303.",
                hint="Set DS_URL_ALLOWLIST to the DS endpoints' URL prefixes, e.g. https://ds.example/.",
                id="core.E001",
            )
        )
    unreadable = [entry for entry in settings.DS_URL_ALLOWLIST if allowlist_entry_parts(entry) is None]
    if unreadable:
        problems.append(
            Error(
                f"DS_URL_ALLOWLIST entries that are not http(s) URL prefixes: {', '.join(unreadable)}",
                id="core.E002",
            )
        )
    if settings.OUTBOUND_ALLOW_PRIVATE:
        problems.append(
            Warning(
                "OUTBOUND_ALLOW_PRIVATE is on: webhooks, RReqs and provider calls may reach loopback, "
                "private and link-local addresses (cloud metadata included).",
                hint="Leave OUTBOUND_ALLOW_PRIVATE unset in production.",
                id="core.W001",
            )
        )
    return problems
