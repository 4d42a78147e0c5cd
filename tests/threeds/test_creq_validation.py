"""CReq validation as a unit (apps.threeds.messages), and the app channel's counter claims
(apps.threeds.challenge). The HTTP behaviour around them is in test_app_challenge.py and
test_browser_challenge.py."""

import uuid

import pytest

from apps.threeds import challenge as flow
from apps.threeds.messages import MessageError, validate_app_creq, validate_browser_creq
from apps.threeds.models import Challenge, Transaction
from tests.threeds.builders import areq
from tests.threeds.conftest import PAN


def app_creq(**fields) -> dict:
    message = {
        "messageType": "CReq", "messageVersion": "2.2.0", "threeDSServerTransID": str(uuid.uuid4()),
        "acsTransID": str(uuid.uuid4()), "sdkTransID": str(uuid.uuid4()), "sdkCounterStoA": "000",
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not ...}


def refusal(validate, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(MessageError) as caught:
        validate(*args, **kwargs)
    return caught.value.code, caught.value.detail


# ---------------------------------------------------------------- app CReq


@pytest.mark.parametrize(
    "fields",
    [{}, {"challengeDataEntry": "123456"}, {"resendChallenge": "Y"}, {"oobContinue": True}, {"challengeCancel": "01"},
     {"challengeNoEntry": "Y"}, {"threeDSRequestorAppURL": "merchantapp://back"}, {"sdkCounterStoA": "255"}],
)
def test_a_valid_app_creq_passes(fields):
    validate_app_creq(app_creq(**fields))


@pytest.mark.parametrize(
    "message, expected",
    [
        ("not a dict", ("101", "messageType")),
        ({"messageType": "AReq"}, ("101", "messageType")),
        (app_creq(messageVersion="9.9.9"), ("102", "messageVersion")),
        (app_creq(messageVersion=...), ("201", "messageVersion")),
        (app_creq(sdkTransID=..., sdkCounterStoA=""), ("201", "sdkTransID,sdkCounterStoA")),
        (app_creq(acsTransID="not-a-uuid"), ("203", "acsTransID")),
        (app_creq(sdkCounterStoA="256"), ("203", "sdkCounterStoA")),
        (app_creq(sdkCounterStoA="12"), ("203", "sdkCounterStoA")),
        (app_creq(sdkCounterStoA="١٢٣"), ("203", "sdkCounterStoA")),  # digits, but not ASCII ones
        (app_creq(sdkCounterStoA=1), ("203", "sdkCounterStoA")),
        (app_creq(challengeCancel="09"), ("203", "challengeCancel")),
        (app_creq(resendChallenge="yes"), ("203", "resendChallenge")),
        (app_creq(oobContinue="true"), ("203", "oobContinue")),
        (app_creq(threeDSRequestorAppURL="no scheme"), ("203", "threeDSRequestorAppURL")),
    ],
)
def test_an_invalid_app_creq_names_its_error_and_elements(message, expected):
    assert refusal(validate_app_creq, message) == expected


def test_an_empty_optional_element_is_not_a_code_entry():
    # An empty challengeDataEntry would otherwise reach the OTP check and spend an attempt.
    assert refusal(validate_app_creq, app_creq(challengeDataEntry="")) == ("203", "challengeDataEntry")
    assert refusal(validate_app_creq, app_creq(challengeDataEntry="1" * 46)) == ("203", "challengeDataEntry")


def test_missing_elements_come_before_malformed_ones():
    message = app_creq(acsTransID="bad", sdkCounterStoA=...)
    assert refusal(validate_app_creq, message) == ("201", "sdkCounterStoA")


def test_the_erro_echoes_the_ids_it_could_read():
    message = app_creq(sdkCounterStoA="x")
    with pytest.raises(MessageError) as caught:
        validate_app_creq(message)
    assert caught.value.message is message


# ---------------------------------------------------------------- browser CReq


def browser_creq(**fields) -> dict:
    message = {"messageType": "CReq", "messageVersion": "2.2.0", "challengeWindowSize": "05",
               "threeDSServerTransID": str(uuid.uuid4()), "acsTransID": str(uuid.uuid4())}
    message.update(fields)
    return {k: v for k, v in message.items() if v is not ...}


@pytest.mark.parametrize("size", ["01", "02", "03", "04", "05"])
def test_a_valid_browser_creq_passes(size):
    validate_browser_creq(browser_creq(challengeWindowSize=size), transaction_version="2.2.0", session_data="x" * 1024)


@pytest.mark.parametrize(
    "creq, session_data, expected",
    [
        (browser_creq(messageType="CRes"), "", ("101", "messageType")),
        (["CReq"], "", ("101", "messageType")),
        (browser_creq(messageVersion=..., challengeWindowSize=""), "", ("201", "messageVersion,challengeWindowSize")),
        (browser_creq(messageVersion="2.4.0"), "", ("102", "messageVersion")),
        (browser_creq(messageVersion="2.1.0"), "", ("203", "messageVersion")),  # not the AReq's version
        (browser_creq(challengeWindowSize="06"), "", ("203", "challengeWindowSize")),
        (browser_creq(), "x" * 1025, ("203", "threeDSSessionData")),
        (browser_creq(challengeWindowSize=5), "x" * 1025, ("203", "challengeWindowSize,threeDSSessionData")),
    ],
)
def test_an_invalid_browser_creq_names_its_error_and_elements(creq, session_data, expected):
    assert refusal(validate_browser_creq, creq, transaction_version="2.2.0", session_data=session_data) == expected


# ---------------------------------------------------------------- counters


@pytest.fixture
def app_challenge(client, enrolled, sms_file):
    message = areq(pan=PAN, channel="01", threeDSRequestorChallengeInd="04")
    ares = client.post("/3ds/v2/areq", message, content_type="application/json").json()
    assert ares["transStatus"] == "C"
    challenge = Challenge.objects.get(transaction_id=ares["acsTransID"])
    challenge.message = message
    return challenge


def app_step(challenge, counter: int, acs_trans_id=None, **fields) -> flow.AppStep:
    """The step as views_app drives it, with a CReq already opened (the JWE side is tested in
    test_app_challenge.py)."""
    fields = {"three_ds_server_trans_id": challenge.message["threeDSServerTransID"],
              "sdk_trans_id": challenge.message["sdkTransID"], "counter": counter, **fields}
    return flow.challenge_app_creq(acs_trans_id=acs_trans_id or challenge.transaction_id,
                                   open_creq=lambda locked: flow.AppCReq(**fields))


@pytest.mark.django_db
def test_the_sdk_counter_is_claimed_once_in_order(app_challenge):
    claim = lambda counter: app_step(app_challenge, counter).refused or flow.COUNTER_CLAIMED  # noqa: E731
    assert claim(1) == flow.COUNTER_SKIPPED
    assert claim(0) == flow.COUNTER_CLAIMED
    assert claim(0) == flow.COUNTER_REPLAYED
    assert claim(1) == flow.COUNTER_CLAIMED
    app_challenge.refresh_from_db()
    assert app_challenge.sdk_counter_expected == 2


@pytest.mark.django_db
def test_a_refused_counter_changes_nothing(app_challenge):
    acs_trans_id = app_challenge.transaction_id
    from_the_areq = Transaction.objects.get(pk=acs_trans_id).three_ds_requestor_app_url
    outcome = app_step(app_challenge, 5, three_ds_requestor_app_url="shop://x")
    assert outcome.refused == flow.COUNTER_SKIPPED
    app_challenge.refresh_from_db()
    assert app_challenge.sdk_counter_expected == 0 and app_challenge.acs_counter == 0
    assert app_challenge.state == Challenge.AWAITING_CREQ
    assert Transaction.objects.get(pk=acs_trans_id).three_ds_requestor_app_url == from_the_areq != "shop://x"
    app_step(app_challenge, 0, three_ds_requestor_app_url="shop://x")
    assert Transaction.objects.get(pk=acs_trans_id).three_ds_requestor_app_url == "shop://x"


@pytest.mark.django_db
def test_a_creq_naming_another_transaction_changes_nothing(app_challenge):
    other = app_step(app_challenge, 0, three_ds_server_trans_id=str(uuid.uuid4()))
    assert other.refused == flow.NOT_RECOGNISED
    # No challenge for the kid: nothing to open the CReq with.
    assert app_step(app_challenge, 0, acs_trans_id=uuid.uuid4()).refused == flow.NOT_DECRYPTED
    app_challenge.refresh_from_db()
    assert app_challenge.sdk_counter_expected == 0 and app_challenge.state == Challenge.AWAITING_CREQ


@pytest.mark.django_db
def test_the_acs_counter_counts_from_zero(app_challenge):
    assert [app_step(app_challenge, n).acs_counter for n in range(3)] == [0, 1, 2]
