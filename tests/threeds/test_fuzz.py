"""Property-based robustness tests (hypothesis) of the DS- and cardholder-facing 3DS endpoints:
malformed and hostile AReq, app CReq and browser challenge input, through Django's test client.

Whatever arrives (SPEC §3.1, §3.3, §7.7):
- `POST /3ds/v2/areq` and `POST /3ds/v2/creq`: never a 500; always HTTP 200 with a JSON object;
  either the protocol answer (ARes / CRes, the ids echoed, a transStatus of the table) or an Erro
  with errorComponent "A" and an errorCode of the table; never the PAN or the OTP.
- `POST /3ds/v2/challenge`: never a 500, never a stack trace, never the OTP or the PAN in the page.
- A valid AReq for an enrolled card, whatever its (valid) PAN, is never an Erro.

Every example runs inside a savepoint that is rolled back after it: all examples start from the
same database state (a challenge in progress stays in progress, the page token stays valid,
nothing accumulates), and a database error in one example cannot poison the next.

More examples: FUZZ_SCALE=10 multiplies every max_examples.
"""

import base64
import contextlib
import json
import logging
import os
import re
import traceback
import uuid
from datetime import datetime
from urllib.parse import urlencode

import pytest
from django.db import transaction
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from apps.cards.models import Card, Phone
from apps.core.pan import luhn_valid
from apps.threeds.emv import ERROR_DESCRIPTIONS
from apps.threeds.messages import AREQ_ELEMENTS, uuid36
from apps.threeds.models import Challenge
from tests.factories import CardProductFactory, luhn_complete, make_card
from tests.support.app_session import AppSession
from tests.threeds.builders import areq
from tests.threeds.conftest import PAN
from tests.threeds.merchant_site import creq_encode

pytestmark = pytest.mark.django_db

AREQ_URL, CREQ_URL, CHALLENGE_URL = "/3ds/v2/areq", "/3ds/v2/creq", "/3ds/v2/challenge"
ERROR_CODES = {"101", "102", "201", "203", "301", "302", "303", "402", "403", "404"}
assert ERROR_CODES == set(ERROR_DESCRIPTIONS)
TRANS_STATUSES = {"Y", "N", "A", "C", "U"}
VERSIONS = ("2.1.0", "2.2.0", "2.3.1")
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def fuzz(max_examples: int):
    return settings(
        max_examples=max(1, int(max_examples * SCALE)),
        deadline=None,
        # Fixtures (client, enrolled card, started challenge) are set up once per test; each
        # example undoes its own writes (rolled_back), so sharing them is what we want.
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )


@contextlib.contextmanager
def rolled_back():
    """Run one example in a savepoint and undo it (also after a database error)."""
    sid = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(sid)


def post_raw(client, url: str, body: bytes, content_type: str = "application/json"):
    """POST as a server would see it: an exception in the view is a 500 response (with the
    exception kept on response.exc_info for the failure message), not an exception here."""
    client.raise_request_exception = False
    request_log = logging.getLogger("django.request")
    was = request_log.disabled
    request_log.disabled = True  # a RecursionError's 1000-frame traceback per example is too slow to log
    try:
        with rolled_back():
            return client.generic("POST", url, data=body, content_type=content_type)
    finally:
        request_log.disabled = was


def crash(response) -> str:
    """What made a 500: the exception and where it was raised."""
    exc_info = getattr(response, "exc_info", None)
    if not exc_info:
        return response.content[:300].decode(errors="replace")
    frames = traceback.extract_tb(exc_info[2])
    ours = [f for f in frames if "/apps/" in f.filename]
    chosen = list(dict.fromkeys([*ours[:3], frames[-1]]))  # the way into our code, and where it broke
    where = " -> ".join(f"{f.filename.rsplit('/apps/', 1)[-1]}:{f.lineno} {f.name}" for f in chosen)
    return f"{exc_info[0].__name__}: {str(exc_info[1])[:200]} at {where}"


