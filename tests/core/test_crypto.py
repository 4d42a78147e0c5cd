import pytest
from cryptography.exceptions import InvalidTag

from apps.core import crypto


def test_seal_and_unseal_round_trip_with_the_current_key():
    sealed = crypto.seal("4111111111111111", context="pan:A")
    assert sealed.key_id == crypto.current_key_id() == "t2"
    assert b"4111111111111111" not in sealed.blob
    assert crypto.unseal(sealed, context="pan:A") == "4111111111111111"


def test_two_seals_of_the_same_value_differ():
    assert crypto.seal("x", context="c").blob != crypto.seal("x", context="c").blob


def test_a_ciphertext_moved_to_another_context_does_not_open():
    sealed = crypto.seal("4111111111111111", context="pan:A")
    with pytest.raises(InvalidTag):
        crypto.unseal(sealed, context="pan:B")


def test_data_sealed_under_an_older_key_still_opens(settings):
    settings.DATA_ENCRYPTION_KEYS = "t1:dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS0zMmJ5dGU="
    old = crypto.seal("secret", context="c")
    assert old.key_id == "t1"
    settings.DATA_ENCRYPTION_KEYS = "t2:dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by0zMmJ5dGU=,t1:dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS0zMmJ5dGU="
    assert crypto.unseal(old, context="c") == "secret"
    assert crypto.seal("secret", context="c").key_id == "t2"


def test_fingerprints_are_keyed(settings):
    a = crypto.pan_fingerprint("4111111111111111")
    settings.PAN_FINGERPRINT_KEY = "another"
    assert crypto.pan_fingerprint("4111111111111111") != a


def test_secret_hashes_compare():
    h = crypto.hash_secret("tok", purpose="p")
    assert crypto.secret_matches("tok", h, purpose="p")
    assert not crypto.secret_matches("tok", h, purpose="other")
    assert not crypto.secret_matches("tok2", h, purpose="p")
