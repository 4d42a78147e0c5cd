import pytest

from apps.threeds.models import RiskPolicy
from tests.factories import make_card, make_phone
from tests.support.fixtures import in_process_tasks, sms_file  # noqa: F401 (fixtures)

PAN = "4111111111111111"


@pytest.fixture
def card(cardholder):
    """The well-known test card number, enrolled for the `cardholder`."""
    return make_card(cardholder=cardholder, pan=PAN)


@pytest.fixture
def phone(cardholder):
    """The cardholder's verified primary mobile."""
    return make_phone(cardholder)


@pytest.fixture
def enrolled(cardholder):
    """A card whose cardholder has a verified primary phone, and a policy that challenges on
    request (indicator 04) and otherwise lets ordinary purchases through. (Not built on `card`
    and `phone`: other areas import this fixture alone.)"""
    card = make_card(cardholder=cardholder, pan=PAN)
    phone = make_phone(cardholder)
    RiskPolicy.objects.create(issuer=cardholder.issuer, new_merchant_weight=0)
    return card, phone
