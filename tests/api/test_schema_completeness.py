"""Every operation of the OpenAPI description (/api/schema/) says what it does (a summary) and
which errors it can answer, so a newcomer reading Swagger UI knows both without trying."""

import pytest

pytestmark = pytest.mark.django_db

WRITES = {"post", "put", "patch", "delete"}


def expected_errors(operation: dict, method: str) -> set[str]:
    statuses = {"400", "429"}  # unknown query parameters are refused everywhere; all is throttled
    if any(requirement for requirement in operation.get("security", [])):
        statuses |= {"401", "403"}
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        statuses.add("404")
    if method in WRITES:
        statuses.add("409")
    return statuses


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield f"{method.upper()} {path}", method, operation


def test_the_schema_has_the_card_list_and_the_phone_change(schema):
    assert "get" in schema["paths"]["/api/v1/cards"]
    assert "patch" in schema["paths"]["/api/v1/cardholders/{cardholder_id}/phones/{phone_id}"]


def test_every_operation_has_a_summary(schema):
    missing = [label for label, _, operation in operations(schema) if not operation.get("summary", "").strip()]
    assert not missing, f"operations without a summary: {missing}"


def test_every_operation_documents_its_error_responses(schema):
    problems = {}
    for label, method, operation in operations(schema):
        responses = operation["responses"]
        absent = sorted(expected_errors(operation, method) - set(responses))
        # An error documented without the error body is as good as none to a client generator.
        bodiless = sorted(s for s in responses if s.startswith("4") and "application/json" not in responses[s].get("content", {}))
        if absent or bodiless:
            problems[label] = {"absent": absent, "without body": bodiless}
    assert not problems, problems


def test_the_walk_sees_every_operation(schema):
    labels = [label for label, _, _ in operations(schema)]
    assert len(labels) >= 30 and "GET /api/v1/transactions/{acs_trans_id}" in labels
