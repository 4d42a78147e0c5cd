"""Devices per issuer: read, rename, revoke. Tokens, keys and push tokens are never shown."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin_scoping import IssuerScopedAdmin, ServiceModelForm, admin_actor
from apps.devices import services
from apps.devices.models import Device

STATUS_WORDS = {Device.STATUS_ACTIVE: _("Active"), Device.STATUS_REVOKED: _("Revoked"), Device.STATUS_BLOCKED: _("Blocked")}


class DeviceForm(ServiceModelForm):
    class Meta:
        model = Device
        fields = ["name"]

    def run_service(self):
        device = Device.objects.select_related("issuer").get(pk=self.instance.pk)
        return services.device_rename(device=device, name=self.cleaned_data["name"], actor=self.actor)


@admin.register(Device)
class DeviceAdmin(IssuerScopedAdmin):
    form = DeviceForm
    list_display = ["__str__", "cardholder", "status_words", "push_platform", "created_at", "last_used_at"]
    list_filter = ["status", "push_platform"]
    list_select_related = ["cardholder", "issuer"]
    search_fields = ["name", "cardholder__external_id"]
    actions = ["revoke_devices"]
    # No credential id, public key, token hash or push token: nobody needs them on a page.
    fields = [
        "name", "cardholder", "status", "push_platform", "aaguid", "attestation_format", "sign_count",
        "created_at", "last_used_at", "revoked_at", "blocked_at", "blocked_reason",
    ]
    readonly_fields = [
        "cardholder", "status", "push_platform", "aaguid", "attestation_format", "sign_count",
        "created_at", "last_used_at", "revoked_at", "blocked_at", "blocked_reason",
    ]

    def has_add_permission(self, request):
        return False  # devices are registered by the app with WebAuthn, never typed in

    def get_fields(self, request, obj=None):
        return ["issuer", *self.fields] if request.user.is_superuser else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "issuer"]

    def delete_model(self, request, obj):
        services.device_delete(device=obj, actor=admin_actor(request))

    @admin.display(description=_("Status"), ordering="status")
    def status_words(self, obj) -> str:
        return STATUS_WORDS.get(obj.status, obj.status)

    @admin.action(description=_("Revoke selected devices"), permissions=["change"])
    def revoke_devices(self, request, queryset):
        revoked = sum(
            services.device_revoke(device=device, actor=admin_actor(request))
            for device in queryset.exclude(status=Device.STATUS_REVOKED).select_related("issuer")
        )
        self.message_user(request, ngettext("Revoked %(count)d device.", "Revoked %(count)d devices.", revoked) % {"count": revoked})
