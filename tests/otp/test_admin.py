"""OTP policies in the admin: bounds enforced, every save a version, scoped per issuer."""

import pytest

from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.otp.models import OtpPolicy, OtpPolicyVersion
from apps.otp.services import otp_policy_create_default
from tests.factories import client_for, make_staff
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)
from tests.test_admin import url

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(issuer, other_issuer):
    return otp_policy_create_default(issuer=issuer).policy, otp_policy_create_default(issuer=other_issuer).policy


def form_data(policy, **overrides):
    """The policy's form as a browser posts it: countries by code, a text per locale, a reason."""
    data = {
        "issuer": str(policy.issuer_id), "product": "", "delivery_mode": policy.delivery_mode,
        "code_length": policy.code_length, "lifetime_seconds": policy.lifetime_seconds, "max_attempts": policy.max_attempts,
        "max_resends": policy.max_resends, "resend_cooldown_seconds": policy.resend_cooldown_seconds,
        "allowed_countries": ["JP"], "max_sends_per_card_hour": 5, "max_sends_per_card_day": 10, "max_sends_per_phone_day": 10,
        "sms_template_en": "{code} is your code", "sms_template_ja": "", "sms_template_fr": "",
        "sender_ids_key": ["", ""], "sender_ids_value": ["", ""],
        "reason": "tests",
    }
    return {**data, **overrides}


def test_an_issuer_admin_edit_makes_a_new_version(issuer, policies):
    mine, _ = policies
    client = client_for(make_staff(issuer, ISSUER_ADMIN))
    r = client.post(url(OtpPolicy, "change", mine.pk), form_data(mine, max_attempts=5))
    assert r.status_code == 302, r.content.decode()[:2000]
    mine.refresh_from_db()
    assert mine.version == 2 and mine.max_attempts == 5
    assert OtpPolicyVersion.objects.get(policy=mine, version=2).rules.max_attempts == 5
    assert OtpPolicyVersion.objects.get(policy=mine, version=1).rules.max_attempts == 3
    assert mine.updated_by.startswith("staff:")


@pytest.mark.parametrize(
    "field, value", [("code_length", 9), ("lifetime_seconds", 30), ("max_attempts", 11), ("max_resends", 6), ("resend_cooldown_seconds", 301)]
)
def test_the_admin_enforces_the_bounds(issuer, policies, field, value):
    mine, _ = policies
    client = client_for(make_staff(issuer, ISSUER_ADMIN))
    r = client.post(url(OtpPolicy, "change", mine.pk), form_data(mine, **{field: value}))
    assert r.status_code == 200 and "Must be between" in r.content.decode()
    mine.refresh_from_db()
    assert mine.version == 1


def test_a_template_without_the_code_is_refused(issuer, policies):
    mine, _ = policies
    client = client_for(make_staff(issuer, ISSUER_ADMIN))
    r = client.post(url(OtpPolicy, "change", mine.pk), form_data(mine, sms_template_en="hello"))
    assert r.status_code == 200 and "Must contain {code}" in r.content.decode()


@pytest.mark.parametrize("role", [OPERATOR, ANALYST])
def test_operators_and_analysts_only_read_policies(issuer, policies, role):
    mine, _ = policies
    client = client_for(make_staff(issuer, role))
    assert client.get(url(OtpPolicy, "change", mine.pk)).status_code == 200
    assert client.post(url(OtpPolicy, "change", mine.pk), form_data(mine, max_attempts=5)).status_code == 403


def test_another_issuers_policy_is_out_of_reach(issuer, policies):
    _, theirs = policies
    client = client_for(make_staff(issuer, ISSUER_ADMIN))
    assert client.get(url(OtpPolicy, "change", theirs.pk)).status_code == 302  # admin redirects unknown ids
    assert client.post(url(OtpPolicy, "change", theirs.pk), form_data(theirs, max_attempts=5)).status_code in (302, 404)
    theirs.refresh_from_db()
    assert theirs.version == 1
    assert list(client.get(url(OtpPolicy, "changelist")).context["cl"].result_list) == [policies[0]]
