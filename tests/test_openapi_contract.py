"""The OpenAPI description (/api/schema/) is kept true: schemathesis generates requests from it —
valid ones and, deliberately, invalid ones — for every operation of the issuer and SDK APIs,
sends them to the Django WSGI app with real credentials of a seeded issuer and device, and runs
all of its checks on every answer: no 5xx; status codes, content types, headers and bodies as
documented; invalid data refused; valid data accepted; credentials not ignored; a deleted
resource gone, a created one there. Bounded and derandomized: a CI run is reproducible and short."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.auths import AuthStorage
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from tests.conftest import JsonClient, clear_throttles
from tests.devices.authenticator import SoftwareAuthenticator
from tests.devices.conftest import ANDROID_ORIGIN, RP_ID, WEB_ORIGIN, enroll, options, register
from tests.factories import CardholderFactory, CardProductFactory, IssuerFactory, make_api_key, make_card

MAX_EXAMPLES = 25
# Fewer and the schema (or its loading) lost operations: the test must not pass on nothing.
MIN_OPERATIONS = 28

APP = get_wsgi_application()
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]

# Refusals of schema-valid data that no schema can express: a value of the right shape that names
# nothing (an unknown id or enrollment token, an opaque cursor), a PAN failing Luhn, a business
# rule. Any other 400 to a valid request means the description is missing a constraint.
BUSINESS_CODES = {
    "unknown_cardholder",
    "unknown_product",
    "invalid_pan",
    "pan_outside_bin_grants",
    "invalid_expiry",
    "invalid_bin_range",
    "overlapping_bin_range",
    "co_badge_required",
    "co_badge_not_allowed",
    "invalid_enrollment_token",
    "invalid_phone_number",
    "invalid_registration",
}
BUSINESS_FIELDS = {"cursor", "pan", "credential", "created_before"}


def valid_data_accepted(ctx, response, case):
    """schemathesis' positive_data_acceptance, but a 400 naming a business rule is an answer."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return None
    error = response.json()["error"]
    if error["code"] == "validation_error":
        assert set(error["fields"]) <= BUSINESS_FIELDS, f"schema-valid request refused: {error}"
    else:
        assert error["code"] in BUSINESS_CODES, f"schema-valid request refused: {error}"
    return None


@pytest.fixture
def credentials(db):
    """A seeded issuer: API key, cardholder, card product, card; a device registered via the SDK."""
    issuer = IssuerFactory(webauthn_rp_id=RP_ID, webauthn_origins=[WEB_ORIGIN, ANDROID_ORIGIN])
    api_key = make_api_key(issuer)
    cardholder = CardholderFactory(issuer=issuer)
    CardProductFactory(issuer=issuer)
    make_card(cardholder=cardholder)
    api = JsonClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    sdk = JsonClient()
    token = enroll(api, cardholder)
    response = register(sdk, token, SoftwareAuthenticator().create(options(sdk, token), origin=WEB_ORIGIN))
    assert response.status_code == 201, response.content
    # The cases go through the real WSGI handler, whose request signals close a connection that is
    # in a transaction: the test's own must survive (Django's test client arranges the same for
    # itself, and reconnects the signals after each of its requests, hence here, after seeding).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"/api/": f"Bearer {api_key}", "/sdk/": f"Device {response.json()['device_token']}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def auth_storage(authorization: str) -> AuthStorage:
    """Explicit credentials, so schemathesis' ignored_auth check also tries none and wrong ones."""
    storage = AuthStorage()

    @storage.auth(refresh_interval=None)
    class Seeded:
        def get(self, case, context):
            return authorization

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": data}

    return storage


