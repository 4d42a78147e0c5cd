import pytest
from rest_framework.test import APIClient

from tests.factories import CardholderFactory, IssuerFactory, make_api_key


class JsonClient(APIClient):
    """Sends JSON (TEST_REQUEST_DEFAULT_FORMAT); a str body with content_type is sent raw."""


@pytest.fixture
def issuer(db):
    return IssuerFactory()


@pytest.fixture
def other_issuer(db):
    return IssuerFactory()


@pytest.fixture
def api_key(issuer):
    return make_api_key(issuer)


@pytest.fixture
def api(api_key):
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def other_api(other_issuer):
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(other_issuer)}")
    return client


@pytest.fixture
def anon_api():
    return JsonClient()


@pytest.fixture
def cardholder(issuer):
    return CardholderFactory(issuer=issuer)
