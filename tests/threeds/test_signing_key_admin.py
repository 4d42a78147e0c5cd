"""The ACS signing keys in the admin (SPEC §3.3.3, §5.7): superusers read each network's
certificates, nobody sees key material, and a missing or expiring key is an alert."""

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from django.urls import reverse

from apps.accounts.roles import ISSUER_ADMIN
from apps.core.pan import NETWORK_CHOICES
from apps.threeds.models import AcsSigningKey
from apps.threeds.signing_keys import signing_key_alerts, signing_key_install, test_credentials_make
from tests.factories import client_for, make_staff, make_superuser
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:threeds_acssigningkey_changelist")
INDEX = reverse("admin:index")


def change_url(row) -> str:
    return reverse("admin:threeds_acssigningkey_change", args=[row.pk])


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def alerts_in(page: str) -> list[str]:
    return re.findall(r'<li class="(?:warning|error)">(.*?)</li>', page, re.S)


@pytest.fixture
def root(db):
    return client_for(make_superuser())


def install(network: str, *, days: int = 365) -> tuple[AcsSigningKey, bytes]:
    key_pem, chain_pem, _ = test_credentials_make(network, days=days)
    return signing_key_install(network=network, key_pem=key_pem, chain_pem=chain_pem), key_pem


def test_a_superuser_reads_each_networks_certificate_and_never_the_key(root):
    row, key_pem = install("visa")
    leaf = row.chain()[0]
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    blob = bytes(row.key_blob)

    page = html(root.get(CHANGELIST))
    assert "Test ACS visa" in page and "Test visa root" in page  # subject and issuer CNs
    assert fingerprint in page and f"{leaf.not_valid_after_utc.year}" in page
    assert "acs_signing_key install" in page  # where keys are installed: not here
    for network, _ in NETWORK_CHOICES:
        assert f"Test ACS {network}" in page
    detail = html(root.get(change_url(row)))
    assert fingerprint in detail and "Test visa root" in detail and 'name="_save"' not in detail
    assert len(re.findall(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", detail)) == 2  # leaf and root

    pages = [CHANGELIST, change_url(row), reverse("admin:threeds_acssigningkey_history", args=[row.pk]), INDEX]
    for url in pages:
        response = root.get(url)
        body = response.content
        assert response.status_code == 200, url
        assert blob not in body and base64.b64encode(blob) not in body and blob.hex().encode() not in body, url
        assert b"PRIVATE KEY" not in body and key_pem not in body, url


def test_nobody_adds_changes_or_deletes_a_key_in_the_admin(root):
    row = AcsSigningKey.objects.get(network="visa", active=True)
    assert root.get(reverse("admin:threeds_acssigningkey_add")).status_code == 403
    assert root.post(change_url(row), {"network": "jcb", "active": ""}).status_code == 403
    assert root.post(reverse("admin:threeds_acssigningkey_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.network == "visa" and row.active


def test_issuer_staff_have_no_access(issuer):
    client = client_for(make_staff(issuer, ISSUER_ADMIN))
    AcsSigningKey.objects.filter(network="mastercard").delete()  # an alert a superuser would see
    row = AcsSigningKey.objects.get(network="visa", active=True)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_url(row)).status_code == 403
    index = html(client.get(INDEX))
    assert CHANGELIST not in index and "signing" not in index.lower() and not alerts_in(index)


def test_no_alert_while_every_network_has_a_key_far_from_expiry(root):
    assert signing_key_alerts() == []
    assert not alerts_in(html(root.get(INDEX)))


def test_a_certificate_expiring_in_10_days_is_an_alert(root):
    install("jcb", days=10)
    for page in (INDEX, CHANGELIST):
        (alert,) = alerts_in(html(root.get(page)))
        assert "JCB signing certificate" in alert and "expires in 10 days" in alert
        assert "manage.py acs_signing_key install --network jcb" in alert
    assert '<li class="warning">' in html(root.get(INDEX))
    assert "<td class=\"field-days_left\">10</td>" in html(root.get(CHANGELIST))


def test_an_expired_certificate_is_an_error():
    later = datetime.now(timezone.utc) + timedelta(days=400)
    alerts = signing_key_alerts(now=later)
    assert {a.network for a in alerts} == {network for network, _ in NETWORK_CHOICES}
    assert all(a.level == "error" and "expired on" in a.message for a in alerts)


def test_a_network_without_a_key_is_an_alert_until_one_is_installed(root):
    AcsSigningKey.objects.filter(network="mastercard").delete()
    (alert,) = alerts_in(html(root.get(INDEX)))
    assert alert.startswith("No signing key for Mastercard: app challenges on Mastercard cards end U (22).")
    assert "manage.py acs_signing_key install --network mastercard" in alert
    assert '<li class="error">' in html(root.get(CHANGELIST))

    install("mastercard")
    assert not alerts_in(html(root.get(INDEX)))


def test_a_retired_key_does_not_count(root):
    AcsSigningKey.objects.filter(network="amex").update(active=False)
    (alert,) = alerts_in(html(root.get(INDEX)))
    assert "No signing key for American Express" in alert
