from django.apps import AppConfig


class IssuersConfig(AppConfig):
    name = "apps.issuers"
    label = "issuers"

    def ready(self) -> None:
        from apps.core.admin_scoping import register_tenant_model
        from apps.issuers.models import Issuer

        # The admins of every app scope their rows to an Issuer (core imports no app).
        register_tenant_model(Issuer)
