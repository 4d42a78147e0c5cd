"""Risk policy in the admin: issuer admins edit it within bounds, others read it, tenants apart."""

import pytest

from apps.accounts.roles import ANALYST, ISSUER_ADMIN
from apps.audit.models import AuditEvent
from apps.threeds.models import RiskPolicy
from tests.factories import client_for, make_staff
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)
from tests.test_admin import url

pytestmark = pytest.mark.django_db


def form(policy, **overrides):
    fields = {f.name: getattr(policy, f.name) for f in RiskPolicy._meta.fields if f.name not in ("id", "updated_at", "issuer", "version")}
    data = {k: ("on" if v is True else "" if v is False else v) for k, v in fields.items()}
    for key in ("amount_thresholds", "tra_max_amounts", "sca_performed_max_amounts"):
        del data[key]
        data[f"{key}_key"], data[f"{key}_value"] = ["", ""], ["", ""]
    data["issuer"] = str(policy.issuer_id)
    data["reason"] = "tests"
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


@pytest.fixture
def policies(issuer, other_issuer):
    return RiskPolicy.objects.create(issuer=issuer), RiskPolicy.objects.create(issuer=other_issuer)


def test_an_issuer_admin_sets_the_threshold(issuer, policies):
    mine, _ = policies
    r = client_for(make_staff(issuer, ISSUER_ADMIN)).post(url(RiskPolicy, "change", mine.pk), form(mine, challenge_threshold=70, amount_thresholds_key=["392"], amount_thresholds_value=["30000"]))
    assert r.status_code == 302, r.content.decode()[:3000]
    mine.refresh_from_db()
    assert mine.challenge_threshold == 70 and mine.amount_thresholds == {"392": "30000"}
    assert AuditEvent.objects.filter(kind="risk_policy.saved", issuer=issuer).exists()


@pytest.mark.parametrize("field, value", [("challenge_threshold", 0), ("amount_thresholds_key", ["JPY"]), ("first_creq_timeout_seconds", 1)])
def test_bad_values_are_refused(issuer, policies, field, value):
    mine, _ = policies
    r = client_for(make_staff(issuer, ISSUER_ADMIN)).post(url(RiskPolicy, "change", mine.pk), form(mine, **{field: value}))
    assert r.status_code == 200
    mine.refresh_from_db()
    assert mine.challenge_threshold == 50


def test_analysts_read_only_and_tenants_stay_apart(issuer, policies):
    mine, theirs = policies
    analyst = client_for(make_staff(issuer, ANALYST))
    assert analyst.get(url(RiskPolicy, "change", mine.pk)).status_code == 200
    assert analyst.post(url(RiskPolicy, "change", mine.pk), form(mine, challenge_threshold=70)).status_code == 403
    admin = client_for(make_staff(issuer, ISSUER_ADMIN, username="admin-x"))
    assert admin.get(url(RiskPolicy, "change", theirs.pk)).status_code == 302
