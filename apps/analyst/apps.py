from django.apps import AppConfig


class AnalystConfig(AppConfig):
    name = "apps.analyst"
    verbose_name = "Analyst workspace"
