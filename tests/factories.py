"""Test data as the product makes it: issuers, grants, API keys, cardholders, phones, cards,
staff users. Functions named `make_<thing>` write through the services where one exists, so
the data passes the same rules as real data. See docs/TESTING.md."""

import factory
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from apps.accounts.models import User
from apps.cards import services as card_services
from apps.cards.models import Cardholder, CardProduct, Phone
from apps.issuers.models import GRANT_PREFIX_DIGITS, BinGrant, Issuer, pan_prefix_key
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
    """A fresh Luhn-valid PAN. The sequence number sits inside the 11-digit prefix that BIN
    grants compare (and again at the end), so PANs made for different issuers fall under
    different 11-digit grants (`ensure_grant`) instead of all sharing one."""
    n = next(_pan_seq)
    slot = max(0, GRANT_PREFIX_DIGITS - len(prefix))
    body = prefix + (f"{n % 10**slot:0{slot}d}" if slot else "")
    rest = length - 1 - len(body)
    if rest > 0:
        body += f"{n % 10**rest:0{rest}d}"
    return luhn_complete(body[: length - 1])


# BINs of the well-known test card numbers; the `issuer` fixture holds grants for all of them.
TEST_BIN_RANGES = [
    ("411110", "411119"), ("555555", "555555"), ("400000", "400000"), ("222300", "222300"),
    ("378282", "378282"), ("353011", "353011"), ("601111", "601111"),
]


def grant(issuer, start: str, end: str | None = None) -> BinGrant:
    """A BIN grant as the platform operator makes it."""
    return issuer_services.bin_grant_create(issuer=issuer, start=start, end=end or start, actor="tests")


def ensure_grant(issuer, pan: str) -> BinGrant:
    """The issuer's grant holding this PAN; when none, grants the PAN's 11-digit prefix (fails
    when another issuer's grant holds it, as it must)."""
    key = pan_prefix_key(pan)
    existing = BinGrant.objects.filter(issuer=issuer, low__lte=key, high__gte=key).first()
    return existing or grant(issuer, pan[:GRANT_PREFIX_DIGITS])


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
    pan = pan or new_pan()
    ensure_grant(cardholder.issuer, pan)
    card = card_services.card_create(
        issuer=cardholder.issuer,
        card_id=card_id or f"card-{next(_pan_seq)}",
        cardholder=cardholder,
        pan=pan,
        expiry_month=kwargs.pop("expiry_month", 12),
        expiry_year=kwargs.pop("expiry_year", year),
        actor="tests",
        **kwargs,
    )
    if status != "active":
        card.status = status
        card.save(update_fields=["status"])
    return card


# The cardholder's mobile in the single-issuer tests (`sms_file` shows it, pages mask it).
CARDHOLDER_PHONE = "+819012345678"


def make_phone(cardholder, number: str = CARDHOLDER_PHONE, *, is_primary: bool = True, verified: bool = True) -> Phone:
    """A phone codes can go to: primary and verified unless told otherwise."""
    return Phone.objects.create(cardholder=cardholder, number=number, is_primary=is_primary, verified=verified)


def make_staff(issuer, role: str | None, username: str | None = None) -> User:
    """A staff user of `issuer` (None: the platform) in the role group `role` (None: no role).
    The role groups must exist (the `role_groups` fixture of tests/support/fixtures.py)."""
    user = User.objects.create_user(
        username=username or f"{(role or 'staff').split()[0].lower()}-{issuer.issuer_id if issuer else 'none'}",
        password="x", is_staff=True, issuer=issuer,
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_superuser(username: str = "root", password: str = "x") -> User:
    return User.objects.create_superuser(username=username, password=password, email=f"{username}@example.com")


def client_for(user) -> Client:
    """A Django test client logged in as `user`."""
    client = Client()
    client.force_login(user)
    return client