def post_json(client, url: str, document):
    body = json.dumps(document).encode()
    return post_raw(client, url, body)


# ---------------------------------------------------------------- strategies

HOSTILE_LITERALS = [
    "", " ", "\x00", "\x00\x00\x00\x00", "\t\n\r", "\u202e", "\ufeff", "\ud800", "\udfff", "\U0001f4b3", "null", "true", "0",
    "-1", "1e400", "NaN", "<script>alert(1)</script>", "</script><script>", "' OR '1'='1' --", "%s%s%n", "{{ 7*7 }}",
    "{% debug %}", "${jndi:ldap://x}", "../../etc/passwd", "０１２３", "²³⁴⁵⁶⁷", "١٢٣٤٥٦", "১২৩৪৫৬", "9" * 49, "A" * 2049,
    "https://", "javascript:alert(1)", "http://[::1", "2.2.0\x00", "AReq ", "areq", "02 ", " 02", "1.0.0", "2.2", "2.3.0",
]
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
ODD_CHARS = st.sampled_from("\x00\x07\x7f\x85\u2028\u200b\ufeff\u202e")


def _texts(surrogates: bool):
    chars = st.characters() if surrogates else st.characters(codec="utf-8")  # the latter has no lone surrogates
    alphabet = st.one_of(chars, ODD_CHARS, *([SURROGATE] if surrogates else []))
    return st.one_of(
        st.text(chars, max_size=60),
        st.text(alphabet=alphabet, max_size=12),
        st.sampled_from([x for x in HOSTILE_LITERALS if surrogates or not any(0xD800 <= ord(c) <= 0xDFFF for c in x)]),
        st.from_regex(r"\A[0-9]{0,60}\Z"),
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
    )


# JSON strings may carry lone surrogates ("\ud800"); form fields cannot (they are decoded bytes).
hostile_text = _texts(surrogates=True)
huge_text = st.tuples(st.integers(1_000, 80_000), st.sampled_from(["A", "9", "é", "\u00a0", "💳", "\x00"])).map(lambda t: t[1] * t[0])
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True), hostile_text,
)
AREQ_NAMES = sorted({e.name for e in AREQ_ELEMENTS} | {"messageType", "messageVersion", "messageExtension", "sdkEncData"})
json_keys = st.one_of(st.sampled_from(AREQ_NAMES), hostile_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(json_keys, children, max_size=4)),
    max_leaves=12,
)


class Deep:
    """A deeply nested JSON value, built only when sent (hypothesis cannot print one)."""

    def __init__(self, depth: int, kind: str):
        self.depth, self.kind = depth, kind

    def __repr__(self) -> str:
        return f"Deep({self.depth}, {self.kind!r})"

    def build(self):
        value: object = "x"
        for _ in range(self.depth):
            value = [value] if self.kind == "list" else {"a": value}
        return value


def real(value):
    return value.build() if isinstance(value, Deep) else value


any_value = st.one_of(json_values, hostile_text, huge_text, st.builds(Deep, st.integers(1, 900), st.sampled_from(["list", "dict"])))

CHALLENGE_INDICATORS = {"2.1.0": ["01", "02", "03", "04"], "2.2.0": ["01", "02", "03", "05", "06", "07", "08", "09"]}
CHALLENGE_INDICATORS["2.3.1"] = CHALLENGE_INDICATORS["2.2.0"]  # 2.3.1 reads 2.2.0's code lists (emv.VERSION_RULES)


