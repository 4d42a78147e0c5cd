"""The app channel's AReq (SPEC §3.3.1–3): sdkEphemPubKey checked (Erro 203), and on a challenge
the ACS's ephemeral key, the sealed session key and acsSignedContent signed with the network's
installed key; no credentials → U / 22; frictionless AReqs do no crypto."""

import pytest

from apps.threeds import app_crypto
from apps.threeds.models import AcsSigningKey, Challenge, Transaction
from tests.support.app_session import AppSession
from tests.support.emv_sdk import SdkError
from tests.support.signing import trust_anchor
from tests.threeds.conftest import PAN

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("enc", ["A128CBC-HS256", "A128GCM"])
def test_acs_signed_content_verifies_against_the_installed_chain(client, enrolled, enc):
    session = AppSession(client, enc=enc)
    ares = session.areq(pan=PAN, threeDSRequestorChallengeInd="04")
    assert ares["transStatus"] == "C" and ares["acsURL"].endswith("/3ds/v2/creq")
    payload = session.payload
    assert payload["sdkEphemPubKey"] == session.sdk.sdk_ephem_pub_key and payload["acsRefNumber"] == ares["acsReferenceNumber"]
    assert set(payload["acsEphemPubKey"]) == {"kty", "crv", "x", "y"}
    # The ACS sealed the same session key the SDK derived, bound to this transaction.
    challenge = Challenge.objects.get(transaction_id=ares["acsTransID"])
    sealed = app_crypto.Sealed(challenge.app_session_key_id, bytes(challenge.app_session_key_blob))
    assert app_crypto.session_key_unseal(sealed, acs_trans_id=ares["acsTransID"]) == session.sdk.session_key
    assert session.sdk.session_key not in bytes(challenge.app_session_key_blob)


def test_acs_signed_content_does_not_verify_against_another_root(client, enrolled):
    # The helper verifies against its network's test root: the visa chain does not lead to
    # mastercard's.
    session = AppSession(client, network="mastercard")
    with pytest.raises(SdkError):
        session.areq(pan=PAN, threeDSRequestorChallengeInd="04")
    assert trust_anchor("mastercard") != trust_anchor("visa")


@pytest.mark.parametrize("key", [
    {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
    {"kty": "EC", "crv": "P-256", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    "not a key",
])
def test_an_invalid_sdk_ephem_pub_key_is_erro_203_and_writes_nothing(client, enrolled, key):
    session = AppSession(client)
    session.sdk.sdk_ephem_pub_key = key
    erro = session.areq(pan=PAN, threeDSRequestorChallengeInd="04")
    assert erro["messageType"] == "Erro" and erro["errorCode"] == "203" and "sdkEphemPubKey" in erro["errorDetail"]
    assert not Transaction.objects.exists() and not Challenge.objects.exists()


def test_no_credentials_for_the_network_is_u_22(client, enrolled):
    AcsSigningKey.objects.filter(network="visa").delete()
    ares = AppSession(client).areq(pan=PAN, threeDSRequestorChallengeInd="04")
    assert (ares["transStatus"], ares["transStatusReason"]) == ("U", "22")
    assert "acsSignedContent" not in ares and "acsURL" not in ares
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert (tx.trans_status, tx.trans_status_reason) == ("U", "22") and tx.finished_at is not None
    assert not Challenge.objects.exists()


def test_an_expired_certificate_no_longer_signs_the_areq_is_u_22(client, enrolled, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from apps.threeds import signing_keys

    later = datetime.now(timezone.utc) + timedelta(days=400)  # the test chain is made for 365 days
    real = signing_keys.signing_credentials
    monkeypatch.setattr("apps.threeds.areq.signing_credentials", lambda network: real(network, now=later))
    ares = AppSession(client).areq(pan=PAN, threeDSRequestorChallengeInd="04")
    assert (ares["transStatus"], ares["transStatusReason"]) == ("U", "22") and "acsSignedContent" not in ares
    assert not Challenge.objects.exists()
    assert real("visa") is not None  # today the same chain still signs


def test_a_retired_key_is_not_used(client, enrolled):
    AcsSigningKey.objects.filter(network="visa").update(active=False)
    assert AppSession(client).areq(pan=PAN, threeDSRequestorChallengeInd="04")["transStatus"] == "U"


def test_a_frictionless_app_areq_makes_no_key_and_signs_nothing(client, enrolled, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("crypto on the frictionless path")

    for name in ("acs_ephem_key_new", "session_key_derive", "acs_signed_content", "session_key_seal"):
        monkeypatch.setattr(app_crypto, name, forbidden)
    ares = AppSession(client).areq(pan=PAN, threeDSRequestorChallengeInd="01")
    assert ares["transStatus"] == "Y" and "acsSignedContent" not in ares
