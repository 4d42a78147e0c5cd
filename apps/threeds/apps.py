from django.apps import AppConfig


class ThreedsConfig(AppConfig):
    name = "apps.threeds"
    label = "threeds"
    verbose_name = "3-D Secure"

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.threeds.rreq import RREQ_CHANNEL

        engine.register(RREQ_CHANNEL)
