"""Issuer API over 3-D Secure transactions (SPEC §5.1, §3.7): look-up, Stripe result import and
verification of authentication values. Only the issuer's own transactions exist here; the PAN is
never returned (last 4 only)."""


from django.core.validators import RegexValidator
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from apps.core.logging import sensitive
from apps.core.pagination import KeysetPagination
from apps.core.pan import NETWORK_CHOICES, pan_problem
from apps.core.serializers import ChoiceField, PanField, StrictCharField, StrictSerializer
from apps.issuers.api import IssuerApiView
from apps.threeds import card_ranges, selectors
from apps.threeds.explanation import explain
from apps.threeds.models import Challenge
from apps.threeds.stripe_import import stripe_form_lines, stripe_payment_method_options

TRANS_STATUSES = ["Y", "A", "N", "U", "R", "C"]


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Always JSON: `?format=` is a parameter of these endpoints, not DRF's renderer override."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TransactionApiView(IssuerApiView):
    content_negotiation_class = JsonOnlyNegotiation


def _validate_query(serializer_class, request) -> dict:
    """Strict query strings: an unknown or repeated parameter is a 400, like a bad value."""
    query = request.query_params
    errors = {}
    for name in query:
        if name not in serializer_class().fields:
            errors[name] = ["Unknown parameter."]
        elif len(query.getlist(name)) > 1:
            errors[name] = ["Give this parameter once."]
    if errors:
        raise exceptions.ValidationError(errors)
    serializer = serializer_class(data={name: query[name] for name in query})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# ---------------------------------------------------------------- list and detail


class TransactionListQuery(serializers.Serializer):
    card = serializers.UUIDField(required=False, help_text="Card id (not the issuer's card_id).")
    status = ChoiceField(choices=TRANS_STATUSES, required=False, help_text="Final transStatus; C: challenge still running.")
    method = ChoiceField(choices=[Challenge.OOB, Challenge.SMS_OTP], required=False, help_text="Challenge method.")
    created_after = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
    created_before = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive.")
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=KeysetPagination.max_page_size)

    def validate(self, attrs):
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError({"created_before": ["Must be later than created_after."]})
        return attrs


def _or_none(value):
    return value if value not in ("", None) else None


def _challenge_of(tx):
    return getattr(tx, "challenge", None)


class TransactionOutput(serializers.Serializer):
    acs_trans_id = serializers.UUIDField()
    ds_trans_id = serializers.UUIDField()
    three_ds_server_trans_id = serializers.UUIDField()
    card = serializers.UUIDField(source="card_id", allow_null=True)
    card_id = serializers.SerializerMethodField(help_text="The issuer's card_id.")
    last4 = serializers.CharField(source="pan_last4")
    network = serializers.CharField()
    message_version = serializers.CharField()
    device_channel = serializers.CharField()
    message_category = serializers.CharField()
    merchant_name = serializers.CharField()
    purchase_amount = serializers.IntegerField(allow_null=True)
    purchase_currency = serializers.SerializerMethodField()
    purchase_exponent = serializers.IntegerField(allow_null=True)
    ares_trans_status = serializers.CharField()
    trans_status = serializers.SerializerMethodField(help_text="Final transStatus; null while the challenge runs.")
    trans_status_reason = serializers.SerializerMethodField()
    eci = serializers.SerializerMethodField()
    method = serializers.SerializerMethodField(help_text="Challenge method, null without a challenge.")
    three_ds_method = serializers.SerializerMethodField(
        help_text="3DS Method (browser only, else null): completed, missing (threeDSCompInd Y, no data), not_completed (N), unavailable (U).")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_card_id(self, tx) -> str | None:
        return tx.card.card_id if tx.card_id and tx.card else None

    def get_purchase_currency(self, tx) -> str | None:
        return _or_none(tx.purchase_currency)

    def get_trans_status(self, tx) -> str | None:
        return _or_none(tx.trans_status)

    def get_trans_status_reason(self, tx) -> str | None:
        return _or_none(tx.trans_status_reason)

    def get_eci(self, tx) -> str | None:
        return _or_none(tx.eci)

    def get_method(self, tx) -> str | None:
        challenge = _challenge_of(tx)
        return challenge.method if challenge else None

    def get_three_ds_method(self, tx) -> str | None:
        return _or_none(tx.three_ds_method)


class TransactionPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TransactionOutput(many=True)


class TimelineEventOutput(serializers.Serializer):
    kind = serializers.CharField()
    actor = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()


class TransactionDetailOutput(TransactionOutput):
    sdk_trans_id = serializers.UUIDField(allow_null=True)
    co_badge = serializers.SerializerMethodField()
    merchant = serializers.SerializerMethodField()
    purchase_date = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()
    challenge = serializers.SerializerMethodField()
    rreq = serializers.SerializerMethodField()
    explanation = serializers.SerializerMethodField(help_text="Why the transaction ended as it did, in words (English).")
    timeline = serializers.SerializerMethodField()

    def get_co_badge(self, tx) -> str | None:
        return _or_none(tx.co_badge)

    def get_merchant(self, tx) -> dict:
        return {
            "name": tx.merchant_name,
            "acquirer_merchant_id": tx.acquirer_merchant_id,
            "acquirer_bin": tx.acquirer_bin,
            "mcc": tx.mcc,
            "country_code": tx.merchant_country_code,
        }

    def get_purchase_date(self, tx) -> str | None:
        return _or_none(tx.purchase_date)

    def get_result(self, tx) -> dict:
        return {
            "ares_trans_status": tx.ares_trans_status,
            "trans_status": _or_none(tx.trans_status),
            "trans_status_reason": _or_none(tx.trans_status_reason),
            "eci": _or_none(tx.eci),
            "authentication_type": _or_none(tx.authentication_type),
            "authentication_value_issued": bool(tx.authentication_value),
            "challenge_cancel": _or_none(tx.challenge_cancel),
            "interaction_counter": tx.interaction_counter,
            "exemption": _or_none(tx.exemption),
        }

    def get_decision(self, tx) -> dict:
        return {
            "score": tx.risk_score,
            "rules": tx.risk_rules,
            "requestor_challenge_indicator": _or_none(tx.three_ds_requestor_challenge_ind),
        }

    def get_challenge(self, tx) -> dict | None:
        challenge = _challenge_of(tx)
        if challenge is None:
            return None
        session = challenge.otp_session
        rules = session.policy_version.rules if session is not None else None
        return {
            "method": challenge.method,
            "decoupled": challenge.decoupled,  # SPEC §3.9: an OOB request without CReq (ARes D)
            "state": challenge.state,
            "fallback_reason": _or_none(challenge.fallback_reason),
            "attempts": session.attempts_used if session is not None else None,
            "max_attempts": getattr(rules, "max_attempts", None),
            "resends": session.resends_used if session is not None else None,
            "created_at": serializers.DateTimeField().to_representation(challenge.created_at),
            "finished_at": serializers.DateTimeField().to_representation(challenge.finished_at) if challenge.finished_at else None,
        }

    def get_rreq(self, tx) -> dict | None:
        delivery = getattr(tx, "rreq_delivery", None)
        if delivery is None:
            return None
        when = serializers.DateTimeField().to_representation
        return {
            "status": delivery.status,
            "tries": delivery.tries,
            "results_status": _or_none(delivery.results_status),
            "last_error": _or_none(delivery.last_error),
            "created_at": when(delivery.created_at),
            "finished_at": when(delivery.finished_at) if delivery.finished_at else None,
            "attempts": [
                {
                    "number": a.number, "started_at": when(a.started_at), "duration_ms": a.duration_ms,
                    "status_code": a.status_code, "results_status": _or_none(a.results_status), "error": _or_none(a.error_message),
                }
                for a in delivery.attempts.all()
            ],
        }

    def _events(self, tx) -> list:
        # Read once for both the explanation and the timeline.
        if "timeline" not in self.context:
            self.context["timeline"] = list(selectors.transaction_timeline(tx=tx))
        return self.context["timeline"]

    def get_explanation(self, tx) -> str:
        return explain(tx, events=self._events(tx))

    def get_timeline(self, tx) -> list[dict]:
        return TimelineEventOutput(self._events(tx), many=True).data


