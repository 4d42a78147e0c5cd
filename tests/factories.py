import factory
from django.utils import timezone

from apps.cards import services as card_services
from apps.cards.models import Cardholder, CardProduct
from apps.issuers.models import Issuer
from apps.issuers import services as issuer_services


def luhn_complete(partial: str) -> str:
    """Append the check digit that makes `partial` pass Luhn."""
    for d in "0123456789":
        from apps.core.pan import luhn_valid

        if luhn_valid(partial + d):
            return partial + d
    raise AssertionError


_pan_seq = iter(range(10**8))


def new_pan(prefix: str = "4111", length: int = 16) -> str:
    body = f"{prefix}{next(_pan_seq):0{length - len(prefix) - 1}d}"
    return luhn_complete(body)


class IssuerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issuer

    issuer_id = factory.Sequence(lambda n: f"ISS{n:07d}")
    name = factory.Sequence(lambda n: f"Bank {n}")
    country = "JP"


class CardholderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cardholder

    issuer = factory.SubFactory(IssuerFactory)
    external_id = factory.Sequence(lambda n: f"cust-{n:06d}")
    name = factory.Faker("name")
    locale = "en"


class CardProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardProduct

    issuer = factory.SubFactory(IssuerFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    network = "visa"
    co_badge = ""


def make_api_key(issuer, name="test key") -> str:
    _, plaintext = issuer_services.api_key_create(issuer=issuer, name=name, created_by="tests")
    return plaintext


def make_card(*, cardholder, pan=None, card_id=None, status="active", **kwargs):
    year = timezone.now().year + 3
    card = card_services.card_create(
        issuer=cardholder.issuer,
        card_id=card_id or f"card-{next(_pan_seq)}",
        cardholder=cardholder,
        pan=pan or new_pan(),
        expiry_month=kwargs.pop("expiry_month", 12),
        expiry_year=kwargs.pop("expiry_year", year),
        actor="tests",
        **kwargs,
    )
    if status != "active":
        card.status = status
        card.save(update_fields=["status"])
    return card
