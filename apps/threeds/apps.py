from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class ThreedsConfig(AppConfig):
    name = "apps.threeds"
    label = "threeds"
    verbose_name = _("3-D Secure")

    def ready(self) -> None:
        from apps.delivery import engine
        from apps.push.signals import push_undeliverable
        from apps.threeds import areq_store
        from apps.threeds.oob_decisions import oob_push_undeliverable
        from apps.threeds.rreq import RREQ_CHANNEL

        # threeds.E001: a model the AReq writes gained a field its fast path cannot write.
        checks.register(areq_store.check_written_models, checks.Tags.models)
        engine.register(RREQ_CHANNEL)

        def on_push_undeliverable(sender, *, acs_trans_id, device_id, reason, **kwargs):
            oob_push_undeliverable(acs_trans_id=acs_trans_id, device_id=device_id, reason=reason)

        # A failed push may fall the challenge back (oob_decisions). Strong reference (weak=False):
        # the receiver is a closure that nothing else holds.
        push_undeliverable.connect(on_push_undeliverable, weak=False, dispatch_uid="threeds.push_undeliverable")