class TransactionListApi(TransactionApiView):
    allowed_query_params = {"get": tuple(TransactionListQuery().fields)}

    @extend_schema(
        summary="List transactions",
        operation_id="v1_transactions_list",
        parameters=[TransactionListQuery],
        responses=TransactionPageOutput,
        description="The issuer's transactions, newest first, a page at a time: follow `next` (older) and `previous` (newer).",
    )
    def get(self, request):
        query = _validate_query(TransactionListQuery, request)
        qs = selectors.transaction_list(
            issuer=self.issuer,
            card=query.get("card"),
            status=query.get("status"),
            method=query.get("method"),
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
        )
        paginator = KeysetPagination()
        page = paginator.paginate(qs, request, limit=query.get("limit"), cursor=query.get("cursor"))
        return paginator.get_paginated_response(TransactionOutput(page, many=True).data)


class NoQuery(serializers.Serializer):
    pass


class TransactionDetailApi(TransactionApiView):
    @extend_schema(summary="Read a transaction, with its explanation and timeline", responses=TransactionDetailOutput)
    def get(self, request, acs_trans_id):
        _validate_query(NoQuery, request)
        tx = selectors.transaction_get(issuer=self.issuer, acs_trans_id=acs_trans_id)
        return Response(TransactionDetailOutput(tx).data)


# ---------------------------------------------------------------- Stripe import (SPEC §3.7)


class StripeImportQuery(serializers.Serializer):
    format = ChoiceField(
        choices=["json", "form"], required=False, default="json",
        help_text="form: text/plain lines `payment_method_options[card][three_d_secure][version]=2.2.0`.",
    )


STRIPE_EXAMPLE = {
    "payment_method_options": {
        "card": {
            "network": "cartes_bancaires",
            "three_d_secure": {
                "version": "2.2.0",
                "electronic_commerce_indicator": "05",
                "cryptogram": "AZ0m4hT1w2p6Yk0WmZz2Xl3zY4c=",
                "transaction_id": "f879ea1c-aa2c-4441-806d-e30406466d79",
                "ares_trans_status": "Y",
                "requestor_challenge_indicator": "05",
                "exemption_indicator": "low_risk",
                "network_options": {"cartes_bancaires": {"cb_avalgo": "0", "cb_score": 12, "cb_exemption": "BAAA"}},
            },
        }
    }
}


class TransactionStripeImportApi(TransactionApiView):
    allowed_query_params = {"get": ("format",)}

    @extend_schema(
        summary="Stripe import of a transaction's result",
        parameters=[StripeImportQuery],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="`payment_method_options` for a Stripe PaymentIntent (`format=json`).",
                examples=[OpenApiExample("Cartes Bancaires co-badged, low-risk exemption", value=STRIPE_EXAMPLE)]),
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="`format=form`: one `key=value` line per form field of the PaymentIntent."),
            409: OpenApiResponse(description="The transaction did not end Y or A; the message says how it ended."),
        },
    )
    def get(self, request, acs_trans_id):
        query = _validate_query(StripeImportQuery, request)
        tx = selectors.transaction_get(issuer=self.issuer, acs_trans_id=acs_trans_id)
        options = stripe_payment_method_options(tx)
        if query["format"] == "form":
            return HttpResponse(stripe_form_lines(options), content_type="text/plain; charset=utf-8")
        return Response(options)


# ---------------------------------------------------------------- authentication value verification


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]{1,48}$"}], "nullable": True})
class MinorUnitsField(serializers.Field):
    """An amount in minor units as in the AReq: a string of digits, or a JSON integer."""

    default_error_messages = {"invalid": "Must be a non-negative integer or a string of 1 to 48 digits."}

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and data >= 0:
            return data
        if isinstance(data, str) and data.isascii() and data.isdigit() and len(data) <= 48:
            return int(data)
        self.fail("invalid")

    def to_representation(self, value):
        return value


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data):
        if not isinstance(data, str):  # DRF would read an integer as a UUID
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


# Also checked in validate_purchase_currency; here so that the description carries the pattern.
CURRENCY_VALIDATOR = RegexValidator(r"^[0-9]{3}$", "Must be 3 digits (ISO 4217 numeric).")


