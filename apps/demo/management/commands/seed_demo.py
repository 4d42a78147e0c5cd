"""`manage.py seed_demo`: a demo issuer with staff, products, cardholders and cards (SPEC §6).

Idempotent: what exists is kept, what is missing is created. Each run sets a new password on
the demo users and mints a new "demo" API key (revoking the previous one), because both are
printed once and stored only as hashes.
"""

import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR, sync_role_groups
from apps.cards import selectors as card_selectors
from apps.cards import services as card_services
from apps.cards.models import Card, CardProduct
from apps.core.exceptions import Conflict
from apps.core.pan import CARTES_BANCAIRES, MASTERCARD, VISA
from apps.issuers import services as issuer_services
from apps.issuers.models import Issuer
from apps.issuers.selectors import bin_grants_cover
from apps.otp.models import OtpPolicy
from apps.otp.services import otp_policy_save
from apps.threeds.models import AcsSigningKey
from apps.threeds.signing_keys import signing_key_install, test_credentials_make

ACTOR = "seed_demo"
ISSUER_ID, ISSUER_NAME, ISSUER_COUNTRY = "DEMOBANK01", "Demo Bank", "JP"
SUPERUSER = "admin"
STAFF = [("demo-issuer-admin", ISSUER_ADMIN), ("demo-operator", OPERATOR), ("demo-analyst", ANALYST)]

# The demo issuer's BIN grants (platform operator's part): every product range and card below.
GRANTS = [("400000", "400000"), ("411111", "411111"), ("555555", "555555")]
# name, network, co-badge, BIN ranges. Prefixes of different lengths may sit side by side:
# 40000000 (Visa) and 40000025 (CB) do not overlap.
PRODUCTS = [
    ("Demo Visa", VISA, "", [("411111", "411111"), ("40000000", "40000000")]),
    ("Demo CB Visa", CARTES_BANCAIRES, VISA, [("40000025", "40000025")]),
    ("Demo CB Mastercard", CARTES_BANCAIRES, MASTERCARD, [("55555525", "55555525")]),
]
# external_id, name, locale, primary phone (valid JP and FR mobile numbers)
CARDHOLDERS = [
    ("demo-0001", "Alice Walker", "en", "+819012345678"),
    ("demo-0002", "山田 太郎", "ja", "+818012345678"),
    ("demo-0003", "佐藤 花子", "ja", "+817012345678"),
    ("demo-0004", "Camille Dupont", "fr", "+33612345678"),
    ("demo-0005", "Louis Bernard", "fr", "+33687654321"),
]
# card_id, cardholder, PAN (well-known Luhn-valid test numbers), status
CARDS = [
    ("demo-visa-1", "demo-0001", "4111111111111111", Card.ACTIVE),
    ("demo-visa-2", "demo-0002", "4000000000001000", Card.ACTIVE),
    ("demo-visa-3", "demo-0001", "4000000000003220", Card.SUSPENDED),
    ("demo-mc-1", "demo-0003", "5555555555554444", Card.ACTIVE),  # no product: network from prefix
    ("demo-cb-visa-1", "demo-0004", "4000002500001001", Card.ACTIVE),
    ("demo-cb-mc-1", "demo-0005", "5555552500001001", Card.ACTIVE),
]