@st.composite
def valid_areqs(draw, pan: str = PAN, channels=("01", "02", "03")):
    """Valid AReqs across versions, channels and categories, with valid random element values."""
    version = draw(st.sampled_from(VERSIONS))
    channel = draw(st.sampled_from(channels))
    category = draw(st.sampled_from(["01", "02"]))
    message = areq(pan=pan, channel=channel, category=category, version=version)
    printable = st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")), min_size=1, max_size=40)
    message["merchantName"] = draw(printable.filter(lambda s: s.isprintable() and len(s) <= 40))
    message["threeDSRequestorChallengeInd"] = draw(st.sampled_from(CHALLENGE_INDICATORS[version]))
    message["acquirerMerchantID"] = draw(st.from_regex(r"\A[A-Za-z0-9 _-]{1,35}\Z"))
    if category == "01":
        message["purchaseAmount"] = draw(st.from_regex(r"\A[0-9]{1,18}\Z"))
        message["purchaseCurrency"] = draw(st.sampled_from(["392", "978", "840", "826", "250"]) | st.from_regex(r"\A[0-9]{3}\Z"))
        message["purchaseExponent"] = draw(st.sampled_from(["0", "2", "3"]) | st.from_regex(r"\A[0-9]\Z"))
        moment = draw(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)))
        message["purchaseDate"] = moment.strftime("%Y%m%d%H%M%S")
    if draw(st.booleans()):
        message.pop("cardExpiryDate")
    return message


@st.composite
def enrolled_pans(draw) -> str:
    """Luhn-valid PANs of 13–19 digits in the ranges of the known networks."""
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "2720", "34", "37", "3528", "3589", "6011", "65"]))
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=max(0, length - len(prefix) - 1), max_size=max(0, length - len(prefix) - 1)))
    pan = luhn_complete(prefix + body)
    assert luhn_valid(pan) and len(pan) == length
    return pan


# ---------------------------------------------------------------- answer checks


