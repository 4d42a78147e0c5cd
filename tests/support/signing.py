"""Test ACS signing credentials for every card network, as a deployed ACS has them installed
(`acs_signing_key`): made once per test run by the product's generate-test path, stored again in
each test's database. The test root of each network is the SDK's trust anchor."""

from functools import cache

from cryptography import x509

from apps.core.pan import NETWORK_CHOICES
from apps.threeds.models import AcsSigningKey
from apps.threeds.signing_keys import test_credentials_make


@cache
def _test_pems() -> dict:
    return {network: test_credentials_make(network) for network, _ in NETWORK_CHOICES}


@cache
def _rows() -> tuple:
    # Sealed once (the seal is bound to the row's id, kept the same in every test's database).
    rows = []
    for network, (key_pem, chain_pem, _) in _test_pems().items():
        row = AcsSigningKey(network=network, chain_pem=chain_pem.decode())
        row.set_private_key_pem(key_pem.decode())
        rows.append(row)
    return tuple(rows)


def signing_keys_install() -> None:
    AcsSigningKey.objects.bulk_create(
        [AcsSigningKey(id=r.id, network=r.network, chain_pem=r.chain_pem, key_key_id=r.key_key_id, key_blob=r.key_blob)
         for r in _rows()]
    )


def trust_anchor(network: str = "visa") -> x509.Certificate:
    """The test root the installed chain of `network` leads to."""
    return x509.load_pem_x509_certificate(_test_pems()[network][2])
