from django.apps import AppConfig


class OobConfig(AppConfig):
    name = "apps.oob"
    label = "oob"
    verbose_name = "Out-of-band authentication"
