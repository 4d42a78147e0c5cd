from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class DeliveryConfig(AppConfig):
    """The outbound-delivery engine (apps.delivery.engine). No tables of its own: each channel
    (SMS, push, webhooks, RReq) keeps its delivery and attempt tables, built on the abstract
    shapes in apps.delivery.models, and registers an adapter in its AppConfig.ready()."""

    name = "apps.delivery"
    label = "delivery"
    verbose_name = _("Outbound delivery")

    def ready(self):
        checks.register(check_channel_models, checks.Tags.models)


def check_channel_models(app_configs=None, **kwargs) -> list[checks.Error]:
    """System check delivery.E001: the engine claims, records and audits with statements built
    from the models' metadata (apps.core.model_sql); a channel model it cannot write fails at
    start-up, never at a try."""
    from apps.audit.models import AuditEvent
    from apps.core.model_sql import unwritable_fields
    from apps.delivery import engine

    models = [AuditEvent]
    for channel in engine.channels():
        models += [channel.delivery_model, channel.attempt_model]
        models += [channel.delivery_model._meta.get_field(name).related_model for name in channel.related]
    return [
        checks.Error(
            f"The delivery engine (apps/delivery/engine.py) cannot write this: {problem}.",
            hint="Teach apps.core.model_sql this kind of field (and test it), or keep it off the channel's models.",
            obj=model,
            id="delivery.E001",
        )
        for model in dict.fromkeys(models)
        for problem in unwritable_fields(model)
    ]