def test_schema_has_every_operation():
    labels = {operation.label for operation in OPERATIONS}
    assert len(OPERATIONS) >= MIN_OPERATIONS, labels
    assert {"GET /api/v1/cardholders", "GET /api/v1/transactions/{acs_trans_id}/stripe-import", "POST /sdk/v1/registrations"} <= labels


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_operation_conforms(operation, credentials):
    authorization = next(value for prefix, value in credentials.items() if operation.path.startswith(prefix))
    storage = auth_storage(authorization)
    statuses = {GenerationMode.POSITIVE: [], GenerationMode.NEGATIVE: []}

    for mode in statuses:

        @given(case=operation.as_strategy(generation_mode=mode, auth_storage=storage))
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call_and_validate(
                excluded_checks=[positive_data_acceptance], additional_checks=[valid_data_accepted]
            )
            statuses[mode].append(response.status_code)

        check()

    # Not vacuous: cases ran, and valid ones got past authentication.
    assert statuses[GenerationMode.POSITIVE], f"no valid case ran for {operation.label}"
    assert any(status != 401 for status in statuses[GenerationMode.POSITIVE]), statuses


def test_workflows_conform(credentials):
    """Sequences along the links schemathesis infers (create → read → update → delete): the
    stateful checks — a deleted resource is gone (use_after_free), a created one can be read
    (ensure_resource_availability) — besides all the others, on every step."""
    config = SchemathesisConfig.from_dict({
        "auth": {"openapi": {
            "ApiKey": {"bearer": credentials["/api/"].removeprefix("Bearer ")},
            "DeviceToken": {"api_key": credentials["/sdk/"]},
        }},
    })
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP, config=config)
    machine = schema.as_state_machine()
    steps = []

    class Workflow(machine):
        # Each scenario starts from the seeded data: its writes are rolled back at the end, so a
        # replayed (shrunk) scenario meets the same state and stays reproducible.
        def setup(self):
            super().setup()
            # The throttles' counters live in the cache, which no rollback empties: a scenario
            # replayed while shrinking would meet 429s its first run did not, and hypothesis
            # reports that as inconsistent data generation. Each scenario starts with none.
            clear_throttles()
            self._scenario = transaction.atomic()
            self._scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)
            super().teardown()

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            steps.append((case.operation.label, response.status_code))
            case.validate_response(
                response,
                excluded_checks=[positive_data_acceptance],
                additional_checks=[valid_data_accepted],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Workflow.run(settings=hypothesis_settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), stateful_step_count=6,
    ))
    assert steps, "no workflow ran"
    assert any(status in (200, 201, 204) for _, status in steps), steps


def test_real_answers_of_seeded_objects_conform(api_key, cardholder, client, issuer):
    """Random ids mostly meet 404s; these are the documented success answers of real objects:
    a transaction's detail, its Stripe import as JSON and as text/plain form lines, a card."""
    from apps.threeds.models import RiskPolicy, Transaction
    from schemathesis.checks import (
        content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
    )
    from tests.threeds.builders import areq

    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, tra_max_amounts={"392": "100000"})
    card = make_card(cardholder=cardholder, pan="4111111111111111")
    ares = client.post("/3ds/v2/areq", areq(pan="4111111111111111"), content_type="application/json").json()
    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        checks = [status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]
        answers = []
        for path, path_parameters, query in [
            ("/api/v1/transactions/{acs_trans_id}", {"acs_trans_id": str(tx.acs_trans_id)}, None),
            ("/api/v1/transactions/{acs_trans_id}/stripe-import", {"acs_trans_id": str(tx.acs_trans_id)}, {"format": "json"}),
            ("/api/v1/transactions/{acs_trans_id}/stripe-import", {"acs_trans_id": str(tx.acs_trans_id)}, {"format": "form"}),
            ("/api/v1/transactions", {}, {"limit": 1}),
            ("/api/v1/cards/{card_pk}", {"card_pk": str(card.pk)}, None),
            ("/api/v1/cardholders/{cardholder_id}/phones", {"cardholder_id": str(cardholder.pk)}, None),
        ]:
            case = SCHEMA[path]["GET"].Case(path_parameters=path_parameters, query=query)
            response = case.call(headers={"Authorization": f"Bearer {api_key}"})
            case.validate_response(response, checks=checks)
            content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
            answers.append((response.status_code, (content_type[0] if isinstance(content_type, list) else content_type).split(";")[0]))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert answers == [(200, "application/json")] * 2 + [(200, "text/plain")] + [(200, "application/json")] * 3
