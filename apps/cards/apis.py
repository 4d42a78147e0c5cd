"""Issuer API: enrollment of cardholders, phones, card products and cards (SPEC §5.1)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.cards import selectors, services
from apps.cards.models import LOCALE_CHOICES, Card, CardProduct, card_id_validator
from apps.core.exceptions import ApplicationError
from apps.core.openapi import IDEMPOTENCY_KEY
from apps.core.pagination import KeysetPagination
from apps.core.serializers import (
    PanField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
)
from apps.issuers.api import IssuerApiView


def _validate(serializer_class, data, *, partial=False) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# ---------------------------------------------------------------- cardholders


class CardholderOutput(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    locale = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class CardholderInput(StrictSerializer):
    external_id = StrictCharField(max_length=64)
    name = StrictCharField(max_length=120)
    locale = StrictChoiceField(choices=LOCALE_CHOICES, required=False, default="en")


class CardholderPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CardholderOutput(many=True)


class CardholderListQuery(serializers.Serializer):
    external_id = serializers.CharField(required=False, max_length=64)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=KeysetPagination.max_page_size)
    cursor = serializers.CharField(required=False, help_text="From the `next` or `previous` link.")


class CardholderListCreateApi(IssuerApiView):
    allowed_query_params = {"get": tuple(CardholderListQuery().fields)}

    @extend_schema(
        summary="List cardholders",
        parameters=[CardholderListQuery],
        responses=CardholderPageOutput,
        operation_id="v1_cardholders_list",
        description="The issuer's cardholders, newest first, a page at a time: follow `next` and `previous`.",
    )
    def get(self, request):
        query = _validate(CardholderListQuery, request.query_params.dict())
        paginator = KeysetPagination()
        qs = selectors.cardholder_list(issuer=self.issuer, external_id=query.get("external_id"))
        page = paginator.paginate(qs, request, limit=query.get("limit"), cursor=query.get("cursor"))
        return paginator.get_paginated_response(CardholderOutput(page, many=True).data)

    @extend_schema(summary="Create a cardholder", request=CardholderInput, responses={201: CardholderOutput}, parameters=[IDEMPOTENCY_KEY])
    def post(self, request):
        data = _validate(CardholderInput, request.data)
        cardholder = services.cardholder_create(issuer=self.issuer, actor=self.actor, **data)
        return Response(CardholderOutput(cardholder).data, status=status.HTTP_201_CREATED)


class CardholderDetailApi(IssuerApiView):
    @extend_schema(summary="Read a cardholder", responses=CardholderOutput)
    def get(self, request, cardholder_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        return Response(CardholderOutput(cardholder).data)

    @extend_schema(summary="Change a cardholder", request=CardholderInput, responses=CardholderOutput)
    def patch(self, request, cardholder_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        data = _validate(CardholderInput, request.data, partial=True)
        cardholder = services.cardholder_update(cardholder=cardholder, actor=self.actor, **data)
        return Response(CardholderOutput(cardholder).data)

    @extend_schema(summary="Remove a cardholder, with their cards and devices", responses={204: None})
    def delete(self, request, cardholder_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        services.cardholder_delete(cardholder=cardholder, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- phones


class PhoneOutput(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.SerializerMethodField()
    masked = serializers.CharField()
    is_primary = serializers.BooleanField()
    verified = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_number(self, phone) -> str:
        return phone.number.as_e164


class PhoneInput(StrictSerializer):
    number = StrictCharField(max_length=32, help_text="E.164, e.g. +819012345678.")
    is_primary = StrictBooleanField(required=False, default=None, allow_null=True,
                                    help_text="Defaults to true for the cardholder's first phone.")
    verified = StrictBooleanField(required=False, default=False)


class PhoneListCreateApi(IssuerApiView):
    @extend_schema(summary="List a cardholder's phones", responses=PhoneOutput(many=True))
    def get(self, request, cardholder_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        return Response(PhoneOutput(cardholder.phones.all(), many=True).data)

    @extend_schema(summary="Add a phone", request=PhoneInput, responses={201: PhoneOutput}, parameters=[IDEMPOTENCY_KEY])
    def post(self, request, cardholder_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        data = _validate(PhoneInput, request.data)
        phone = services.phone_create(cardholder=cardholder, actor=self.actor, **data)
        return Response(PhoneOutput(phone).data, status=status.HTTP_201_CREATED)


class PhoneUpdateInput(StrictSerializer):
    number = StrictCharField(max_length=32, help_text="E.164, e.g. +819012345678. A new number is unverified unless `verified` says otherwise.")
    is_primary = StrictBooleanField(help_text="True makes this the cardholder's one primary phone (the previous one is demoted).")
    verified = StrictBooleanField()


class PhoneDetailApi(IssuerApiView):
    @extend_schema(
        summary="Change a phone",
        request=PhoneUpdateInput,
        responses=PhoneOutput,
        description="Any of `number`, `is_primary`, `verified`. An invalid number is a 400 naming `number`; "
                    "a number the cardholder already has is a 409.",
    )
    def patch(self, request, cardholder_id, phone_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        phone = selectors.phone_get(cardholder=cardholder, phone_id=phone_id)
        data = _validate(PhoneUpdateInput, request.data, partial=True)
        phone = services.phone_update(phone=phone, actor=self.actor, **data)
        return Response(PhoneOutput(phone).data)

    @extend_schema(summary="Remove a phone", responses={204: None})
    def delete(self, request, cardholder_id, phone_id):
        cardholder = selectors.cardholder_get(issuer=self.issuer, cardholder_id=cardholder_id)
        phone = selectors.phone_get(cardholder=cardholder, phone_id=phone_id)
        services.phone_delete(phone=phone, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- card products


class BinRangeSerializer(StrictSerializer):
    start = StrictCharField(max_length=19)
    end = StrictCharField(max_length=19)


class CardProductOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    network = serializers.CharField()
    co_badge = serializers.SerializerMethodField()
    bin_ranges = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_co_badge(self, product) -> str | None:
        return product.co_badge or None

    def get_bin_ranges(self, product) -> list[dict]:
        return [{"start": r.start, "end": r.end} for r in product.bin_ranges.all()]


class CardProductInput(StrictSerializer):
    name = StrictCharField(max_length=100)
    network = StrictChoiceField(choices=CardProduct.PRODUCT_NETWORKS)
    co_badge = StrictChoiceField(choices=CardProduct.CO_BADGES, required=False, allow_null=True, default=None)
    bin_ranges = BinRangeSerializer(many=True, allow_empty=True)

    def validate(self, attrs):
        if "co_badge" in attrs:
            attrs["co_badge"] = attrs["co_badge"] or ""
        return attrs


class CardProductListCreateApi(IssuerApiView):
    @extend_schema(summary="List card products", responses=CardProductOutput(many=True))
    def get(self, request):
        return Response(CardProductOutput(selectors.card_product_list(issuer=self.issuer), many=True).data)

    @extend_schema(summary="Create a card product", request=CardProductInput, responses={201: CardProductOutput}, parameters=[IDEMPOTENCY_KEY])
    def post(self, request):
        data = _validate(CardProductInput, request.data)
        product = services.card_product_create(issuer=self.issuer, actor=self.actor, **data)
        return Response(CardProductOutput(product).data, status=status.HTTP_201_CREATED)


class CardProductDetailApi(IssuerApiView):
    @extend_schema(summary="Read a card product", responses=CardProductOutput)
    def get(self, request, product_id):
        return Response(CardProductOutput(selectors.card_product_get(issuer=self.issuer, product_id=product_id)).data)

    @extend_schema(summary="Change a card product", request=CardProductInput, responses=CardProductOutput)
    def patch(self, request, product_id):
        product = selectors.card_product_get(issuer=self.issuer, product_id=product_id)
        data = _validate(CardProductInput, request.data, partial=True)
        product = services.card_product_update(product=product, actor=self.actor, **data)
        product = selectors.card_product_get(issuer=self.issuer, product_id=product.pk)
        return Response(CardProductOutput(product).data)


# ---------------------------------------------------------------- cards


class CardOutput(serializers.Serializer):
    id = serializers.UUIDField()
    card_id = serializers.CharField()
    cardholder = serializers.UUIDField(source="cardholder_id")
    product = serializers.UUIDField(source="product_id", allow_null=True)
    last4 = serializers.CharField()
    network = serializers.CharField()
    co_badge = serializers.SerializerMethodField()
    expiry_month = serializers.IntegerField()
    expiry_year = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_co_badge(self, card) -> str | None:
        return card.co_badge or None


class CardCreateInput(StrictSerializer):
    card_id = StrictCharField(max_length=48, validators=[card_id_validator], help_text="The issuer's card id: 1–48 of A–Z a–z 0–9 _ -; never derived from the PAN.")
    cardholder = StrictCharField(help_text="Cardholder id.")
    pan = PanField(help_text="13–19 digits, Luhn-valid. Never echoed.")
    expiry_month = StrictIntegerField()
    expiry_year = StrictIntegerField()
    product = StrictCharField(required=False, allow_null=True, default=None, help_text="Card product id; by default the product whose BIN range holds the PAN.")


class CardUpdateInput(StrictSerializer):
    status = StrictChoiceField(choices=Card.STATUS_CHOICES)
    expiry_month = StrictIntegerField()
    expiry_year = StrictIntegerField()


class CardPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CardOutput(many=True)


class CardListQuery(serializers.Serializer):
    cardholder = serializers.UUIDField(required=False, help_text="Cardholder id.")
    card_id = StrictCharField(required=False, max_length=48, validators=[card_id_validator], help_text="The issuer's card id (exact).")
    status = StrictChoiceField(choices=Card.STATUS_CHOICES, required=False)
    last4 = serializers.RegexField(r"^[0-9]{4}$", required=False, help_text="Last 4 digits of the PAN.",
                                   error_messages={"invalid": "Exactly 4 digits."})
    limit = serializers.IntegerField(required=False, min_value=1, max_value=KeysetPagination.max_page_size)
    cursor = serializers.CharField(required=False, help_text="From the `next` or `previous` link.")


class CardListCreateApi(IssuerApiView):
    allowed_query_params = {"get": tuple(CardListQuery().fields)}

    @extend_schema(
        summary="List cards",
        parameters=[CardListQuery],
        responses=CardPageOutput,
        operation_id="v1_cards_list",
        description="The issuer's cards, newest first, a page at a time: follow `next` and `previous`. "
                    "`card_id` finds the card of the issuer's own id.",
    )
    def get(self, request):
        query = _validate(CardListQuery, request.query_params.dict())
        paginator = KeysetPagination()
        qs = selectors.card_list(
            issuer=self.issuer, cardholder=query.get("cardholder"), card_id=query.get("card_id"),
            status=query.get("status"), last4=query.get("last4"),
        )
        page = paginator.paginate(qs, request, limit=query.get("limit"), cursor=query.get("cursor"))
        return paginator.get_paginated_response(CardOutput(page, many=True).data)

    @extend_schema(summary="Enrol a card", request=CardCreateInput, responses={201: CardOutput}, parameters=[IDEMPOTENCY_KEY])
    def post(self, request):
        data = _validate(CardCreateInput, request.data)
        cardholder = selectors.cardholder_find(issuer=self.issuer, cardholder_id=data["cardholder"])
        if cardholder is None:
            raise ApplicationError("Unknown cardholder.", code="unknown_cardholder", fields={"cardholder": ["No such cardholder."]})
        product = None
        if data["product"] is not None:
            product = selectors.card_product_find(issuer=self.issuer, product_id=data["product"])
            if product is None:
                raise ApplicationError("Unknown card product.", code="unknown_product", fields={"product": ["No such card product."]})
        card = services.card_create(
            issuer=self.issuer,
            card_id=data["card_id"],
            cardholder=cardholder,
            pan=data["pan"],
            expiry_month=data["expiry_month"],
            expiry_year=data["expiry_year"],
            product=product,
            actor=self.actor,
        )
        return Response(CardOutput(card).data, status=status.HTTP_201_CREATED)


class CardDetailApi(IssuerApiView):
    @extend_schema(summary="Read a card", responses=CardOutput)
    def get(self, request, card_pk):
        return Response(CardOutput(selectors.card_get(issuer=self.issuer, card_id=card_pk)).data)

    @extend_schema(summary="Change a card's status or expiry", request=CardUpdateInput, responses=CardOutput)
    def patch(self, request, card_pk):
        card = selectors.card_get(issuer=self.issuer, card_id=card_pk)
        data = _validate(CardUpdateInput, request.data, partial=True)
        card = services.card_update(card=card, actor=self.actor, **data)
        return Response(CardOutput(card).data)

    @extend_schema(summary="Remove a card", responses={204: None})
    def delete(self, request, card_pk):
        card = selectors.card_get(issuer=self.issuer, card_id=card_pk)
        services.card_delete(card=card, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
