from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmsConfig(AppConfig):
    name = "apps.sms"
    label = "sms"
    verbose_name = _("SMS")

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.sms.services import SMS_CHANNEL

        engine.register(SMS_CHANNEL)
