from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalystConfig(AppConfig):
    name = "apps.analyst"
    verbose_name = _("Analyst workspace")
