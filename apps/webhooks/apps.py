from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.webhooks.services import WEBHOOK_CHANNEL

        engine.register(WEBHOOK_CHANNEL)
