from django.apps import AppConfig


class OobConfig(AppConfig):
    name = "apps.oob"
    label = "oob"
    verbose_name = "Out-of-band authentication"

    def ready(self) -> None:
        from apps.oob.services import oob_push_undeliverable
        from apps.push.signals import push_undeliverable

        def on_push_undeliverable(sender, *, acs_trans_id, device_id, reason, **kwargs):
            oob_push_undeliverable(acs_trans_id=acs_trans_id, device_id=device_id, reason=reason)

        # Strong reference (weak=False): the receiver is a closure that nothing else holds.
        push_undeliverable.connect(on_push_undeliverable, weak=False, dispatch_uid="oob.push_undeliverable")
