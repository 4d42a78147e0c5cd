"""`manage.py seed_demo`: a demo issuer with staff, products, cardholders and cards (SPEC §6).

Idempotent: what exists is kept, what is missing is created. The demo password and the demo API
key are derived from SECRET_KEY (stored only as hashes, like any password and key): every run on
the same settings prints the same two values, so a rerun of `make run` never locks anyone out nor
revokes the key a script is using. With the development SECRET_KEY they are the values the
README shows.
"""

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

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
from apps.threeds.risk import risk_policy_for, risk_policy_save
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
# external_id, name, locale, primary phone (valid JP and FR mobile numbers; None: no phone)
CARDHOLDERS = [
    ("demo-0001", "Alice Walker", "en", "+819012345678"),
    ("demo-0002", "山田 太郎", "ja", "+818012345678"),
    ("demo-0003", "佐藤 花子", "ja", "+817012345678"),
    ("demo-0004", "Camille Dupont", "fr", "+33612345678"),
    ("demo-0005", "Louis Bernard", "fr", "+33687654321"),
    # The demo issuer app's cardholder (/demo/app/): once a browser is registered as her device,
    # her challenges go out of band to it; before that (or on cancel) by SMS.
    ("demo-0006", "Hana Kobayashi", "en", "+819011112222"),
    # No phone and no device: a challenge has no method and ends N / 13 (the policy's outcome).
    ("demo-0007", "Kenji Ito", "ja", None),
]
APP_CARDHOLDER = "demo-0006"
# card_id, cardholder, PAN (well-known Luhn-valid test numbers), status. README's "Demo cards"
# table says what each one shows; tests/test_readme.py keeps the two in step.
CARDS = [
    ("demo-visa-1", "demo-0001", "4111111111111111", Card.ACTIVE),
    ("demo-visa-2", "demo-0002", "4000000000001000", Card.ACTIVE),
    ("demo-visa-3", "demo-0001", "4000000000003220", Card.SUSPENDED),
    ("demo-mc-1", "demo-0003", "5555555555554444", Card.ACTIVE),  # no product: network from prefix
    ("demo-cb-visa-1", "demo-0004", "4000002500001001", Card.ACTIVE),
    ("demo-cb-mc-1", "demo-0005", "5555552500001001", Card.ACTIVE),
    ("demo-visa-app", "demo-0006", "4000000000001091", Card.ACTIVE),
    ("demo-visa-nophone", "demo-0007", "4000000000003063", Card.ACTIVE),
]
# A demo runs dozens of authentications on a handful of cards within the hour: the production
# defaults (5 codes per card an hour, 10 authentications per card an hour) would refuse SMS or
# decline after a few. Demo values, within SPEC §3.5's bounds.
DEMO_OTP_LIMITS = {"max_sends_per_card_hour": 60, "max_sends_per_card_day": 500, "max_sends_per_phone_day": 500}
DEMO_RISK_VELOCITY = {"velocity_max_per_hour": 200, "velocity_warn_per_hour": 100}