def parsed(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def answer_json(response) -> dict:
    assert response.status_code == 200, f"HTTP {response.status_code}: {crash(response)}"
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert isinstance(body, dict)
    return body


def check_erro(body: dict, sent, *, message_type: str) -> None:
    assert body["messageType"] == "Erro"
    assert body["errorComponent"] == "A"
    assert body["errorCode"] in ERROR_CODES, body
    assert body["errorDescription"] == ERROR_DESCRIPTIONS[body["errorCode"]]
    assert isinstance(body["errorDetail"], str) and len(body["errorDetail"]) <= 2048
    assert body["errorMessageType"] == message_type
    assert body["messageVersion"] in VERSIONS
    for key in ("threeDSServerTransID", "dsTransID", "sdkTransID"):
        if key in body:  # echoed only when readable, and then exactly
            assert isinstance(sent, dict) and body[key] == sent.get(key)


def check_areq_answer(response, sent) -> dict:
    body = answer_json(response)
    if body.get("messageType") == "Erro":
        check_erro(body, sent, message_type="AReq")
    else:
        assert body["messageType"] == "ARes", body
        assert isinstance(sent, dict)
        assert body["messageVersion"] == sent["messageVersion"]
        assert body["threeDSServerTransID"] == sent["threeDSServerTransID"]
        assert body["dsTransID"] == sent["dsTransID"]
        assert uuid36(body["acsTransID"], None) and body["acsReferenceNumber"]
        assert body["transStatus"] in TRANS_STATUSES, body
        if body["transStatus"] in ("Y", "A"):
            assert len(body["authenticationValue"]) == 28
    pan = sent.get("acctNumber") if isinstance(sent, dict) else None
    if isinstance(pan, str) and re.fullmatch(r"[0-9]{13,19}", pan):
        assert pan not in response.content.decode()
    return body


# ---------------------------------------------------------------- AReq


@fuzz(100)
@given(document=json_values)
def test_areq_any_json_document_gets_an_answer(client, enrolled, document):
    check_areq_answer(post_json(client, AREQ_URL, document), document)


@fuzz(100)
@given(
    version=st.sampled_from(list(VERSIONS) + ["2.0.0", "", None, 2.2]),
    elements=st.dictionaries(st.sampled_from(AREQ_NAMES), json_values, max_size=12),
)
def test_areq_like_objects_get_an_answer(client, enrolled, version, elements):
    document = {**elements, "messageType": "AReq", "messageVersion": version}
    check_areq_answer(post_json(client, AREQ_URL, document), document)


@fuzz(120)
@given(message=valid_areqs(), key=st.sampled_from(AREQ_NAMES) | hostile_text, value=any_value)
@example(message=areq(pan=PAN), key="x", value=Deep(400, "list"))  # was a 500: RecursionError in the NUL check
def test_areq_with_one_element_replaced_gets_an_answer(client, enrolled, message, key, value):
    message[key] = real(value)
    body = check_areq_answer(post_json(client, AREQ_URL, message), message)
    if body["messageType"] == "Erro" and len(json.dumps(message)) < 60_000 and body["errorCode"] != "101":
        # A readable AReq: the ids that are still valid come back in the Erro.
        for id_key in ("threeDSServerTransID", "dsTransID"):
            if uuid36(message.get(id_key), None):
                assert body[id_key] == message[id_key]


@fuzz(80)
@given(message=valid_areqs(), drop=st.sets(st.sampled_from(AREQ_NAMES), min_size=1, max_size=8))
def test_areq_with_elements_deleted_gets_an_answer(client, enrolled, message, drop):
    for key in drop:
        message.pop(key, None)
    body = check_areq_answer(post_json(client, AREQ_URL, message), message)
    if {"threeDSServerTransID", "dsTransID", "acctNumber", "messageType", "messageVersion"} & drop:
        assert body["messageType"] == "Erro"


def _raw_bodies():
    valid = json.dumps(areq(pan=PAN))
    return st.one_of(
        st.binary(max_size=400),
        st.binary(min_size=1, max_size=64).map(lambda b: valid[:-1].encode() + b', "x": "' + b + b'"}'),  # invalid UTF-8 inside
        st.integers(0, len(valid)).map(lambda n: valid[:n].encode()),  # truncated
        st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-8-sig", "latin-1", "cp932"]).map(
            lambda enc: valid.replace("Tokyo Books", "Café Tōkyō").encode(enc, errors="replace")
        ),
        st.integers(1, 40_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 20_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.integers(1, 40_000).map(lambda n: b"[" * n),
        st.sampled_from([
            b"", b"null", b"[]", b"{}", b"0", b'"AReq"', b"NaN", b"-Infinity", b"\xef\xbb\xbf{}",
            b'{"messageType":"AReq","messageVersion":NaN}',
            b'{"messageType":"AReq","messageType":"Erro"}',
            b'{"messageType":"AReq","messageVersion":"2.2.0","purchaseAmount":1' + b"0" * 5000 + b"}",
            b'{"messageType":"AReq","messageVersion":"2.2.0","x":"\\ud800"}',
            b'{"messageType":"AReq","messageVersion":"2.2.0","x":"\\u0000"}',
            b'{"messageType":"\\u0041Req","messageVersion":"2.2.0"}',
        ]),
        st.just(valid.encode() + b" " * 70_000),  # over the size limit
    )


CONTENT_TYPES = st.one_of(
    st.sampled_from([
        "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
        "application/json; charset=nonexistent", "application/json;charset=utf-16", "APPLICATION/JSON", "text/json",
        "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "multipart/form-data",
        "application/jose", "application/problem+json", "", ";", "application/json; boundary=\x00",
    ]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
)


@fuzz(120)
@given(body=_raw_bodies(), content_type=CONTENT_TYPES)
def test_areq_raw_bodies_and_content_types_get_an_erro(client, enrolled, body, content_type):
    response = post_raw(client, AREQ_URL, body, content_type)
    check_areq_answer(response, parsed(body))


@fuzz(40)
@given(
    pan=enrolled_pans(),
    message=valid_areqs(),
    status=st.sampled_from(["active", "active", "active", "suspended", "lost_stolen", "closed"]),
    expired=st.booleans(),
    phone=st.sampled_from(["none", "verified", "unverified"]),
    cartes_bancaires=st.booleans(),
)
def test_a_valid_areq_for_an_enrolled_card_is_never_an_erro(client, cardholder, pan, message, status, expired, phone, cartes_bancaires):
    message["acctNumber"] = pan
    with rolled_back():
        if cartes_bancaires:
            product = CardProductFactory(issuer=cardholder.issuer, network="cartes_bancaires", co_badge="visa" if pan[0] == "4" else "mastercard")
            product.bin_ranges.create(start=pan[:6], end=pan[:6])
        card = make_card(cardholder=cardholder, pan=pan, status=status)
        if expired:
            Card.objects.filter(pk=card.pk).update(expiry_year=datetime.now().year - 1)
        if phone != "none":
            Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=phone == "verified")
        client.raise_request_exception = False
        response = client.post(AREQ_URL, message, content_type="application/json")
    body = check_areq_answer(response, message)
    assert body["messageType"] == "ARes", body
    assert body["transStatus"] != "U", body  # no internal failure on a valid AReq


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


# Elements the validation table does not look into (unknown elements, the insides of
# messageExtension and sdkEphemPubKey) and values it once accepted but could not store: each must
# get an Erro (101 / 203) or a decision, never U/22 after a failed write.
UNCHECKED_ELEMENTS = [
    pytest.param({"x": float("nan")}, id="NaN-in-unknown-element"),
    pytest.param({"x": float("inf")}, id="Infinity-in-unknown-element"),
    pytest.param({"purchaseAmount": "9" * 19}, id="19-digit-purchaseAmount"),
    pytest.param({"purchaseAmount": "1" + "0" * 47}, id="48-digit-purchaseAmount"),
    pytest.param({"x": "\ud800"}, id="lone-surrogate-in-unknown-element"),
    # Refused with Erro 203 since NUL is checked in validate_areq.
    pytest.param({"x": "\u0000"}, id="NUL-in-unknown-element"),
    pytest.param({"\u0000": 1}, id="NUL-as-element-name"),
    pytest.param({"messageExtension": [{"name": "x", "id": "x", "criticalityIndicator": False, "data": "\u0000"}]},
                 id="NUL-in-messageExtension"),
    # Absurd nesting is refused before anything walks it recursively.
    pytest.param({"x": Deep(900, "list")}, id="900-deep-unknown-element"),
    pytest.param({"x": Deep(400, "dict")}, id="400-deep-unknown-element"),
    pytest.param({"purchaseAmount": "9" * 18}, id="18-digit-purchaseAmount"),
    pytest.param({"x": {"y": [1, "two", None, True, 1.5]}}, id="ordinary-unknown-element"),
]


@pytest.mark.parametrize("elements", UNCHECKED_ELEMENTS)
def test_an_areq_that_passes_validation_is_never_u22(client, enrolled, elements):
    message = {**areq(pan=PAN), **{k: real(v) for k, v in elements.items()}}
    body = check_areq_answer(post_raw(client, AREQ_URL, json.dumps(message).encode()), message)
    assert not (body["messageType"] == "ARes" and body["transStatus"] == "U"), body


# ---------------------------------------------------------------- app channel CReq


@pytest.fixture
def app_challenge(client, enrolled, sms_file, django_capture_on_commit_callbacks):
    """An app-channel challenge whose first CReq was answered: the code went out, counter 001 next.
    The test SDK (tests.support.app_session) seals each fuzzed CReq, so the fuzz reaches what the
    ACS does with a CReq that opens."""
    session = AppSession(client)
    assert session.areq(pan=PAN, threeDSRequestorChallengeInd="04")["transStatus"] == "C", session.ares
    with django_capture_on_commit_callbacks(execute=True):
        cres = session.send()
    assert cres["messageType"] == "CRes" and cres["acsUiType"] == "01", cres
    return {"creq": {**session.creq(), "sdkCounterStoA": "001"}, "otp": sms_file.last_code(), "session": session}


def post_sealed(client, app_challenge, document):
    """`document` sealed as the SDK's next CReq (counter IV 001) and posted as JWE."""
    body = app_challenge["session"].sdk.seal_document(document, counter=1)
    return post_raw(client, CREQ_URL, body.encode(), "application/jose; charset=UTF-8")


def check_creq_answer(response, sent, *, expected_ids: dict | None = None, otp: str | None = None, session=None) -> dict:
    if otp:
        assert otp not in response.content.decode()
    if response.status_code == 200 and response["Content-Type"] == "application/jose; charset=UTF-8":
        assert session is not None, "an encrypted answer to a CReq that was not sealed"
        body = session.sdk.decrypt_cres(response.content.decode(), check_counter=False)
    else:
        body = answer_json(response)  # an Erro is always plain JSON
    if body.get("messageType") == "Erro":
        check_erro(body, sent, message_type="CReq")
    else:
        assert body["messageType"] == "CRes", body
        assert expected_ids is not None, "a CRes for a CReq that names no live challenge"
        for key, value in expected_ids.items():
            assert body[key] == value
        assert re.fullmatch(r"[0-9]{3}", body["acsCounterAtoS"])
        assert body["challengeCompletionInd"] in ("Y", "N")
        if body["challengeCompletionInd"] == "Y":
            assert body["transStatus"] in ("Y", "N")
    if otp:
        assert otp not in json.dumps(body)
    return body


CREQ_NAMES = ["messageType", "messageVersion", "threeDSServerTransID", "acsTransID", "sdkTransID", "sdkCounterStoA",
              "challengeDataEntry", "resendChallenge", "oobContinue", "challengeCancel", "challengeNoEntry",
              "threeDSRequestorAppURL", "messageExtension"]


@fuzz(80)
@given(document=st.one_of(json_values, st.dictionaries(st.sampled_from(CREQ_NAMES), json_values, max_size=8)))
def test_creq_any_json_document_gets_an_answer(client, db, document):
    # Plain JSON: never opened, always Erro 302 (SPEC §3.3.6).
    assert check_creq_answer(post_json(client, CREQ_URL, document), document)["errorCode"] == "302"


@fuzz(60)
@given(document=st.one_of(json_values, st.dictionaries(st.sampled_from(CREQ_NAMES), json_values, max_size=8)))
def test_creq_any_sealed_json_document_gets_an_answer(client, app_challenge, document):
    ids = {k: app_challenge["creq"][k] for k in ("threeDSServerTransID", "acsTransID", "sdkTransID")}
    check_creq_answer(post_sealed(client, app_challenge, document), document, expected_ids=ids,
                      otp=app_challenge["otp"], session=app_challenge["session"])


@fuzz(100)
@given(key=st.sampled_from(CREQ_NAMES) | hostile_text, value=any_value)
@example(key="challengeDataEntry", value="\udfff")  # was a 500 (UnicodeEncodeError)
def test_creq_with_one_element_replaced_gets_an_answer(client, app_challenge, key, value):
    creq = {**app_challenge["creq"], key: real(value)}
    if key == "challengeDataEntry":
        assume(not (isinstance(value, str) and value.strip() == app_challenge["otp"]))
    ids = {k: app_challenge["creq"][k] for k in ("threeDSServerTransID", "acsTransID", "sdkTransID")}
    check_creq_answer(post_sealed(client, app_challenge, creq), creq, expected_ids=ids, otp=app_challenge["otp"],
                      session=app_challenge["session"])


@fuzz(100)
@given(entry=hostile_text | huge_text, extra=st.dictionaries(st.sampled_from(CREQ_NAMES[6:]), json_values, max_size=3))
@example(entry="\ud800", extra={})  # a lone surrogate: JSON allows it, UTF-8 does not (was a 500)
@example(entry="\x00", extra={})
@example(entry="²³⁴⁵⁶⁷", extra={})
def test_creq_hostile_challenge_data_entry_gets_an_answer(client, app_challenge, entry, extra):
    assume(entry.strip() != app_challenge["otp"])
    creq = {**app_challenge["creq"], **extra, "challengeDataEntry": entry}
    ids = {k: app_challenge["creq"][k] for k in ("threeDSServerTransID", "acsTransID", "sdkTransID")}
    check_creq_answer(post_sealed(client, app_challenge, creq), creq, expected_ids=ids, otp=app_challenge["otp"],
                      session=app_challenge["session"])


@fuzz(60)
@given(body=_raw_bodies(), content_type=CONTENT_TYPES)
def test_creq_raw_bodies_and_content_types_get_an_answer(client, app_challenge, body, content_type):
    response = post_raw(client, CREQ_URL, body, content_type)
    check_creq_answer(response, parsed(body), otp=app_challenge["otp"])


# ---------------------------------------------------------------- browser challenge page


@pytest.fixture
def browser(client, enrolled, sms_file, django_capture_on_commit_callbacks):
    """Two browser challenges: one waiting for its first CReq, one in progress (code sent, page
    token known)."""

    def start():
        message = areq(pan=PAN, threeDSRequestorChallengeInd="04")
        ares = client.post(AREQ_URL, message, content_type="application/json").json()
        assert ares["transStatus"] == "C", ares
        creq = {"threeDSServerTransID": message["threeDSServerTransID"], "acsTransID": ares["acsTransID"],
                "challengeWindowSize": "05", "messageVersion": message["messageVersion"], "messageType": "CReq"}
        return creq

    waiting = start()
    running = start()
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(CHALLENGE_URL, urlencode({"creq": creq_encode(running), "threeDSSessionData": "abc"}),
                           content_type="application/x-www-form-urlencoded")
    assert page.status_code == 200
    token = re.search(r'name="pageToken" value="([^"]+)"', page.content.decode()).group(1)
    assert Challenge.objects.get(transaction_id=running["acsTransID"]).state == Challenge.IN_PROGRESS
    return {"waiting": waiting, "running": running, "token": token, "otp": sms_file.last_code()}


TRACE_MARKERS = ("Traceback", 'File "/', "Exception Value", "django.db.utils", "psycopg", "sqlite3.", "IntegrityError",
                 "Internal Server Error")


def check_page(response, browser) -> str:
    assert response.status_code < 500, f"HTTP {response.status_code}: {crash(response)}"
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    for marker in TRACE_MARKERS:
        assert marker not in text, marker
    assert PAN not in text
    # The page token is random base64url: drop the ones on the page before looking for the code.
    without_tokens = re.sub(r'name="pageToken" value="[^"]*"', "", text)
    without_tokens = re.sub(r'name="cres" value="[^"]*"', "", without_tokens)
    assert browser["otp"] not in without_tokens
    return text


FORM_NAMES = ["creq", "threeDSSessionData", "acsTransID", "pageToken", "action", "challengeDataEntry", "csrfmiddlewaretoken"]
form_text = st.one_of(_texts(surrogates=False), huge_text)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def creq_values(browser_fixture_key: str):
    """What a merchant side (or an attacker) may put in the `creq` field."""

    @st.composite
    def build(draw, browser):
        base = dict(browser[browser_fixture_key])
        kind = draw(st.sampled_from(["mutated", "random_json", "raw", "text", "padded", "bytes"]))
        if kind == "mutated":
            key = draw(st.sampled_from(list(base) + ["sdkTransID", "challengeDataEntry"]) | hostile_text)
            base[key] = draw(st.one_of(json_values, hostile_text))
            return b64url(json.dumps(base).encode())
        if kind == "random_json":
            return b64url(json.dumps(draw(json_values)).encode())
        if kind == "raw":
            return b64url(draw(st.binary(max_size=200)))
        if kind == "padded":
            return base64.urlsafe_b64encode(json.dumps(base).encode()).decode() + draw(st.sampled_from(["", "=", "==", "===", " ", "\n"]))
        if kind == "bytes":
            return base64.b64encode(json.dumps(base).encode()).decode().replace("_", "/")
        return draw(form_text)

    return build


@fuzz(100)
@given(data=st.data())
def test_challenge_page_first_post_never_fails(client, browser, data):
    fields = {"creq": data.draw(creq_values("waiting")(browser))}
    if data.draw(st.booleans()):
        fields["threeDSSessionData"] = data.draw(form_text)
    check_page(post_raw(client, CHALLENGE_URL, urlencode(fields).encode(), "application/x-www-form-urlencoded"), browser)


@fuzz(100)
@given(
    action=st.sampled_from(["submit", "resend", "cancel", "continue", ""]) | form_text,
    code=form_text | st.from_regex(r"\A[0-9 ]{0,20}\Z") | st.sampled_from(["²³⁴⁵⁶⁷", "١٢٣٤٥٦", "０１２３４５", "1" * 17]),
    token_ok=st.booleans(),
    id_ok=st.booleans(),
    extra=st.dictionaries(st.sampled_from(FORM_NAMES) | form_text, form_text, max_size=3),
)
def test_challenge_page_actions_never_fail(client, browser, action, code, token_ok, id_ok, extra):
    assume("".join(code.split()) != browser["otp"])
    fields = {
        **extra,
        "acsTransID": browser["running"]["acsTransID"] if id_ok else str(uuid.uuid4()),
        "pageToken": browser["token"] if token_ok else extra.get("pageToken", ""),
        "action": action,
        "challengeDataEntry": code,
    }
    fields.pop("creq", None)
    check_page(post_raw(client, CHALLENGE_URL, urlencode(fields).encode(), "application/x-www-form-urlencoded"), browser)


def _form_bodies():
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from([
            b"creq=%ZZ", b"creq=%", b"creq=%FF%FE", b"creq=\xff\xfe", b"action=submit&acsTransID=%00", b"=&=&&==",
            b"creq", b"creq=" + b"A" * 5000, b"threeDSSessionData=%00&creq=e30", b"a=" + b"&a=" * 2000,
            b"--xyz\r\nContent-Disposition: form-data; name=\"creq\"\r\n\r\ne30\r\n--xyz--\r\n",
            b"--xyz\r\nContent-Disposition: form-data; name=\"creq\"; filename=\"x\"\r\n\r\n\xff\r\n",
            b"--xyz\r\nbroken", b"x" * 3_000_000,
        ]),
        st.dictionaries(form_text, form_text, max_size=4).map(lambda d: urlencode(d).encode()),
    )


@fuzz(100)
@given(
    body=_form_bodies(),
    content_type=CONTENT_TYPES | st.sampled_from([
        "application/x-www-form-urlencoded; charset=utf-8", "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=utf-16", "application/x-www-form-urlencoded; charset=bogus",
        "multipart/form-data; boundary=xyz",
    ]),
)
def test_challenge_page_raw_bodies_never_fail(client, browser, body, content_type):
    check_page(post_raw(client, CHALLENGE_URL, body, content_type), browser)


@fuzz(30)
@given(session_data=form_text, window=st.sampled_from(["01", "02", "03", "04", "05"]) | form_text)
@example(session_data="\x00", window="05")
@example(session_data="a\x00b", window="01")
def test_challenge_page_first_post_with_hostile_session_data_never_fails(client, browser, session_data, window):
    creq = {**browser["waiting"], "challengeWindowSize": window}
    fields = {"creq": creq_encode(creq), "threeDSSessionData": session_data}
    check_page(post_raw(client, CHALLENGE_URL, urlencode(fields).encode(), "application/x-www-form-urlencoded"), browser)
