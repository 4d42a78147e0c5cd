import pytest

from apps.cards.models import Phone
from apps.threeds.models import RiskPolicy
from tests.factories import make_card
from tests.otp.conftest import in_process_tasks, sms_file  # noqa: F401  (fixtures)

PAN = "4111111111111111"


@pytest.fixture
def enrolled(cardholder):
    """A card whose cardholder has a verified primary phone, and a policy that challenges on
    request (indicator 04) and otherwise lets ordinary purchases through."""
    card = make_card(cardholder=cardholder, pan=PAN)
    phone = Phone.objects.create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True)
    RiskPolicy.objects.create(issuer=cardholder.issuer, new_merchant_weight=0)
    return card, phone
