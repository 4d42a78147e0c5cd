"""X-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<raw body>"); receivers refuse skew over 300 s."""

import hashlib
import hmac

import pytest

from apps.webhooks.services import webhook_sign, webhook_signature_verify

SECRET = "whsec_test_secret"
BODY = '{"otp":"123456","merchantName":"東京マート"}'.encode()
T = 1_700_000_000


def test_the_signature_is_an_hmac_over_timestamp_dot_raw_body():
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert webhook_sign(secret=SECRET, body=BODY, timestamp=T) == f"t={T},v1={expected}"


def test_it_accepts_a_good_signature():
    header = webhook_sign(secret=SECRET, body=BODY, timestamp=T)
    assert webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T + 10)


def test_it_rejects_a_tampered_body():
    header = webhook_sign(secret=SECRET, body=BODY, timestamp=T)
    assert not webhook_signature_verify(secret=SECRET, header=header, body=BODY.replace(b"123456", b"654321"), now=T)


def test_it_rejects_another_secret():
    header = webhook_sign(secret="whsec_someone_else", body=BODY, timestamp=T)
    assert not webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T)


def test_it_rejects_a_changed_timestamp():
    header = webhook_sign(secret=SECRET, body=BODY, timestamp=T).replace(f"t={T}", f"t={T + 1}")
    assert not webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T)


@pytest.mark.parametrize("skew, accepted", [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86400, False)])
def test_it_rejects_clock_skew_over_300_seconds(skew, accepted):
    header = webhook_sign(secret=SECRET, body=BODY, timestamp=T)
    assert webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T + skew) is accepted


def test_it_uses_the_current_time_by_default():
    import time

    assert webhook_signature_verify(
        secret=SECRET, header=webhook_sign(secret=SECRET, body=BODY, timestamp=int(time.time())), body=BODY
    )
    assert not webhook_signature_verify(
        secret=SECRET, header=webhook_sign(secret=SECRET, body=BODY, timestamp=int(time.time()) - 301), body=BODY
    )


def test_it_accepts_any_of_several_v1_values_during_a_secret_rotation():
    good = webhook_sign(secret=SECRET, body=BODY, timestamp=T).partition(",v1=")[2]
    header = f"t={T},v1={'0' * 64},v1={good}"
    assert webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"v1={'a' * 64}", f"t={T}", f"t=abc,v1={'a' * 64}", f"t=-{T},v1={'a' * 64}", "t=١٢٣,v1=x", "t=1,v1=é"],
)
def test_it_rejects_a_malformed_header(header):
    assert not webhook_signature_verify(secret=SECRET, header=header, body=BODY, now=T)
