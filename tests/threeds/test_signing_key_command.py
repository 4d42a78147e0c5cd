"""`manage.py acs_signing_key` (SPEC §5.7): install, list, generate-test."""

import io

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command

from apps.threeds.models import AcsSigningKey
from apps.threeds.signing_keys import signing_credentials, test_credentials_make

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command("acs_signing_key", *args, stdout=out)
    return out.getvalue()


def test_install_stores_the_key_sealed_and_the_chain(tmp_path):
    AcsSigningKey.objects.all().delete()
    key_pem, chain_pem, _ = test_credentials_make("visa")
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "chain.pem").write_bytes(chain_pem)
    out = _run("install", "--network", "visa", "--key", str(tmp_path / "key.pem"), "--chain", str(tmp_path / "chain.pem"))
    assert "installed for visa" in out and "BEGIN" not in out
    row = AcsSigningKey.objects.get(network="visa", active=True)
    assert b"PRIVATE KEY" not in bytes(row.key_blob) and key_pem not in bytes(row.key_blob)
    credentials = signing_credentials("visa")
    assert credentials.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()) == key_pem
    assert len(credentials.chain) == 2


def test_a_new_key_retires_the_old_one():
    _run("generate-test", "--network", "visa")
    first = AcsSigningKey.objects.get(network="visa", active=True)
    _run("generate-test", "--network", "visa")
    assert AcsSigningKey.objects.filter(network="visa").count() >= 2
    assert AcsSigningKey.objects.filter(network="visa", active=True).exclude(pk=first.pk).count() == 1
    first.refresh_from_db()
    assert not first.active


def test_list_shows_certificates_never_key_material(tmp_path):
    _run("generate-test", "--network", "mastercard", "--out-root", str(tmp_path / "root.pem"))
    root = x509.load_pem_x509_certificate((tmp_path / "root.pem").read_bytes())
    out = _run("list")
    row = AcsSigningKey.objects.get(network="mastercard", active=True)
    leaf = row.chain()[0]
    line = next(line for line in out.splitlines() if line.startswith("mastercard\tactive"))
    assert "CN=Test ACS mastercard" in line and f"issuer={root.subject.rfc4514_string()}" in line
    assert leaf.fingerprint(hashes.SHA256()).hex(":").upper() in line and "expires=" in line
    assert "PRIVATE" not in out and "BEGIN" not in out


@pytest.mark.parametrize("problem", ["wrong_key", "chain_order", "not_pem", "weak_curve"])
def test_install_refuses_what_cannot_sign(tmp_path, problem):
    key_pem, chain_pem, root_pem = test_credentials_make("visa")
    if problem == "wrong_key":
        key_pem = test_credentials_make("visa")[0]
    elif problem == "chain_order":
        chain_pem = root_pem + chain_pem[: chain_pem.index(root_pem)]
    elif problem == "not_pem":
        key_pem = b"not a key"
    else:
        key_pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "chain.pem").write_bytes(chain_pem)
    before = AcsSigningKey.objects.count()
    with pytest.raises(CommandError):
        _run("install", "--network", "visa", "--key", str(tmp_path / "key.pem"), "--chain", str(tmp_path / "chain.pem"))
    assert AcsSigningKey.objects.count() == before


def test_install_refuses_an_unreadable_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        _run("install", "--network", "visa", "--key", str(tmp_path / "missing.pem"), "--chain", str(tmp_path / "x.pem"))
