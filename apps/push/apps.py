from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PushConfig(AppConfig):
    name = "apps.push"
    label = "push"
    verbose_name = _("Push notifications")

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.push.services import PUSH_CHANNEL

        engine.register(PUSH_CHANNEL)
