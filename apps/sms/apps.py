from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "apps.sms"
    label = "sms"

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.sms.services import SMS_CHANNEL

        engine.register(SMS_CHANNEL)