def demo_secret(label: str, length: int) -> str:
    """A stable secret of the demo, derived from SECRET_KEY (the same settings, the same value)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"seed_demo:{label}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=").replace("-", "x").replace("_", "y")[:length]


def demo_password() -> str:
    return "demo-" + demo_secret("password", 12)


def demo_api_key_parts() -> tuple[str, str]:
    """(prefix, secret) of the demo API key `ik_<prefix>_<secret>`."""
    prefix = hmac.new(settings.SECRET_KEY.encode(), b"seed_demo:api-key-prefix", hashlib.sha256).hexdigest()[:12]
    return prefix, demo_secret("api-key", 40)


def demo_app_url() -> str:
    """The demo issuer app page. WebAuthn takes "localhost" as RP id over plain HTTP, never an IP
    address: the page is opened at localhost whatever host PUBLIC_BASE_URL names."""
    return _localhost(settings.PUBLIC_BASE_URL) + "/demo/app/"


def _localhost(url: str) -> str:
    parts = urlsplit(url.rstrip("/"))
    if parts.hostname in ("127.0.0.1", "::1"):
        return f"{parts.scheme}://localhost" + (f":{parts.port}" if parts.port else "")
    return url.rstrip("/")


class Command(BaseCommand):
    help = "Create (or complete) the demo issuer, its staff users, card products, cardholders and cards."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Password for the demo users (default: a new random one, printed).")

    def handle(self, *args, **options):
        password = options["password"] or demo_password()
        with transaction.atomic():
            issuer = self._issuer()
            self._users(issuer, password)
            self._grants(issuer)
            self._products(issuer)
            cards = self._cards(issuer, self._cardholders(issuer))
            api_key = self._demo_api_key(issuer)
            self._demo_policies(issuer)
            signing_networks = self._signing_keys()

        shown_password = password if not options["password"] else "(the one given with --password)"
        self.stdout.write(f"Demo issuer {ISSUER_NAME} ({ISSUER_ID}) is ready.")
        self.stdout.write(f"  Admin:    {settings.PUBLIC_BASE_URL}/admin/")
        self.stdout.write(f"  Login:    {SUPERUSER} (superuser); {', '.join(name for name, _ in STAFF)} (demo issuer staff)")
        self.stdout.write(f"  Password: {shown_password}")
        self.stdout.write(f"  API key:  {api_key}")
        self.stdout.write(f"  Issuer app (demo, DEBUG only): {demo_app_url()}")
        # Last four digits only, never a PAN (the README lists the demo's test card numbers).
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
            otp_policy_save(policy=policy, actor=ACTOR, reason="Demo: SMS may reach the French demo cardholders")
        if not issuer.webauthn_rp_id:
            # So the demo issuer app (or a browser on this machine) can register a device: WebAuthn
            # accepts "localhost" as RP id over plain HTTP, never an IP address.
            issuer.webauthn_rp_id = "localhost"
            issuer.save(update_fields=["webauthn_rp_id"])
        origin = _localhost(settings.PUBLIC_BASE_URL)
        if issuer.webauthn_rp_id == "localhost" and origin not in issuer.webauthn_origins:
            # Another PORT than the last run's: the demo app page is served from there now.
            issuer.webauthn_origins = sorted({*issuer.webauthn_origins, origin})
            issuer.save(update_fields=["webauthn_origins"])
        return issuer

    @staticmethod
    def _demo_policies(issuer: Issuer) -> None:
        """Limits a demo does not trip over (saved, and versioned, only when they differ)."""
        policy = OtpPolicy.objects.filter(issuer=issuer, product__isnull=True).first()
        if policy is not None and any(getattr(policy, name) < value for name, value in DEMO_OTP_LIMITS.items()):
            for name, value in DEMO_OTP_LIMITS.items():
                setattr(policy, name, max(value, getattr(policy, name)))
            otp_policy_save(policy=policy, actor=ACTOR, reason="Demo limits: a demo runs many authentications an hour")
        risk = risk_policy_for(issuer)
        changed = [name for name, value in DEMO_RISK_VELOCITY.items() if getattr(risk, name) < value]
        if changed:
            for name, value in DEMO_RISK_VELOCITY.items():
                setattr(risk, name, max(value, getattr(risk, name)))
            risk_policy_save(policy=risk, actor=ACTOR, reason="Demo limits: a demo runs many authentications an hour")

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
            if phone and not cardholder.phones.exists():
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

    def _demo_api_key(self, issuer: Issuer) -> str:
        """The demo key, the same on every run: kept when it exists, made when it does not. Only
        demo keys of earlier versions of this command (random ones) are revoked."""
        prefix, secret = demo_api_key_parts()
        plaintext = f"ik_{prefix}_{secret}"
        current = issuer.api_keys.filter(prefix=prefix).first()
        if current is None:
            issuer_services.api_key_create(issuer=issuer, name="demo", created_by=ACTOR, prefix=prefix, secret=secret)
        elif current.revoked_at is not None:
            # Someone revoked it on purpose: not revived; a random key serves this run instead.
            self.stderr.write("The demo API key was revoked (kept so); this run prints a new random key.")
            _, plaintext = issuer_services.api_key_create(issuer=issuer, name="demo", created_by=ACTOR)
            prefix = plaintext.split("_")[1]
        for old in issuer.api_keys.filter(name="demo", revoked_at__isnull=True).exclude(prefix=prefix):
            issuer_services.api_key_revoke(api_key=old, actor=ACTOR)
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
