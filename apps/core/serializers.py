"""Strict input: unknown fields and wrong JSON types are refused, not coerced.

DRF by default turns 123 into "123" and "yes" into True; an issuer's backend that sends the
wrong type has a bug we should report, not hide.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class ChoiceField(serializers.ChoiceField):
    """A choice whose error lists the allowed values: a client that sent a wrong one learns the
    right ones from the answer. The one choice field of the APIs (input and query strings)."""

    def fail(self, key, **kwargs):
        if key != "invalid_choice":
            super().fail(key, **kwargs)
        allowed = ", ".join(f'"{value}"' for value in self.choices)
        input_value = kwargs.get("input")
        raise serializers.ValidationError(
            f'"{input_value}" is not a valid choice; allowed values: {allowed}.', code="invalid_choice"
        )


class StrictChoiceField(ChoiceField):
    """Only a JSON string is a choice: 1 is not "1"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses a body that is not a JSON object or that carries fields we do not know."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        errors = {}
        if unknown:
            errors = {name: ["Unknown field."] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                errors = {**exc.detail, **errors}
            else:
                errors.setdefault("non_field_errors", []).extend(exc.detail)
            raise serializers.ValidationError(errors)
        if errors:
            raise serializers.ValidationError(errors)
        return value


# The shape the API documents; the Luhn check and the BIN rules are the services' (a 400 with their code).
@extend_schema_field({"type": "string", "pattern": "^[0-9]{13,19}$"})
class PanField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("write_only", True)
        super().__init__(**kwargs)
