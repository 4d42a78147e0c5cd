from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """The outbound-delivery engine (apps.delivery.engine). No tables of its own: each channel
    (SMS, push, webhooks, RReq) keeps its delivery and attempt tables, built on the abstract
    shapes in apps.delivery.models, and registers an adapter in its AppConfig.ready()."""

    name = "apps.delivery"
    label = "delivery"
