"""The 3DS Method (SPEC §3.8) over HTTP: the page, the collection post, what the AReq records
(three_ds_method), the risk rules on it, and the 10 minutes the data is kept.
The page in a real browser: test_three_ds_method_browser.py."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from apps.threeds import method, tasks
from apps.threeds.card_ranges import three_ds_method_url
from apps.threeds.models import RiskPolicy, ThreeDSMethodData, Transaction
from tests.support.acs import post_areq as post
from tests.threeds.builders import areq

PAN = "4111111111111111"
METHOD_URL = "/3ds/v2/method"
COLLECT_URL = "/3ds/v2/method/data"
NOTIFY = "https://3dss.example/method-notify"
# What the page of a browser matching the builder's AReq (1920x1080, 24 bits, JST, ja-JP) sends.
MATCHING = {"screenWidth": 1920, "screenHeight": 1080, "colorDepth": 24, "tzOffset": -540, "language": "ja-JP",
            "languages": ["ja-JP", "en"], "platform": "Linux x86_64", "canvasHash": "1a2b3c4d"}


def b64url(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def method_data(trans_id=None, url=NOTIFY, **extra) -> str:
    data = {"threeDSServerTransID": trans_id or str(uuid.uuid4()), "threeDSMethodNotificationURL": url, **extra}
    return b64url({k: v for k, v in data.items() if v is not None})


def collect(client, trans_id, data, token=None):
    body = json.dumps({"token": token or method.collect_token(trans_id), "data": data})
    return client.post(COLLECT_URL, body, content_type="application/json")


# ---------------------------------------------------------------- the page


@pytest.mark.django_db
class TestMethodPage:
    def test_the_page_posts_the_server_trans_id_to_the_notification_url_frameable_and_self_contained(self, client):
        trans_id = str(uuid.uuid4())
        r = client.post(METHOD_URL, {"threeDSMethodData": method_data(trans_id)})
        assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
        page = r.content.decode()
        assert f'action="{NOTIFY}"' in page
        sent = page.split('name="threeDSMethodData" value="')[1].split('"')[0]
        assert json.loads(base64.urlsafe_b64decode(sent + "=" * (-len(sent) % 4))) == {"threeDSServerTransID": trans_id}
        assert "<script>" not in page and 'src="/static/threeds/method.js"' in page  # same-origin script only
        policy = r["Content-Security-Policy"]
        assert "frame-ancestors *" in policy and "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "connect-src 'self'" in policy and "form-action *" in policy
        assert "X-Frame-Options" not in r
        assert "no-store" in r["Cache-Control"]

    def test_the_advertised_method_url_is_the_page(self, settings):
        settings.PUBLIC_BASE_URL = "https://acs.example"
        assert three_ds_method_url() == "https://acs.example" + METHOD_URL

    @pytest.mark.parametrize("value", [
        "",
        "!!!not-base64!!!",
        b64url(b"not json"),
        b64url(b"\xff\xfe"),
        b64url([1, 2]),
        method_data(trans_id="not-a-uuid"),
        b64url({"threeDSMethodNotificationURL": NOTIFY}),
        method_data(url=None),
        method_data(url="javascript:alert(1)"),
        method_data(url="http://3dss.example/notify"),
        method_data(url="https://user:pw@3dss.example/notify"),
        method_data(url="https:///no-host"),
        "A" * 5000,
    ], ids=["empty", "not-base64url", "not-json", "not-utf8", "not-object", "bad-id", "no-id", "no-url", "javascript",
            "plain-http", "credentials", "no-host", "too-long"])
    def test_bad_method_data_gets_a_short_html_page_and_no_notification(self, client, value):
        r = client.post(METHOD_URL, {"threeDSMethodData": value})
        assert r.status_code == 400 and r["Content-Type"].startswith("text/html")
        page = r.content.decode()
        assert "<form" not in page and "threeDSMethodData" not in page and "method.js" not in page

    def test_no_field_a_get_and_a_broken_body_are_html_too(self, client):
        assert client.post(METHOD_URL, {}).status_code == 400
        r = client.get(METHOD_URL)
        assert r.status_code == 405 and r["Allow"] == "POST" and r["Content-Type"].startswith("text/html")
        r = client.post(METHOD_URL, b"\xff" * 10, content_type="multipart/form-data; boundary=x")
        assert r.status_code == 400 and r["Content-Type"].startswith("text/html")

    def test_local_http_notification_urls_only_in_development(self, client, settings):
        local = method_data(url="http://127.0.0.1:8123/notify")
        settings.DEBUG, settings.OUTBOUND_ALLOW_PRIVATE = False, False
        assert client.post(METHOD_URL, {"threeDSMethodData": local}).status_code == 400
        settings.OUTBOUND_ALLOW_PRIVATE = True
        assert client.post(METHOD_URL, {"threeDSMethodData": local}).status_code == 200
        settings.DEBUG, settings.OUTBOUND_ALLOW_PRIVATE = True, False
        assert client.post(METHOD_URL, {"threeDSMethodData": method_data(url="http://localhost:9/n")}).status_code == 200
        # Development opens this machine only, never plain http elsewhere.
        assert client.post(METHOD_URL, {"threeDSMethodData": method_data(url="http://10.0.0.1/n")}).status_code == 400


# ---------------------------------------------------------------- the collection post


@pytest.mark.django_db
class TestCollection:
    def test_the_page_data_is_kept_for_its_transaction(self, client):
        trans_id = str(uuid.uuid4())
        assert collect(client, trans_id, MATCHING).status_code == 204
        assert ThreeDSMethodData.objects.get(three_ds_server_trans_id=trans_id).data == MATCHING

    def test_the_first_post_wins(self, client):
        trans_id = str(uuid.uuid4())
        collect(client, trans_id, MATCHING)
        assert collect(client, trans_id, {**MATCHING, "screenWidth": 1}).status_code == 204
        assert ThreeDSMethodData.objects.get(three_ds_server_trans_id=trans_id).data["screenWidth"] == 1920

    def test_over_4_kb_is_refused(self, client):
        trans_id = str(uuid.uuid4())
        r = collect(client, trans_id, {**MATCHING, "platform": "x" * 4100})
        assert r.status_code == 413 and not ThreeDSMethodData.objects.exists()

    @pytest.mark.parametrize("data", [
        {**MATCHING, "cookies": "x"}, {}, {"screenWidth": "1920"}, {"screenWidth": True}, {"tzOffset": 5000},
        {"languages": ["x"] * 17}, {"canvasHash": "NOT-HEX"}, {"platform": "a\nb"}, [1],
    ], ids=["unknown-key", "empty", "string-int", "bool", "tz-range", "many-languages", "hash", "control-char", "list"])
    def test_only_known_keys_with_sane_values(self, client, data):
        assert collect(client, str(uuid.uuid4()), data).status_code == 400
        assert not ThreeDSMethodData.objects.exists()

    def test_a_post_not_from_our_page_is_refused(self, client):
        trans_id = str(uuid.uuid4())
        assert collect(client, trans_id, MATCHING, token="forged").status_code == 403
        other = signing.dumps(trans_id, salt="another.purpose")
        assert collect(client, trans_id, MATCHING, token=other).status_code == 403
        assert client.post(COLLECT_URL, "not json", content_type="application/json").status_code == 400
        assert client.get(COLLECT_URL).status_code == 405
        assert not ThreeDSMethodData.objects.exists()

    def test_a_stale_token_is_refused(self, client, monkeypatch):
        trans_id = str(uuid.uuid4())
        token = method.collect_token(trans_id)
        monkeypatch.setattr(method, "COLLECT_TOKEN_MAX_AGE", -1)  # as if the page were older than allowed
        assert collect(client, trans_id, MATCHING, token=token).status_code == 403


# ---------------------------------------------------------------- the AReq


def _method_done(trans_id, data=MATCHING, age=timedelta(0)):
    ThreeDSMethodData.objects.create(three_ds_server_trans_id=trans_id, data=data)
    if age:
        ThreeDSMethodData.objects.filter(three_ds_server_trans_id=trans_id).update(created_at=timezone.now() - age)


def _tx(ares) -> Transaction:
    return Transaction.objects.get(acs_trans_id=ares["acsTransID"])


@pytest.mark.django_db
class TestAReqRecordsTheMethod:
    @pytest.fixture(autouse=True)
    def lenient(self, issuer, card):
        return RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)

    def test_completed_when_y_and_the_data_arrived(self, client):
        message = areq(pan=PAN, threeDSCompInd="Y")
        _method_done(message["threeDSServerTransID"])
        assert _tx(post(client, message)).three_ds_method == "completed"

    def test_missing_when_y_and_nothing_arrived(self, client):
        assert _tx(post(client, areq(pan=PAN, threeDSCompInd="Y"))).three_ds_method == "missing"

    def test_another_transactions_data_does_not_count(self, client):
        _method_done(str(uuid.uuid4()))
        assert _tx(post(client, areq(pan=PAN, threeDSCompInd="Y"))).three_ds_method == "missing"

    @pytest.mark.parametrize("indicator, expected", [("N", "not_completed"), ("U", "unavailable")])
    def test_n_and_u_say_so_whatever_arrived(self, client, indicator, expected):
        message = areq(pan=PAN, threeDSCompInd=indicator)
        _method_done(message["threeDSServerTransID"])
        assert _tx(post(client, message)).three_ds_method == expected

    def test_blank_outside_the_browser_channel(self, client):
        assert _tx(post(client, areq(pan=PAN, channel="03"))).three_ds_method == ""

    def test_blank_for_the_app_channel(self, client):
        ares = post(client, areq(pan=PAN, channel="01"))
        assert _tx(ares).three_ds_method == ""

    def test_a_card_outside_every_grant_still_records_it(self, client):
        message = areq(pan="4999999999999996", threeDSCompInd="Y")
        _method_done(message["threeDSServerTransID"])
        ares = post(client, message)
        assert ares["transStatus"] == "N" and _tx(ares).three_ds_method == "completed"


@pytest.mark.django_db
class TestExpiry:
    @pytest.fixture(autouse=True)
    def lenient(self, issuer, card):
        return RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)

    def test_data_within_10_minutes_counts(self, client):
        message = areq(pan=PAN)
        _method_done(message["threeDSServerTransID"], age=timedelta(minutes=9, seconds=50))
        assert _tx(post(client, message)).three_ds_method == "completed"

    def test_data_older_than_10_minutes_is_missing_even_before_the_sweep(self, client):
        message = areq(pan=PAN)
        _method_done(message["threeDSServerTransID"], age=timedelta(minutes=10, seconds=5))
        assert _tx(post(client, message)).three_ds_method == "missing"

    def test_the_challenge_timeouts_task_sweeps_it_after_10_minutes(self):
        old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
        _method_done(old, age=timedelta(minutes=10, seconds=5))
        _method_done(fresh, age=timedelta(minutes=9))
        tasks.challenges_time_out()
        assert [str(i) for i in ThreeDSMethodData.objects.values_list("three_ds_server_trans_id", flat=True)] == [fresh]


# ---------------------------------------------------------------- the risk rules


def _rules(tx) -> dict:
    """The rules that weighed in (new_merchant_for_card fires at 0 under these policies)."""
    return {r["rule"]: r for r in tx.risk_rules if r["weight"]}


@pytest.mark.django_db
class TestRisk:
    def test_by_default_neither_rule_changes_the_decision(self, client, issuer, card):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        post(client, areq(pan=PAN, threeDSCompInd="N"))  # the merchant is known from here on
        plain = _tx(post(client, areq(pan=PAN, threeDSCompInd="N")))
        missing = _tx(post(client, areq(pan=PAN, threeDSCompInd="Y")))
        message = areq(pan=PAN, threeDSCompInd="Y")
        _method_done(message["threeDSServerTransID"], data={**MATCHING, "screenWidth": 390})
        mismatched = _tx(post(client, message))
        assert plain.risk_score == missing.risk_score == mismatched.risk_score
        assert plain.risk_rules == missing.risk_rules == mismatched.risk_rules

    def test_a_missing_method_adds_its_weight_and_is_explained(self, client, issuer, card, phone):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, three_ds_method_missing_weight=45)
        tx = _tx(post(client, areq(pan=PAN, threeDSCompInd="Y")))
        assert _rules(tx)["three_ds_method_missing"] == {"rule": "three_ds_method_missing", "weight": 45}
        assert tx.risk_score == 10 + 45 and tx.ares_trans_status == "C"
        # N (the 3DS Server said it did not run) is not "missing".
        assert "three_ds_method_missing" not in _rules(_tx(post(client, areq(pan=PAN, threeDSCompInd="N"))))

    def test_browser_data_disagreeing_with_the_areq_adds_its_weight_and_names_the_elements(self, client, issuer, card, phone):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, browser_data_mismatch_weight=40)
        message = areq(pan=PAN, threeDSCompInd="Y")
        _method_done(message["threeDSServerTransID"], data={**MATCHING, "screenWidth": 390, "tzOffset": 0, "language": "fr-FR"})
        tx = _tx(post(client, message))
        rule = _rules(tx)["browser_data_mismatch"]
        assert rule == {"rule": "browser_data_mismatch", "weight": 40,
                        "elements": ["browserScreenWidth", "browserTZ", "browserLanguage"]}
        assert tx.risk_score == 50 and tx.ares_trans_status == "C"

    def test_matching_data_fires_nothing(self, client, issuer, card):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, browser_data_mismatch_weight=40,
                                  three_ds_method_missing_weight=45)
        message = areq(pan=PAN, threeDSCompInd="Y", browserLanguage="JA-jp")  # compared case-insensitively
        _method_done(message["threeDSServerTransID"])
        tx = _tx(post(client, message))
        assert tx.three_ds_method == "completed" and set(_rules(tx)) == {"base"} and tx.ares_trans_status == "Y"

    def test_elements_missing_on_either_side_are_not_compared(self):
        assert method.browser_mismatches({"browserScreenWidth": "1920"}, {"screenHeight": 5}) == []
        assert method.browser_mismatches({"browserTZ": "abc"}, {"tzOffset": 60}) == []
        assert method.browser_mismatches({"browserColorDepth": "24"}, {"colorDepth": 32}) == ["browserColorDepth"]


@pytest.mark.django_db
def test_the_method_data_comes_with_the_areqs_one_read(client, issuer, card):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.threeds.test_areq_fast_path import statement_kinds

    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    post(client, areq(pan=PAN))  # warm
    message = areq(pan=PAN)
    _method_done(message["threeDSServerTransID"])
    with CaptureQueriesContext(connection) as captured:
        ares = post(client, message)
    assert _tx(ares).three_ds_method == "completed"
    queries = [q for q in captured.captured_queries if q["sql"].split()[0].upper() not in ("SAVEPOINT", "RELEASE")]
    assert statement_kinds(queries)[0] == "SELECT cards_card"
    assert not any("threeds_threedsmethoddata" in kind for kind in statement_kinds(queries)), statement_kinds(queries)


@pytest.mark.django_db
def test_the_transactions_api_shows_it(client, api, issuer, card):
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    message = areq(pan=PAN)
    _method_done(message["threeDSServerTransID"])
    browser = post(client, message)
    app = post(client, areq(pan=PAN, channel="01"))
    assert api.get(f"/api/v1/transactions/{browser['acsTransID']}").json()["three_ds_method"] == "completed"
    assert api.get(f"/api/v1/transactions/{app['acsTransID']}").json()["three_ds_method"] is None
    listed = {t["acs_trans_id"]: t["three_ds_method"] for t in api.get("/api/v1/transactions").json()["results"]}
    assert listed == {browser["acsTransID"]: "completed", app["acsTransID"]: None}
