"""The OpenAPI description says what the API answers (issue 11): errors with their body, pages as
pages, text where text comes back; and the strict query strings it documents."""

import pytest

from tests.factories import CardholderFactory


@pytest.fixture
def schema(db, anon_api):
    response = anon_api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _resolve(schema, node):
    ref = node.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else node


def test_every_operation_documents_its_errors_with_the_error_body(schema):
    error = {"$ref": "#/components/schemas/Error"}
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) >= 28
    for path, method, op in operations:
        responses = op["responses"]
        expected = {"400", "429"} | ({"401", "403"} if any(op.get("security", [])) else set())
        expected |= {"404"} if "{" in path else set()
        expected |= {"409"} if method in ("post", "patch", "delete") else set()
        expected |= {"413", "415"} if "requestBody" in op else set()
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if status.startswith("4"):
                assert response["content"] == {"application/json": {"schema": error}}, (method, path, status)
        assert responses["429"]["headers"]["Retry-After"]["required"] is True
    body = schema["components"]["schemas"]["ErrorDetail"]
    assert set(body["required"]) == {"code", "message", "fields"}


def test_the_cardholder_list_is_documented_as_the_page_it_answers(schema, api, cardholder):
    page = _resolve(schema, schema["paths"]["/api/v1/cardholders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"next", "previous", "results"}
    assert set(api.get("/api/v1/cardholders").json()) == {"next", "previous", "results"}


def test_stripe_import_documents_its_text_answer(schema):
    content = schema["paths"]["/api/v1/transactions/{acs_trans_id}/stripe-import"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/plain"}


def test_strict_inputs_are_documented(schema):
    components = schema["components"]["schemas"]
    assert components["CardholderInputRequest"]["additionalProperties"] is False
    assert components["CardCreateInputRequest"]["properties"]["pan"]["pattern"] == "^[0-9]{13,19}$"
    posts = [op for item in schema["paths"].values() for method, op in item.items() if method == "post"]
    issuer_posts = [op for op in posts if any(s.get("ApiKey") is not None for s in op.get("security", []))]
    assert issuer_posts and all(any(p["name"] == "Idempotency-Key" for p in op["parameters"]) for op in issuer_posts)


@pytest.mark.parametrize("url", [
    "/api/v1/cardholders?extrnal_id=x",
    "/api/v1/card-products?limit=5",
    "/api/v1/transactions?stauts=Y",
    "/api/v1/cardholders/{cardholder}?verbose=1",
    "/api/v1/cardholders?format=xml",  # not DRF's renderer switch (a 404) here
])
def test_an_unknown_query_parameter_is_a_400(api, cardholder, url):
    response = api.get(url.format(cardholder=cardholder.pk))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["fields"].values()) == [["Unknown parameter."]]


def test_an_unknown_query_parameter_is_a_400_on_the_sdk_api_too(db, anon_api):
    response = anon_api.post("/sdk/v1/registrations/options?debug=1", {"enrollment_token": "x"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"debug": ["Unknown parameter."]}
    response = anon_api.post("/sdk/v1/registrations/options?format=xml", {"enrollment_token": "x"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"format": ["Unknown parameter."]}


def test_authentication_comes_before_the_query_check(db, anon_api):
    assert anon_api.get("/api/v1/cardholders?nope=1").status_code == 401


@pytest.mark.parametrize("query, field", [("limit=abc", "limit"), ("limit=0", "limit"), ("limit=201", "limit"), ("cursor=garbage", "cursor")])
def test_the_cardholder_list_refuses_a_bad_page_parameter(api, issuer, query, field):
    CardholderFactory(issuer=issuer)
    response = api.get(f"/api/v1/cardholders?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_the_cardholder_list_still_pages(api, issuer):
    for _ in range(3):
        CardholderFactory(issuer=issuer)
    first = api.get("/api/v1/cardholders?limit=2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None


def test_the_documented_406_and_415_are_real_and_carry_the_error_body(api, schema):
    response = api.get("/api/v1/cardholders", HTTP_ACCEPT="text/html")
    assert response.status_code == 406 and response.json()["error"]["code"] == "not_acceptable"
    assert "406" in schema["paths"]["/api/v1/cardholders"]["get"]["responses"]
    response = api.post("/api/v1/cardholders", "external_id=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert "415" in schema["paths"]["/api/v1/cardholders"]["post"]["responses"]
