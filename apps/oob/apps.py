from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OobConfig(AppConfig):
    name = "apps.oob"
    label = "oob"
    verbose_name = _("Out-of-band authentication")
