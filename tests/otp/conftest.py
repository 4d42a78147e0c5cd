import pytest

from apps.otp.services import otp_policy_create_default, otp_policy_save
from tests.factories import make_card, make_phone
from tests.support.fixtures import in_process_tasks, sms_file  # noqa: F401 (fixtures, imported from here by other areas)

DETAILS = {"merchantName": "Tokyo Books", "purchaseAmount": "1500", "purchaseCurrency": "392", "purchaseExponent": "0"}


@pytest.fixture
def policy(issuer):
    version = otp_policy_create_default(issuer=issuer)
    return version.policy


@pytest.fixture
def set_policy(policy):
    def apply(**changes):
        for key, value in changes.items():
            setattr(policy, key, value)
        return otp_policy_save(policy=policy, actor="tests")

    return apply


@pytest.fixture
def card(cardholder):
    return make_card(cardholder=cardholder)


@pytest.fixture
def phone(cardholder):
    return make_phone(cardholder)
