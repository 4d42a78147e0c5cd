from django.apps import AppConfig
from django.core import checks


class ThreedsConfig(AppConfig):
    name = "apps.threeds"
    label = "threeds"
    verbose_name = "3-D Secure"

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.threeds import areq_store
        from apps.threeds.rreq import RREQ_CHANNEL

        # threeds.E001: a model the AReq writes gained a field its fast path cannot write.
        checks.register(areq_store.check_written_models, checks.Tags.models)
        engine.register(RREQ_CHANNEL)
