"""Form fields for settings kept per currency or per country (policies): a row per entry, the
currency or country chosen by its name, instead of a JSON text box.

The value is a dict (ISO 4217 numeric → amount string in major units, or ISO 3166 alpha-2 →
text), the shape the models store. Bad rows are refused with a message that names the row.
"""

from decimal import Decimal, InvalidOperation

import pycountry
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.core.display import country_name, currency_name

BLANK_ROWS = 2
DEFAULT_KEY = "default"


def currency_choices() -> list[tuple[str, str]]:
    """Every ISO 4217 currency with a numeric code, by its name in the active language."""
    choices = [(c.numeric, f"{currency_name(c.numeric)} ({c.alpha_3})") for c in pycountry.currencies if getattr(c, "numeric", None)]
    return sorted(choices, key=lambda choice: choice[1])


def country_choices() -> list[tuple[str, str]]:
    """Every ISO 3166 country, alpha-2, by its name in the active language."""
    return sorted(((c.alpha_2, country_name(c.alpha_2)) for c in pycountry.countries), key=lambda choice: choice[1])


class KeyedRowsWidget(forms.Widget):
    """Rows of (key chosen from a list, value typed): one select and one input per row, posted as
    two lists `<name>_key` and `<name>_value`. A few blank rows let a person add entries."""

    template_name = "core/widgets/keyed_rows.html"
    value_input_type = "text"

    class Media:
        css = {"all": ["core/policies.css"]}

    def __init__(self, choices=None, attrs=None, value_size=12):
        super().__init__(attrs)
        self.choices = choices
        self.value_size = value_size

    def value_from_datadict(self, data, files, name):
        return list(zip(data.getlist(f"{name}_key"), data.getlist(f"{name}_value")))

    def value_omitted_from_data(self, data, files, name):
        return f"{name}_key" not in data

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if isinstance(value, dict):
            rows = [(str(k), str(v)) for k, v in value.items()]
        else:
            rows = [(k, v) for k, v in (value or []) if k or v]
        rows += [("", "")] * BLANK_ROWS
        choices = self.choices() if callable(self.choices) else list(self.choices or [])
        context["widget"].update(rows=rows, choices=choices, value_size=self.value_size, value_input_type=self.value_input_type)
        return context


class KeyedValuesField(forms.Field):
    """A dict of key → text, entered as rows; blank rows are ignored, a key twice is refused."""

    widget = KeyedRowsWidget
    default_error_messages = {
        "no_value": _("%(key)s: enter a value or clear the row."),
        "no_key": _("“%(value)s”: choose what it applies to."),
        "twice": _("%(key)s appears twice."),
        "unknown": _("“%(key)s” is not one of the choices."),
    }

    def __init__(self, *, choices, **kwargs):
        kwargs.setdefault("required", False)
        self.choices = choices
        super().__init__(**kwargs)
        self.widget.choices = choices

    def _choices(self) -> dict[str, str]:
        return dict(self.choices() if callable(self.choices) else self.choices)

    def clean_value(self, key_name: str, value: str):
        return value

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        names = self._choices()
        result, errors = {}, []
        for key, raw in value or []:
            key, raw = (key or "").strip(), (raw or "").strip()
            if not key and not raw:
                continue
            if not key:
                errors.append(ValidationError(self.error_messages["no_key"], code="no_key", params={"value": raw}))
                continue
            if key not in names:
                errors.append(ValidationError(self.error_messages["unknown"], code="unknown", params={"key": key}))
                continue
            if not raw:
                errors.append(ValidationError(self.error_messages["no_value"], code="no_value", params={"key": names[key]}))
                continue
            if key in result:
                errors.append(ValidationError(self.error_messages["twice"], code="twice", params={"key": names[key]}))
                continue
            try:
                result[key] = self.clean_value(names[key], raw)
            except ValidationError as exc:
                errors.extend(exc.error_list)
        if errors:
            raise ValidationError(errors)
        return result

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (initial or {})
        except ValidationError:
            return True


class CurrencyAmountsField(KeyedValuesField):
    """Currency (by name) → amount in major units, kept as a string ("30000", "250.00")."""

    default_error_messages = {
        "not_amount": _("%(key)s: “%(value)s” is not an amount."),
        "decimals": _("%(key)s: at most %(places)s decimal places."),
    }

    def __init__(self, **kwargs):
        super().__init__(choices=currency_choices, **kwargs)
        self.widget.value_input_type = "number"

    def clean_value(self, key_name: str, value: str):
        try:
            amount = Decimal(value.replace(",", ""))
        except InvalidOperation:
            raise ValidationError(self.error_messages["not_amount"], code="not_amount", params={"key": key_name, "value": value})
        if not amount.is_finite() or amount < 0:
            raise ValidationError(self.error_messages["not_amount"], code="not_amount", params={"key": key_name, "value": value})
        if -amount.as_tuple().exponent > 4:
            raise ValidationError(self.error_messages["decimals"], code="decimals", params={"key": key_name, "places": 4})
        return str(amount)


class CountryValuesField(KeyedValuesField):
    """Country (by name, or "any other country") → text, e.g. an SMS sender per destination."""

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(choices=self.country_or_default, **kwargs)

    @staticmethod
    def country_or_default() -> list[tuple[str, str]]:
        return [(DEFAULT_KEY, str(_("Any other country"))), *country_choices()]

    def clean_value(self, key_name: str, value: str):
        if len(value) > self.max_length:
            raise ValidationError(_("%(key)s: at most %(max)s characters."), code="too_long",
                                  params={"key": key_name, "max": self.max_length})
        return value


class CountriesField(forms.MultipleChoiceField):
    """Countries chosen by name; the value is the list of alpha-2 codes."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(choices=country_choices, widget=forms.SelectMultiple(attrs={"size": 10}), **kwargs)
