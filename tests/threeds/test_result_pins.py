"""Rules of the result that a deliberate bug once slipped past (issue 11 item 8): what the
authentication value covers, the ECI table of every network, and the 03 / 07 challenge indicators.
SPEC §3.1 (risk), §3.6 (ECI, authenticationValue)."""

import base64
import hashlib
import hmac
import uuid
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from apps.core.pan import AMEX, CARTES_BANCAIRES, DISCOVER, JCB, MASTERCARD, VISA
from apps.threeds.models import RiskPolicy, Transaction
from apps.threeds.results import CB_AVALGO, authentication_value, authentication_value_matches, eci_for
from apps.threeds.risk import decide
from tests.factories import make_card
from tests.threeds.builders import areq

# ---------------------------------------------------------------- authenticationValue

FIELDS = {
    "pan": "4111111111111111",
    "ds_trans_id": "f879ea1c-aa2c-4441-806d-e30406466d79",
    "acs_trans_id": "0b3c1c3e-4a57-4d6a-9a43-2d2f8d1f6c10",
    "purchase_amount": 1500,
    "purchase_currency": "392",
    "trans_status": "Y",
}
CHANGED = {
    "pan": "4012888888881881",
    "ds_trans_id": "f879ea1c-aa2c-4441-806d-e30406466d7a",
    "acs_trans_id": "0b3c1c3e-4a57-4d6a-9a43-2d2f8d1f6c11",
    "purchase_amount": 1501,
    "purchase_currency": "978",
    "trans_status": "A",
}


def independent_av(*, master_b64: str, issuer_id: str, pan, ds_trans_id, acs_trans_id, purchase_amount, purchase_currency, trans_status) -> str:
    """SPEC §3.6 and apps/threeds/results.py's definition, computed here from scratch: 20 bytes =
    format byte 0x01 + the first 19 bytes of HMAC-SHA256 keyed by the issuer's key (HKDF-SHA256
    of the master key, info "av:<issuer_id>") over PAN|dsTransID|acsTransID|amount|currency|status."""
    issuer_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"av:{issuer_id}".encode()).derive(
        base64.b64decode(master_b64)
    )
    message = "|".join([pan, str(ds_trans_id).lower(), str(acs_trans_id).lower(), str(purchase_amount), purchase_currency, trans_status])
    return base64.b64encode(b"\x01" + hmac.new(issuer_key, message.encode(), hashlib.sha256).digest()[:19]).decode()


def first_master_key() -> tuple[str, str]:
    kid, _, b64 = settings.AUTHENTICATION_VALUE_KEYS.split(",")[0].strip().partition(":")
    return kid, b64


def test_the_authentication_value_is_the_specified_mac_known_answer():
    kid, master = first_master_key()
    value, key_id = authentication_value(issuer_id="ISS0000001", **FIELDS)
    assert key_id == kid
    assert value == independent_av(master_b64=master, issuer_id="ISS0000001", **FIELDS)
    assert len(value) == 28 and len(base64.b64decode(value)) == 20


def test_known_answer_with_a_fixed_key():
    # A key and an answer fixed here, so the algorithm cannot drift with the settings.
    raw = "kat1:" + base64.b64encode(bytes(range(32))).decode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(settings, "AUTHENTICATION_VALUE_KEYS", raw)
        value, _ = authentication_value(issuer_id="ISS0000001", **FIELDS)
    assert value == independent_av(master_b64=base64.b64encode(bytes(range(32))).decode(), issuer_id="ISS0000001", **FIELDS)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_covered_field_changes_the_value(name):
    base, _ = authentication_value(issuer_id="ISS0000001", **FIELDS)
    changed, _ = authentication_value(issuer_id="ISS0000001", **{**FIELDS, name: CHANGED[name]})
    assert changed != base
    assert not authentication_value_matches(base, issuer_id="ISS0000001", key_id=first_master_key()[0], **{**FIELDS, name: CHANGED[name]})


def test_two_issuers_with_the_same_inputs_get_different_values():
    a, _ = authentication_value(issuer_id="ISS0000001", **FIELDS)
    b, _ = authentication_value(issuer_id="ISS0000002", **FIELDS)
    assert a != b


def test_the_key_id_selects_another_key(settings):
    settings.AUTHENTICATION_VALUE_KEYS = "k1:" + base64.b64encode(b"1" * 32).decode() + ",k2:" + base64.b64encode(b"2" * 32).decode()
    v1, kid1 = authentication_value(issuer_id="ISS0000001", **FIELDS)
    v2, kid2 = authentication_value(issuer_id="ISS0000001", key_id="k2", **FIELDS)
    assert (kid1, kid2) == ("k1", "k2") and v1 != v2


