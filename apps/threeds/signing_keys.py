"""The ACS's signing credentials per card network (SPEC §3.3.3, §5.7): installed by the operator,
checked before they are stored, read by the app channel's AReq to sign acsSignedContent.

Nothing here logs or returns key material; `describe` gives what an operator may see (subjects,
issuers, expiry, SHA-256 fingerprints of the certificates)."""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.db import transaction

from apps.core.pan import NETWORK_CHOICES
from apps.threeds.models import AcsSigningKey

NETWORKS = tuple(code for code, _ in NETWORK_CHOICES)

logger = logging.getLogger(__name__)


class SigningKeyInvalid(ValueError):
    """What the operator gave cannot sign acsSignedContent (the message says why, never the key)."""


@dataclass(frozen=True)
class Credentials:
    private_key: object
    chain: list


def signing_key_install(*, network: str, key_pem: bytes, chain_pem: bytes) -> AcsSigningKey:
    """Check and store a network's key and chain; the new key becomes the active one."""
    if network not in NETWORKS:
        raise SigningKeyInvalid(f"unknown network {network!r} (one of {', '.join(NETWORKS)})")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise SigningKeyInvalid("the key is not an unencrypted PEM private key") from None
    if not (isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048) and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        raise SigningKeyInvalid("the key must be EC P-256 (ES256) or RSA of 2048 bits or more (PS256)")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise SigningKeyInvalid("the chain is not PEM certificates") from None
    if chain[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise SigningKeyInvalid("the chain's first certificate is not the key's (leaf first)")
    now = datetime.now(timezone.utc)
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SigningKeyInvalid(f"certificate {cert.subject.rfc4514_string()!r} is outside its validity")
    for cert, issuer in zip(chain, chain[1:]):
        try:
            cert.verify_directly_issued_by(issuer)
        except Exception:
            raise SigningKeyInvalid(f"{cert.subject.rfc4514_string()!r} is not issued by the next certificate") from None
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    row = AcsSigningKey(network=network, chain_pem="".join(
        c.public_bytes(serialization.Encoding.PEM).decode() for c in chain))
    row.set_private_key_pem(pem.decode())
    with transaction.atomic():
        AcsSigningKey.objects.filter(network=network, active=True).update(active=False)
        row.save()
    return row


def signing_credentials(network: str, *, now: datetime | None = None) -> Credentials | None:
    """The active key and chain for `network`, or None: one query, only on an app challenge.
    None too when a certificate of the chain has ended (or not begun): every SDK rejects such an
    acsSignedContent, so the AReq answers U / 22 at once rather than a challenge no one can finish
    (the admin's alert said so 30 days before)."""
    row = AcsSigningKey.objects.filter(network=network, active=True).first() if network else None
    if row is None:
        return None
    chain = row.chain()
    now = now or datetime.now(timezone.utc)
    if not all(cert.not_valid_before_utc <= now <= cert.not_valid_after_utc for cert in chain):
        logger.error("the ACS signing certificate of network %s is outside its validity: app challenges answered U/22", network)
        return None
    return Credentials(private_key=row.private_key(), chain=chain)


def describe(row: AcsSigningKey) -> dict:
    """What `acs_signing_key list` shows: the certificates, never the key."""
    chain = row.chain()
    leaf = chain[0]
    return {
        "network": row.network,
        "active": row.active,
        "created_at": row.created_at.isoformat(),
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "sha256": leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        "chain_length": len(chain),
    }


def test_credentials_make(network: str, *, days: int = 365) -> tuple[bytes, bytes, bytes]:
    """A self-made test root and an ACS leaf under it, EC P-256, for development and the demo:
    (key PEM, chain PEM leaf first with the root last, root PEM). Never for production."""
    now = datetime.now(timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test 3DS"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject_key, subject, issuer_key, issuer, *, ca):
        return (
            x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .sign(issuer_key, hashes.SHA256())
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = cert(root_key, f"Test {network} root", root_key, f"Test {network} root", ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert(leaf_key, f"Test ACS {network}", root_key, f"Test {network} root", ca=False)
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    return key_pem, leaf.public_bytes(serialization.Encoding.PEM) + root_pem, root_pem


test_credentials_make.__test__ = False  # not a pytest test, whatever its name


# Certificates closer than this to their end show as an alert in the admin (issue: 30 days).
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class Alert:
    level: str  # "error": app challenges fail now; "warning": they will
    network: str
    message: str


def common_name(name: x509.Name) -> str:
    """A certificate name's CN, or the whole name when it has none."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def days_left(cert: x509.Certificate, *, now: datetime | None = None) -> int:
    """Whole days until `cert` ends, rounded up (a certificate made for 10 days has 10 left at
    first, not 9); 0 or less once it has ended."""
    return math.ceil((cert.not_valid_after_utc - (now or datetime.now(timezone.utc))) / timedelta(days=1))


def signing_key_alerts(*, now: datetime | None = None) -> list[Alert]:
    """What an operator must act on, in words they understand: a network with no active key (its
    app challenges end U / 22), and an active chain with a certificate expired or within
    EXPIRY_WARNING_DAYS of expiry (an expired one is no longer used: app challenges end U / 22)."""
    now = now or datetime.now(timezone.utc)
    labels = dict(NETWORK_CHOICES)
    active = {row.network: row for row in AcsSigningKey.objects.filter(active=True)}
    alerts = []
    for network in NETWORKS:
        label = labels[network]
        install = f"manage.py acs_signing_key install --network {network} --key … --chain …"
        row = active.get(network)
        if row is None:
            alerts.append(Alert("error", network, (
                f"No signing key for {label}: app challenges on {label} cards end U (22). Install one with {install}")))
            continue
        # The chain fails as a whole when any of its certificates ends: warn on the first to end.
        cert = min(row.chain(), key=lambda c: c.not_valid_after_utc)
        ends = cert.not_valid_after_utc
        what = f"The {label} signing certificate {common_name(cert.subject)!r}"
        if ends <= now:
            alerts.append(Alert("error", network, (
                f"{what} expired on {ends:%Y-%m-%d}: app challenges on {label} cards end U (22). "
                f"Install a new key and chain with {install}")))
        elif ends - now <= timedelta(days=EXPIRY_WARNING_DAYS):
            days = days_left(cert, now=now)
            alerts.append(Alert("warning", network, (
                f"{what} expires in {days} day{'s' if days != 1 else ''} ({ends:%Y-%m-%d}): then app challenges "
                f"on {label} cards end U (22). Install its successor with {install}")))
    return alerts
