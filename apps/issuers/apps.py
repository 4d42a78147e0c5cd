from django.apps import AppConfig


class IssuersConfig(AppConfig):
    name = "apps.issuers"
    label = "issuers"
