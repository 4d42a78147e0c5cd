from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo data (`manage.py seed_demo`): the top of the app graph, it uses every app and no
    app uses it."""

    name = "apps.demo"
    label = "demo"
    verbose_name = _("Demo data")