class Command(BaseCommand):
    help = "Create (or complete) the demo issuer, its staff users, card products, cardholders and cards."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Password for the demo users (default: a new random one, printed).")

    def handle(self, *args, **options):
        password = options["password"] or secrets.token_urlsafe(12)
        with transaction.atomic():
            issuer = self._issuer()
            self._users(issuer, password)
            self._grants(issuer)
            self._products(issuer)
            cards = self._cards(issuer, self._cardholders(issuer))
            api_key = self._fresh_api_key(issuer)
            signing_networks = self._signing_keys()

        shown_password = password if not options["password"] else "(the one given with --password)"
        self.stdout.write(f"Demo issuer {ISSUER_NAME} ({ISSUER_ID}) is ready.")
        self.stdout.write(f"  Admin:    {settings.PUBLIC_BASE_URL}/admin/")
        self.stdout.write(f"  Login:    {SUPERUSER} (superuser); {', '.join(name for name, _ in STAFF)} (demo issuer staff)")
        self.stdout.write(f"  Password: {shown_password}")
        self.stdout.write(f"  API key:  {api_key}")
        # Last four digits only, never a PAN.
        self.stdout.write("  Cards:    " + ", ".join(f"{c.card_id} {c.masked_pan} ({c.status})" for c in cards))
        if signing_networks:
            self.stdout.write(f"  App channel: test signing keys installed for {', '.join(signing_networks)} "
                              "(self-made test roots: `acs_signing_key list`; never for production)")

    @staticmethod
    def _signing_keys() -> list[str]:
        """The app channel signs acsSignedContent with a key per network (SPEC §3.3.3): the demo's
        networks get test credentials by the `acs_signing_key generate-test` path, unless a key
        is installed already (an operator's is never replaced)."""
        installed = []
        for network in sorted({network for _, network, _, _ in PRODUCTS} | {MASTERCARD}):
            if not AcsSigningKey.objects.filter(network=network, active=True).exists():
                key_pem, chain_pem, _ = test_credentials_make(network)
                signing_key_install(network=network, key_pem=key_pem, chain_pem=chain_pem)
                installed.append(network)
        return installed

    def _issuer(self) -> Issuer:
        issuer = Issuer.objects.filter(issuer_id=ISSUER_ID).first()
        if issuer is None:
            issuer, _ = issuer_services.issuer_create(issuer_id=ISSUER_ID, name=ISSUER_NAME, country=ISSUER_COUNTRY)
        # The demo has French cardholders too (the Cartes Bancaires cards): let SMS reach them.
        policy = OtpPolicy.objects.filter(issuer=issuer, product__isnull=True).first()
        if policy is not None and "FR" not in policy.allowed_countries:
            policy.allowed_countries = [*policy.allowed_countries, "FR"]
            otp_policy_save(policy=policy, actor=ACTOR)
        if not issuer.webauthn_rp_id:
            # So the demo issuer app (or a browser on this machine) can register a device: WebAuthn
            # accepts "localhost" as RP id over plain HTTP, never an IP address.
            issuer.webauthn_rp_id = "localhost"
            issuer.webauthn_origins = sorted({settings.PUBLIC_BASE_URL.rstrip("/").replace("127.0.0.1", "localhost"), "http://localhost:8000"})
            issuer.save(update_fields=["webauthn_rp_id", "webauthn_origins"])
        return issuer

    def _users(self, issuer: Issuer, password: str) -> None:
        sync_role_groups()  # the role groups exist after migrate; make sure anyway
        _staff_user(SUPERUSER, password=password, issuer=None, role=None)
        for username, role in STAFF:
            _staff_user(username, password=password, issuer=issuer, role=role)

    def _grants(self, issuer: Issuer) -> None:
        for start, end in GRANTS:
            if not bin_grants_cover(issuer=issuer, start=start, end=end):
                try:
                    issuer_services.bin_grant_create(issuer=issuer, start=start, end=end, actor=ACTOR)
                except Conflict:  # part of it already granted (e.g. derived by the migration): keep that
                    self.stderr.write(f"BIN grant {start}-{end} overlaps an existing grant; kept the existing one.")

    def _products(self, issuer: Issuer) -> None:
        for name, network, co_badge, ranges in PRODUCTS:
            if not CardProduct.objects.filter(issuer=issuer, name=name).exists():
                card_services.card_product_create(
                    issuer=issuer, name=name, network=network, co_badge=co_badge,
                    bin_ranges=[{"start": start, "end": end} for start, end in ranges], actor=ACTOR,
                )

    def _cardholders(self, issuer: Issuer) -> dict:
        cardholders = {}
        for external_id, name, locale, phone in CARDHOLDERS:
            cardholder = card_selectors.cardholder_list(issuer=issuer, external_id=external_id).first()
            if cardholder is None:
                cardholder = card_services.cardholder_create(
                    issuer=issuer, external_id=external_id, name=name, locale=locale, actor=ACTOR
                )
            if not cardholder.phones.exists():
                card_services.phone_create(cardholder=cardholder, number=phone, is_primary=True, verified=True, actor=ACTOR)
            cardholders[external_id] = cardholder
        return cardholders

    def _cards(self, issuer: Issuer, cardholders: dict) -> list[Card]:
        cards = []
        expiry_year = timezone.now().year + 3
        for card_id, external_id, pan, status in CARDS:
            card = Card.objects.filter(issuer=issuer, card_id=card_id).first()
            if card is None:
                card = card_services.card_create(
                    issuer=issuer, card_id=card_id, cardholder=cardholders[external_id], pan=pan,
                    expiry_month=12, expiry_year=expiry_year, actor=ACTOR,
                )
                if status != card.status:
                    card = card_services.card_update(card=card, status=status, actor=ACTOR)
            cards.append(card)
        return cards

    def _fresh_api_key(self, issuer: Issuer) -> str:
        for old in issuer.api_keys.filter(name="demo", revoked_at__isnull=True):
            issuer_services.api_key_revoke(api_key=old, actor=ACTOR)
        _, plaintext = issuer_services.api_key_create(issuer=issuer, name="demo", created_by=ACTOR)
        return plaintext


def _staff_user(username: str, *, password: str, issuer: Issuer | None, role: str | None) -> User:
    """A staff user of the issuer in the given role, or a superuser when role is None."""
    user = User.objects.filter(username=username).first() or User(username=username)
    user.is_active = user.is_staff = True
    user.is_superuser = role is None
    user.issuer = issuer
    user.set_password(password)
    user.full_clean()
    user.save()
    user.groups.set([Group.objects.get(name=role)] if role else [])
    return user