class AuthenticationValueVerifyInput(StrictSerializer):
    """What the authorisation request carried, to check against what the ACS issued."""

    pan = PanField(help_text="13–19 digits. Never echoed.")
    ds_trans_id = StrictUUIDField(help_text="dsTransID of the authentication.")
    authentication_value = StrictCharField(max_length=64, trim_whitespace=False, help_text="28 characters, base64.")
    purchase_amount = MinorUnitsField(allow_null=True, help_text="Minor units; null for a non-payment authentication.")
    purchase_currency = StrictCharField(max_length=3, allow_null=True, validators=[CURRENCY_VALIDATOR], help_text="ISO 4217 numeric; null for a non-payment authentication.")

    def validate_pan(self, value):
        problem = pan_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_purchase_currency(self, value):
        if value is not None and not (len(value) == 3 and value.isascii() and value.isdigit()):
            raise serializers.ValidationError("Must be 3 digits (ISO 4217 numeric).")
        return value


class AuthenticationValueVerifyOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    acs_trans_id = serializers.UUIDField(source="transaction.acs_trans_id")
    trans_status = serializers.SerializerMethodField()
    eci = serializers.SerializerMethodField()

    def get_trans_status(self, verification) -> str | None:
        return _or_none(verification.transaction.trans_status)

    def get_eci(self, verification) -> str | None:
        return _or_none(verification.transaction.eci)


class AuthenticationValueVerifyApi(TransactionApiView):
    @extend_schema(
        summary="Verify an authentication value",
        request=AuthenticationValueVerifyInput,
        responses={200: AuthenticationValueVerifyOutput, 404: OpenApiResponse(description="No transaction of this issuer has this ds_trans_id.")},
        description="A wrong value, PAN, amount or currency is `valid: false`; the PAN is never echoed.",
    )
    def post(self, request):
        raw_pan = request.data.get("pan") if isinstance(request.data, dict) else None
        with sensitive(raw_pan if isinstance(raw_pan, str) else None):
            serializer = AuthenticationValueVerifyInput(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            verification = selectors.authentication_value_verify(
                issuer=self.issuer,
                pan=data["pan"],
                ds_trans_id=data["ds_trans_id"],
                authentication_value=data["authentication_value"],
                purchase_amount=data["purchase_amount"],
                purchase_currency=data["purchase_currency"] or "",
            )
            return Response(AuthenticationValueVerifyOutput(verification).data)


# ---------------------------------------------------------------- card ranges for the DSs (SPEC §5.1)


class CardRangeOutput(serializers.Serializer):
    # EMV cardRangeData field names, as the DS takes them.
    startRange = serializers.RegexField(r"^[0-9]{13,19}$", help_text="First PAN of the range, padded with 0s to PAN length.")
    endRange = serializers.RegexField(r"^[0-9]{13,19}$", help_text="Last PAN of the range, padded with 9s to PAN length.")
    network = ChoiceField(choices=NETWORK_CHOICES, help_text="The DS this range is for.")
    actionInd = ChoiceField(choices=[card_ranges.ACTION_ADD], help_text="A: add (this is the full list).")
    acsStartProtocolVersion = serializers.CharField()
    acsEndProtocolVersion = serializers.CharField()
    threeDSMethodURL = serializers.URLField()
    acsInfoInd = serializers.ListField(
        child=ChoiceField(choices=[card_ranges.ACS_INFO_AUTHENTICATION, card_ranges.ACS_INFO_ATTEMPTS]),
        help_text="01 authentication available at the ACS; 02 attempts supported.",
    )


class CardRangeListOutput(serializers.Serializer):
    cardRangeData = CardRangeOutput(many=True)


class CardRangeListApi(IssuerApiView):
    @extend_schema(
        operation_id="v1_card_ranges_list",
        summary="Card ranges to give each DS",
        description="The issuer's BIN grants as EMV `cardRangeData`: the parts its card products hold (a Cartes "
                    "Bancaires product once under each of its two networks) and the parts no product holds "
                    "(network from the PAN prefix). A full list: every entry has `actionInd` `A`.",
        responses=CardRangeListOutput,
    )
    def get(self, request):
        return Response({"cardRangeData": card_ranges.card_range_data(issuer=self.issuer)})
