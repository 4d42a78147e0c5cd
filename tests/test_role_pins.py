"""The analyst role reads only (issue 11 item 8): its permissions, exactly, and what the admin lets
an analyst do over HTTP with an SMS provider account."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.sms.models import PRIMARY, TWILIO, SmsProviderConfig
from tests.factories import client_for, make_staff
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

SID = "AC" + "a1" * 16


def codenames(role: str) -> set[str]:
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


def test_the_analyst_holds_view_permissions_only():
    perms = codenames(ANALYST)
    assert perms, "the analyst group has no permission at all"
    writes = sorted(p for p in perms if not p.startswith("view_"))
    assert writes == []


@pytest.mark.parametrize("role,expected", [
    (ANALYST, {"view_smsproviderconfig"}),
    (OPERATOR, {"view_smsproviderconfig"}),
    (ISSUER_ADMIN, {"view_smsproviderconfig", "add_smsproviderconfig", "change_smsproviderconfig", "delete_smsproviderconfig"}),
])
def test_sms_provider_permissions_per_role_exactly(role, expected):
    assert {p for p in codenames(role) if p.endswith("_smsproviderconfig")} == expected


@pytest.mark.parametrize("model", ["otppolicy", "riskpolicy", "apikey", "cardproduct", "smsproviderconfig", "cardholder", "card", "phone"])
def test_the_analyst_can_change_no_configuration_or_enrollment(model):
    perms = codenames(ANALYST)
    assert f"view_{model}" in perms
    assert not {f"add_{model}", f"change_{model}", f"delete_{model}"} & perms


def test_an_analyst_cannot_change_add_or_delete_a_provider_through_the_admin(issuer):
    config = SmsProviderConfig(issuer=issuer, role=PRIMARY, backend=TWILIO, account_sid=SID, from_number="MYBANK")
    config.set_auth_token("token-1")
    config.save()
    analyst = make_staff(issuer, ANALYST)
    assert not analyst.has_perm("sms.change_smsproviderconfig")
    client = client_for(analyst)
    form = {"role": "primary", "backend": "twilio", "is_active": "on", "account_sid": SID, "auth_token": "",
            "from_number": "EVIL", "messaging_service_sid": ""}

    change = reverse("admin:sms_smsproviderconfig_change", args=[config.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="from_number"' not in page.content.decode()  # read-only view
    assert client.post(change, form).status_code == 403
    assert client.post(reverse("admin:sms_smsproviderconfig_add"), {**form, "role": "fallback"}).status_code == 403
    assert client.post(reverse("admin:sms_smsproviderconfig_delete", args=[config.pk]), {"post": "yes"}).status_code == 403
    config.refresh_from_db()
    assert config.from_number == "MYBANK" and SmsProviderConfig.objects.count() == 1
