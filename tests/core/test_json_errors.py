"""Every error on /api/, /sdk/, /webhooks/ and /3ds/ is JSON (SPEC §4) — also the ones Django
answers by itself, and also with DEBUG on (the development server, where Django's HTML debug
pages would otherwise show). The AReq and CReq endpoints answer a wrong method with an EMV Erro;
the cardholder's challenge page keeps its HTML error page."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def http():
    return Client(raise_request_exception=False)


def assert_json_error(response, status: int, code: str):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str)
    assert b"Traceback" not in response.content and b"<html" not in response.content.lower()


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/cards/x/y/z", "/sdk/v1/nope", "/webhooks/nope", "/3ds/v2/nope", "/3ds/nope"])
def test_an_unknown_machine_path_is_a_json_404(http, debug, path):
    assert_json_error(http.get(path), 404, "not_found")
    assert_json_error(http.post(path, "{}", content_type="application/json"), 404, "not_found")


def test_an_unknown_page_elsewhere_stays_html(http, debug):
    response = http.get("/no-such-page")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
@pytest.mark.parametrize("path,message_type", [("/3ds/v2/areq", "AReq"), ("/3ds/v2/creq", "CReq")])
def test_a_wrong_method_on_the_protocol_endpoints_is_an_erro_101(http, debug, method, path, message_type):
    response = getattr(http, method)(path)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["messageType"] == "Erro" and body["errorCode"] == "101"
    assert body["errorComponent"] == "A" and body["errorMessageType"] == message_type


@pytest.mark.urls("tests.core.error_urls")
def test_a_decorators_405_on_a_machine_path_is_json(http, debug):
    response = http.get("/webhooks/test-post-only")
    assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_the_cardholders_challenge_page_keeps_its_html_error_page(http, debug):
    response = http.get("/3ds/v2/challenge")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.urls("tests.core.error_urls")
def test_an_exception_in_a_plain_view_is_a_json_500_without_a_trace(http, debug, caplog):
    assert_json_error(http.get("/api/v1/test-boom"), 500, "internal_error")
    assert b"an unexpected failure" not in http.get("/api/v1/test-boom").content


@pytest.mark.urls("tests.core.error_urls")
def test_an_http404_raised_by_a_plain_view_is_json(http, debug):
    assert_json_error(http.get("/sdk/v1/test-missing"), 404, "not_found")


@pytest.mark.urls("tests.core.error_urls")
def test_pages_outside_the_machine_paths_keep_djangos_handling(http, settings):
    settings.DEBUG = False
    response = http.get("/analyst/test-boom")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/v1/cards/x", "/sdk/v1/authn-requests/x/cancel", "/3ds/v2/areq"])
def test_a_host_not_allowed_is_a_json_400_on_machine_paths(http, debug, path):
    # Django refuses the Host before any view; schemathesis sent `Host: I` and got an HTML page.
    assert_json_error(http.get(path, HTTP_HOST="I"), 400, "bad_request")


def test_a_host_not_allowed_elsewhere_stays_html(http, debug):
    response = http.get("/analyst/", HTTP_HOST="I")
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
