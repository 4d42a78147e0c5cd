"""The simulator package's own rules, where the command and the harness rely on them without
a server: the DS endpoint's answers, the SMS file reader, the builders, an unreachable server."""

import json

import pytest
import requests

from apps.threeds.simulator import Unexpected, Unreachable
from apps.threeds.simulator.endpoints import Endpoints
from apps.threeds.simulator.messages import app_creq, areq, b64url_decode, b64url_encode, wrong_code
from apps.threeds.simulator.phone import SmsFile, phone_hint, wait_code
from apps.threeds.simulator.transport import HttpTransport


@pytest.fixture
def endpoints():
    with Endpoints() as server:
        yield server


def test_the_ds_answers_rres_01_echoing_the_rreq_and_fails_the_programmed_ones_first(endpoints):
    rreq = {"messageType": "RReq", "messageVersion": "2.2.0", "acsTransID": "A-1", "threeDSServerTransID": "T",
            "dsTransID": "D", "sdkTransID": "S"}
    endpoints.fail_rreqs(1, 503)
    first = requests.post(endpoints.ds_url, json=rreq, timeout=5)
    second = requests.post(endpoints.ds_url, json=rreq, timeout=5)
    assert first.status_code == 503
    assert second.status_code == 200
    assert second.json() == {"messageType": "RRes", "messageVersion": "2.2.0", "threeDSServerTransID": "T",
                             "acsTransID": "A-1", "dsTransID": "D", "sdkTransID": "S", "resultsStatus": "01"}
    assert [r.answered for r in endpoints.rreqs("a-1")] == [503, 200]  # ids compared case-insensitively
    assert endpoints.wait_rreq("A-1", timeout=1) == rreq
    assert endpoints.violations == []


def test_what_no_ds_would_accept_is_refused_and_recorded(endpoints):
    assert requests.post(endpoints.ds_url, data=b"not json", timeout=5).status_code == 400
    assert requests.post(endpoints.url + "/elsewhere", data=b"{}", timeout=5).status_code == 404
    assert endpoints.violations == ["an RReq that is not a JSON object", "a POST to an unknown path /elsewhere"]
    with pytest.raises(Unexpected, match="no acknowledged RReq for A-2"):
        endpoints.wait_rreq("A-2", timeout=0.2)


def test_a_final_cres_post_is_found_by_its_acs_trans_id_and_a_bad_one_is_ignored(endpoints):
    requests.post(endpoints.notification_url, data={"cres": "%%%"}, timeout=5)
    requests.post(endpoints.notification_url, data={"cres": b64url_encode({"acsTransID": "A-3"}), "threeDSSessionData": "s"}, timeout=5)
    post = endpoints.wait_cres_post("A-3", timeout=1)
    assert post.cres == {"acsTransID": "A-3"} and post.form["threeDSSessionData"] == "s"


def test_the_sms_file_reader_starts_at_the_end_skips_half_written_lines_and_matches_the_masked_number(tmp_path):
    path = tmp_path / "sms.jsonl"
    path.write_text(json.dumps({"to": "+819000000001", "body": "Your code is 111111"}) + "\n")
    sms = SmsFile(path, from_end=True)
    with path.open("a") as fh:
        fh.write(json.dumps({"to": "+33600000002", "body": "Code 222222 for ¥1,500"}) + "\n")
        fh.write(json.dumps({"to": "+819012345678", "body": "Code 333333 for ¥1,500"}) + "\n")
        fh.write('{"to": "+8190')  # the backend is still writing this one
    hint = phone_hint("We sent a code to +81 ••• •••• 5678")
    assert hint == ("81", "5678")
    assert sms.next_code(phone_hint=hint, timeout=1) == ("333333", "+81 ••• •••• 5678")
    with pytest.raises(Unexpected, match="No SMS to"):
        sms.next_code(phone_hint=hint, timeout=0.3)
    assert wait_code(SmsFile(path), "+819000000001", timeout=1) == "111111"


def test_builders_remove_an_element_given_none_and_number_the_creqs():
    message = areq(channel="01", threeDSRequestorAppURL=None, purchaseAmount="99")
    assert "threeDSRequestorAppURL" not in message and message["purchaseAmount"] == "99"
    creq = app_creq(message, "A-4", 2, challengeDataEntry="123456")
    assert (creq["sdkCounterStoA"], creq["sdkTransID"], creq["challengeDataEntry"]) == ("002", message["sdkTransID"], "123456")
    assert b64url_decode(b64url_encode(creq)) == creq
    assert wrong_code("999999") == "000000" and wrong_code("012345") == "012346"


def test_an_unreachable_server_is_unreachable_not_a_requests_error():
    with pytest.raises(Unreachable, match="could not reach http://127.0.0.1:9/3ds/v2/areq"):
        HttpTransport("http://127.0.0.1:9", timeout=2).post("/3ds/v2/areq", json={})
