from django.apps import AppConfig


class ThreedsConfig(AppConfig):
    name = "apps.threeds"
    label = "threeds"
    verbose_name = "3-D Secure"