@pytest.mark.django_db
def test_a_frictionless_y_carries_the_mac_of_its_own_issuer_and_fields(client, issuer, other_issuer, cardholder):
    # End to end: the AReq flow passes the transaction's own issuer, ids, amount and status.
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    pan = "4111111111111111"
    make_card(cardholder=cardholder, pan=pan)
    ares = client.post("/3ds/v2/areq", areq(pan=pan), content_type="application/json").json()
    assert ares["transStatus"] == "Y"
    tx = Transaction.objects.select_related("issuer").get(acs_trans_id=ares["acsTransID"])
    kid, master = first_master_key()
    fields = {
        "pan": pan, "ds_trans_id": tx.ds_trans_id, "acs_trans_id": tx.acs_trans_id, "purchase_amount": 1500,
        "purchase_currency": "392", "trans_status": "Y",
    }
    assert tx.authentication_value_key_id == kid
    assert tx.authentication_value == ares["authenticationValue"] == independent_av(master_b64=master, issuer_id=tx.issuer.issuer_id, **fields)
    assert tx.authentication_value != independent_av(master_b64=master, issuer_id=other_issuer.issuer_id, **fields)


def test_cartes_bancaires_avalgo_names_an_hmac():
    # SPEC §3.7's example and Stripe's enum: "0" is HMAC, which this value is ("A" would claim
    # another algorithm and make a verifier reject it).
    assert CB_AVALGO == "0"


# ---------------------------------------------------------------- ECI (SPEC §3.6)

ECI_TABLE = [
    *[(network, status, eci) for network in (VISA, AMEX, JCB, DISCOVER)
      for status, eci in (("Y", "05"), ("A", "06"), ("N", "07"), ("U", "07"), ("R", "07"))],
    *[(MASTERCARD, status, eci) for status, eci in (("Y", "02"), ("A", "01"), ("N", "00"), ("U", "00"), ("R", "00"))],
]


@pytest.mark.parametrize("network,status,eci", ECI_TABLE)
def test_eci_for_every_network_and_status(network, status, eci):
    assert eci_for(network=network, co_badge="", trans_status=status) == eci


@pytest.mark.parametrize("network,status,eci", ECI_TABLE)
def test_cartes_bancaires_uses_the_co_badges_row(network, status, eci):
    assert eci_for(network=CARTES_BANCAIRES, co_badge=network, trans_status=status) == eci


# ---------------------------------------------------------------- challenge indicators 03 and 07 (SPEC §3.1)

# A card with no velocity and a known merchant (the annotations the AReq's one-query path gives).
QUIET_CARD = SimpleNamespace(risk_recent_count=0, risk_merchant_known_id=1)


def message(indicator: str, amount: str = "1500") -> dict:
    return {"threeDSRequestorChallengeInd": indicator, "purchaseAmount": amount, "purchaseCurrency": "392",
            "purchaseExponent": "0", "messageCategory": "01", "acquirerMerchantID": "m-1"}


def rules_of(decision) -> set:
    return {r["rule"] for r in decision.rules}


def test_indicator_03_challenges_under_the_default_policy():
    policy = RiskPolicy()
    quiet = decide(policy=policy, card=QUIET_CARD, areq=message("01"))
    assert not quiet.challenge  # the same payment without 03 goes frictionless
    preferred = decide(policy=policy, card=QUIET_CARD, areq=message("03"))
    assert preferred.challenge and not preferred.mandated
    assert "requestor_prefers_challenge" in rules_of(preferred)
    assert preferred.score == quiet.score + policy.requestor_prefers_challenge_weight


def test_indicator_03_is_not_a_mandate_but_04_is():
    policy = RiskPolicy()
    assert not decide(policy=policy, card=QUIET_CARD, areq=message("03")).mandated
    assert decide(policy=policy, card=QUIET_CARD, areq=message("04")).mandated


def risky_policy(**limits) -> RiskPolicy:
    # A base score at the threshold: everything challenges unless an exemption takes it off.
    return RiskPolicy(base_score=60, challenge_threshold=50, **limits)


def test_indicator_07_goes_frictionless_within_the_sca_performed_limit():
    decision = decide(policy=risky_policy(sca_performed_max_amounts={"392": "5000"}), card=QUIET_CARD, areq=message("07"))
    assert not decision.challenge
    assert "sca_already_performed" in rules_of(decision)
    # 07 is not a TRA exemption: nothing says "low risk" (CB-EXEMPTION stays AAAA).
    assert decision.exemption == ""


def test_indicator_07_above_its_limit_is_challenged():
    decision = decide(policy=risky_policy(sca_performed_max_amounts={"392": "1000"}), card=QUIET_CARD, areq=message("07", "1500"))
    assert decision.challenge and "sca_already_performed" not in rules_of(decision)


def test_indicator_07_uses_its_own_limit_not_the_tra_limit():
    only_tra = risky_policy(tra_max_amounts={"392": "5000"})
    decision = decide(policy=only_tra, card=QUIET_CARD, areq=message("07"))
    assert decision.challenge and "sca_already_performed" not in rules_of(decision)
    # ... while 05 under that same limit is the TRA exemption.
    tra = decide(policy=only_tra, card=QUIET_CARD, areq=message("05"))
    assert not tra.challenge and tra.exemption == "low_risk"


def test_indicator_07_without_a_limit_for_the_currency_is_not_exempt():
    decision = decide(policy=risky_policy(sca_performed_max_amounts={"978": "5000"}), card=QUIET_CARD, areq=message("07"))
    assert decision.challenge and "sca_already_performed" not in rules_of(decision)
