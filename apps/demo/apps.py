from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data (`manage.py seed_demo`): the top of the app graph, it uses every app and no
    app uses it."""

    name = "apps.demo"
    label = "demo"
    verbose_name = "Demo data"
