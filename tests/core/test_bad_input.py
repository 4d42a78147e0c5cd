"""Malformed requests get a clear 4xx in the error shape; never a 500, never HTML."""

import pytest
from django.test import override_settings

from apps.cards.models import Cardholder

pytestmark = pytest.mark.django_db


def assert_error_shape(r, status):
    assert r.status_code == status
    assert r["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def test_malformed_json_is_400(api):
    error = assert_error_shape(api.post("/api/v1/cardholders", '{"external_id": "x", ', content_type="application/json"), 400)
    assert error["code"] == "malformed_json"


def test_a_form_body_is_415(api):
    error = assert_error_shape(api.post("/api/v1/cardholders", "external_id=x&name=y", content_type="application/x-www-form-urlencoded"), 415)
    assert error["code"] == "unsupported_media_type"


def test_no_content_type_is_415(api):
    assert_error_shape(api.generic("POST", "/api/v1/cardholders", b'{"external_id": "x", "name": "y"}', content_type=""), 415)


@override_settings(API_MAX_BODY_BYTES=1024)
def test_an_oversized_body_is_413_before_it_is_read(api):
    r = api.post("/api/v1/cardholders", {"external_id": "x", "name": "y" * 2000})
    assert_error_shape(r, 413)
    assert not Cardholder.objects.exists()


def test_a_wrong_method_is_405(api):
    assert_error_shape(api.put("/api/v1/cardholders", {}), 405)


def test_an_unknown_api_path_is_a_json_404(api):
    assert_error_shape(api.get("/api/v1/does-not-exist"), 404)


def test_non_utf8_json_is_400(api):
    assert api.post("/api/v1/cardholders", b"\xff\xfe{", content_type="application/json").status_code == 400


@pytest.mark.parametrize("body", ["null", "42", '"text"', "[]", "true"])
def test_a_body_that_is_not_an_object_is_400(api, body):
    assert_error_shape(api.post("/api/v1/cardholders", body, content_type="application/json"), 400)


def test_deeply_nested_json_is_a_4xx(api):
    body = "[" * 30000 + "]" * 30000  # under the size limit, deeper than the recursion limit
    r = api.post("/api/v1/card-products", body, content_type="application/json")
    assert 400 <= r.status_code < 500
