from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IssuersConfig(AppConfig):
    name = "apps.issuers"
    label = "issuers"
    verbose_name = _("Issuers")

    def ready(self) -> None:
        from apps.core.admin_scoping import register_tenant_model
        from apps.issuers.models import Issuer

        # The admins of every app scope their rows to an Issuer (core imports no app).
        register_tenant_model(Issuer)
