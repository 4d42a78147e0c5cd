from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.webhooks.services import WEBHOOK_CHANNEL

        engine.register(WEBHOOK_CHANNEL)
