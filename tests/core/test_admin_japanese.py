"""Every name the Japanese admin shows for our models is Japanese (SPEC §5.6, issue 14 item 4):
the app's heading, each model's names and each field's label. EMV field names (acsTransID) and
acronyms (PAN, BIN) stay as they are written in the specification."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.utils import translation

# Names a person reads as they are: EMV 3DS field names (camelCase) and acronyms.
AS_WRITTEN = re.compile(r"^([A-Z0-9]{2,}s?|[a-z]+[A-Z][A-Za-z0-9]*)$")


def _ours():
    for model in apps.get_models():
        if model._meta.app_label in {config.label for config in apps.get_app_configs() if config.name.startswith("apps.")} \
                and admin.site.is_registered(model):
            yield model


def _names(model):
    yield f"{model._meta.label} (model)", model._meta.verbose_name
    yield f"{model._meta.label} (model, plural)", model._meta.verbose_name_plural
    for field in model._meta.get_fields():
        if field.concrete and not field.auto_created:
            yield f"{model._meta.label}.{field.name}", field.verbose_name


def _untranslated(items):
    missing = []
    for where, name in items:
        with translation.override("en"):
            english = str(name)
        with translation.override("ja"):
            japanese = str(name)
        if japanese == english and not AS_WRITTEN.match(english):
            missing.append(f"{where}: {english!r}")
    return missing


def test_our_admin_models_are_registered():
    assert len(list(_ours())) > 20


def test_app_headings_are_japanese():
    configs = [c for c in apps.get_app_configs() if c.name.startswith("apps.") and any(
        admin.site.is_registered(m) for m in c.get_models())]
    assert _untranslated((c.label, c.verbose_name) for c in configs) == []


@pytest.mark.parametrize("model", list(_ours()), ids=lambda m: m._meta.label)
def test_model_and_field_names_are_japanese(model):
    assert _untranslated(_names(model)) == []


# Brands and services are written as their owners write them.
PROPER_NAMES = {"Visa", "Mastercard", "American Express", "Discover", "Cartes Bancaires", "Twilio",
                "Firebase Cloud Messaging", "Apple Push Notification service"}


def test_choice_values_read_in_japanese():
    """Statuses and states in the admin's lists and filters (also of models shown inline)."""
    ours = {config.label for config in apps.get_app_configs() if config.name.startswith("apps.")}
    choices = [
        (f"{model._meta.label}.{field.name}={value}", label)
        for model in apps.get_models() if model._meta.app_label in ours
        for field in model._meta.get_fields() if getattr(field, "concrete", False) and getattr(field, "choices", None)
        for value, label in field.flatchoices if str(label) not in PROPER_NAMES
    ]
    assert len(choices) > 50
    assert _untranslated(choices) == []
