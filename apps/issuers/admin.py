"""Issuers and API keys. Secrets (API keys, webhook secrets) are shown once, on a rendered page:
never in a message (messages live in a cookie or the session) and never in a URL."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin_scoping import IssuerScopedAdmin, ServiceModelForm, admin_actor
from apps.issuers import services
from apps.issuers.models import ApiKey, Issuer

ISSUER_FIELDS = [
    "issuer_id",
    "name",
    "country",
    "notification_base_url",
    "deliver_otp_url",
    "webauthn_rp_id",
    "webauthn_origins",
]


def _secret_page(model_admin, request, template: str, **context):
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, **context}
    # admin_view already marks these pages never_cache, so the secret stays out of caches too.
    return TemplateResponse(request, template, context)


class IssuerAddForm(ServiceModelForm):
    class Meta:
        model = Issuer
        fields = ISSUER_FIELDS

    def run_service(self):
        issuer, webhook_secret = services.issuer_create(
            **{f: self.cleaned_data[f] for f in ISSUER_FIELDS}, actor=self.actor
        )
        issuer.new_webhook_secret = webhook_secret  # for response_add only, never stored in clear
        return issuer


class IssuerChangeForm(ServiceModelForm):
    class Meta:
        model = Issuer
        fields = list(services.ISSUER_UPDATABLE)

    def run_service(self):
        issuer = Issuer.objects.get(pk=self.instance.pk)  # fresh: the service audits before/after
        changes = {f: self.cleaned_data[f] for f in self.changed_data if f in services.ISSUER_UPDATABLE}
        return services.issuer_update(issuer=issuer, actor=self.actor, **changes)


@admin.register(Issuer)
class IssuerAdmin(IssuerScopedAdmin):
    issuer_field = "pk"
    list_display = ["issuer_id", "name", "country", "has_webhook_secret", "created_at"]
    search_fields = ["issuer_id", "name"]
    fields = [*ISSUER_FIELDS, "has_webhook_secret", "created_at"]
    readonly_fields = ["has_webhook_secret", "created_at"]

    @admin.display(boolean=True, description=_("Webhook secret set"))
    def has_webhook_secret(self, obj) -> bool:
        return bool(obj.webhook_secret_blob)

    # Issuer staff read their issuer; only superusers create or edit issuers.
    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        # Its audit trail (append-only, kept) refers to it: an issuer is never removed.
        return False

    def can_rotate_webhook_secret(self, request) -> bool:
        # Whoever may mint the issuer's API keys may also renew its other credential.
        return request.user.is_superuser or request.user.has_perm("issuers.add_apikey")

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = IssuerAddForm if obj is None else IssuerChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ISSUER_FIELDS if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        # issuer_id is part of the encryption context of the issuer's PANs and webhook secret.
        return self.readonly_fields if obj is None else ["issuer_id", *self.readonly_fields]

    def get_urls(self):
        rotate = path(
            "<path:object_id>/rotate-webhook-secret/",
            self.admin_site.admin_view(self.rotate_webhook_secret_view),
            name="issuers_issuer_rotate_webhook_secret",
        )
        return [rotate, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_rotate_webhook_secret": self.can_rotate_webhook_secret(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def rotate_webhook_secret_view(self, request, object_id):
        issuer = self.get_object(request, object_id)
        if issuer is None:
            raise Http404
        if not self.can_rotate_webhook_secret(request):
            raise PermissionDenied
        secret = None
        if request.method == "POST":
            secret = services.issuer_rotate_webhook_secret(issuer=issuer, actor=admin_actor(request))
        return _secret_page(
            self, request, "admin/issuers/issuer/webhook_secret.html",
            title=_("Rotate webhook secret"), original=issuer, webhook_secret=secret,
        )

    def response_add(self, request, obj, post_url_continue=None):
        return _secret_page(
            self, request, "admin/issuers/issuer/webhook_secret.html",
            title=_("Issuer created"), original=obj, webhook_secret=obj.new_webhook_secret, created=True,
        )


class ApiKeyAddForm(ServiceModelForm):
    class Meta:
        model = ApiKey
        fields = ["issuer", "name"]

    def run_service(self):
        api_key, plaintext = services.api_key_create(
            issuer=self.cleaned_data["issuer"], name=self.cleaned_data["name"], created_by=admin_actor(self.request)
        )
        api_key.plaintext_key = plaintext  # for response_add only, never stored
        return api_key


class ApiKeyChangeForm(ServiceModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]

    def run_service(self):
        api_key = ApiKey.objects.select_related("issuer").get(pk=self.instance.pk)
        return services.api_key_rename(api_key=api_key, name=self.cleaned_data["name"], actor=self.actor)


@admin.register(ApiKey)
class ApiKeyAdmin(IssuerScopedAdmin):
    list_display = ["name", "key_prefix", "created_at", "last_used_at", "state"]
    search_fields = ["name", "prefix"]
    actions = ["revoke_keys"]
    # key_hash is not shown: no one needs it and nothing may change key material.
    readonly_fields = ["key_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description=_("Key"), ordering="prefix")
    def key_prefix(self, obj) -> str:
        return f"ik_{obj.prefix}_…"

    @admin.display(description=_("State"), ordering="revoked_at")
    def state(self, obj) -> str:
        # In words: a tick next to "revoked" read as "fine" to people.
        if obj.revoked_at is None:
            return gettext("Active")
        return gettext("Revoked on %(date)s") % {"date": date_format(localtime(obj.revoked_at), "DATE_FORMAT")}

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = ApiKeyAddForm if obj is None else ApiKeyChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["issuer", "name"]
        fields = ["name", *self.readonly_fields]
        return ["issuer", *fields] if request.user.is_superuser else fields

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays as a record of the key

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke_keys(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key, actor=admin_actor(request))
            revoked += 1
        self.message_user(request, ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", revoked) % {"count": revoked})

    def response_add(self, request, obj, post_url_continue=None):
        return _secret_page(
            self, request, "admin/issuers/apikey/created.html",
            title=_("API key created"), original=obj, plaintext_key=obj.plaintext_key,
        )

