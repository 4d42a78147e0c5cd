"""The risk policy as a form: amounts per currency by name, bounds refused with messages in words,
a reason for every change, a version with its diff and an audit event per save, history and
backtest pages per role, and concurrent saves numbered apart."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.audit.models import AuditEvent
from apps.threeds.models import RiskPolicy, RiskPolicyVersion
from apps.threeds.policy_words import risk_policy_changes
from apps.threeds.risk import risk_policy_save
from tests.factories import client_for, make_staff, make_superuser
from tests.policies.conftest import make_tx
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)
from tests.test_admin import url

pytestmark = pytest.mark.django_db

SKIP = ("id", "issuer", "updated_at", "version", "amount_thresholds", "tra_max_amounts", "sca_performed_max_amounts")


def form(policy, *, amounts=(), reason="Fewer challenges on small amounts", **overrides):
    """The change form as a browser posts it; `amounts` are (currency, amount) rows of the thresholds."""
    data = {f.name: getattr(policy, f.name) for f in RiskPolicy._meta.fields if f.name not in SKIP}
    data = {k: ("on" if v is True else "" if v is False else v) for k, v in data.items()}
    rows = list(amounts) + [("", "")]
    data.update(amount_thresholds_key=[c for c, _ in rows], amount_thresholds_value=[a for _, a in rows],
                tra_max_amounts_key=[""], tra_max_amounts_value=[""], sca_performed_max_amounts_key=[""],
                sca_performed_max_amounts_value=[""], issuer=str(policy.issuer_id), reason=reason, backtest_days="30")
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


@pytest.fixture
def policies(issuer, other_issuer):
    return RiskPolicy.objects.create(issuer=issuer), RiskPolicy.objects.create(issuer=other_issuer)


@pytest.fixture
def boss(issuer):
    return client_for(make_staff(issuer, ISSUER_ADMIN, username="boss"))


def test_a_save_makes_a_version_with_author_reason_and_an_audit_event_in_words(issuer, policies, boss):
    mine, _ = policies
    r = boss.post(url(RiskPolicy, "change", mine.pk), form(mine, challenge_threshold=40, reason="Tighter after the October fraud wave"))
    assert r.status_code == 302, r.content.decode()[:2000]
    r = boss.post(url(RiskPolicy, "change", mine.pk), form(mine, challenge_threshold=40, amounts=[("392", "30000")], reason="JPY cap"))
    assert r.status_code == 302, r.content.decode()[:2000]
    mine.refresh_from_db()
    assert mine.version == 3 and mine.amount_thresholds == {"392": "30000"} and mine.challenge_threshold == 40
    # Version 1 is the policy as it was before its first recorded change (made on first use).
    baseline, first, second = RiskPolicyVersion.objects.filter(policy=mine).order_by("version")
    assert baseline.created_by == "system" and baseline.settings["challenge_threshold"] == 50
    assert (first.created_by, first.reason) == ("staff:boss", "Tighter after the October fraud wave")
    assert second.settings["amount_thresholds"] == {"392": "30000"} and second.reason == "JPY cap"
    events = AuditEvent.objects.filter(kind="risk_policy.saved", issuer=issuer).order_by("id")
    assert [e.data["version"] for e in events] == [2, 3]
    assert events.first().data["changes"] == ["Challenge threshold: 50 → 40"]
    assert events.last().data["changes"] == ["Amount threshold JPY: none → ¥30,000"]
    assert events.last().data["reason"] == "JPY cap"


def test_the_diff_says_what_changed_in_words():
    before = {"challenge_threshold": 50, "amount_thresholds": {"978": "250.00"}, "allow_oob": True, "no_method_outcome": "N"}
    after = {"challenge_threshold": 40, "amount_thresholds": {"392": "30000"}, "allow_oob": False, "no_method_outcome": "A"}
    with translation.override("en"):
        assert [str(c) for c in risk_policy_changes(before, after)] == [
            "Challenge threshold: 50 → 40",
            "Amount threshold JPY: none → ¥30,000",
            "When no challenge method is available: Decline (N / 13) → Attempt (A)",
            "Challenge in the banking app (OOB): yes → no",
            "Amount threshold EUR: €250.00 → none",
        ]
    with translation.override("ja"):
        assert str(risk_policy_changes(before, after)[1]) == "金額しきい値 JPY: なし → ￥30,000"


@pytest.mark.parametrize("overrides, field, message", [
    ({"challenge_threshold": 0}, "challenge_threshold", "Between 1 and 99."),
    ({"challenge_threshold": 100}, "challenge_threshold", "Between 1 and 99."),
    ({"first_creq_timeout_seconds": 1}, "first_creq_timeout_seconds", "Between 5 and 600."),
    ({"velocity_warn_per_hour": 11}, "velocity_warn_per_hour", "At most the number of authentications per hour before declining."),
    ({"amount_thresholds_key": ["392"], "amount_thresholds_value": ["-5"]}, "amount_thresholds", "is not an amount"),
    ({"amount_thresholds_key": ["392"], "amount_thresholds_value": ["lots"]}, "amount_thresholds", "is not an amount"),
    ({"amount_thresholds_key": ["392", "392"], "amount_thresholds_value": ["1", "2"]}, "amount_thresholds", "appears twice"),
    ({"amount_thresholds_key": [""], "amount_thresholds_value": ["300"]}, "amount_thresholds", "choose what it applies to"),
    ({"amount_thresholds_key": ["XXX"], "amount_thresholds_value": ["300"]}, "amount_thresholds", "is not one of the choices"),
    ({"reason": ""}, "reason", "Say why the policy changes"),
])
def test_bad_values_are_refused_on_their_field_and_nothing_is_written(policies, boss, overrides, field, message):
    mine, _ = policies
    r = boss.post(url(RiskPolicy, "change", mine.pk), form(mine, **overrides))
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert field in errors and any(message in e for e in errors[field]), errors
    mine.refresh_from_db()
    assert mine.version == 0 and not RiskPolicyVersion.objects.exists() and not AuditEvent.objects.filter(kind="risk_policy.saved").exists()


def test_the_form_has_no_json_box(policies, boss):
    mine, _ = policies
    mine.amount_thresholds = {"392": "30000"}
    mine.save()
    page = boss.get(url(RiskPolicy, "change", mine.pk)).content.decode()
    assert '<textarea name="amount_thresholds"' not in page and 'name="amount_thresholds_key"' in page
    assert '<option value="392" selected>Japanese Yen (JPY)</option>' in page
    assert 'name="_backtest"' in page and 'name="reason"' in page


def test_the_history_lists_versions_with_their_changes(issuer, policies, boss):
    mine, _ = policies
    risk_policy_save(policy=mine, actor="staff:boss", reason="Initial review")
    mine.challenge_threshold = 40
    mine.amount_thresholds = {"392": "30000"}
    risk_policy_save(policy=mine, actor="staff:hanako", reason="Fraud wave")
    page = boss.get(reverse("admin:threeds_riskpolicy_history", args=[mine.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Fraud wave" in text and "staff:hanako" in text and "Initial review" in text
    assert "Challenge threshold: <del>50</del> → <ins>40</ins>" in text
    assert "Amount threshold JPY: <del>none</del> → <ins>¥30,000</ins>" in text
    assert "First recorded version." in text


def test_two_saves_at_once_get_two_numbers(issuer, policies, transactional_db):
    from django.db import connection

    from tests.concurrency import run_parallel

    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL")
    mine, _ = policies

    def save(i):
        policy = RiskPolicy.objects.get(pk=mine.pk)
        policy.challenge_threshold = 30 + i
        return risk_policy_save(policy=policy, actor=f"staff:editor{i}", reason=f"editor {i}").version

    assert sorted(run_parallel(4, save)) == [2, 3, 4, 5]  # 1: the policy before its first change
    mine.refresh_from_db()
    assert mine.version == 5
    assert sorted(RiskPolicyVersion.objects.filter(policy=mine).values_list("version", flat=True)) == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------- who may do what


def users(issuer, other_issuer):
    return {
        "anonymous": Client(),
        "analyst": client_for(make_staff(issuer, ANALYST, username="analyst")),
        "operator": client_for(make_staff(issuer, OPERATOR, username="operator")),
        "issuer_admin": client_for(make_staff(issuer, ISSUER_ADMIN, username="admin")),
        "other_issuer_admin": client_for(make_staff(other_issuer, ISSUER_ADMIN, username="elsewhere")),
        "superuser": client_for(make_superuser()),
    }


# status of GET change, GET history, POST backtest, POST save
EXPECTED = {
    "anonymous": (302, 302, 302, 302),  # to the login page
    "analyst": (200, 200, 403, 403),
    "operator": (200, 200, 403, 403),
    "issuer_admin": (200, 200, 200, 302),
    "other_issuer_admin": (302, 404, 404, 302),  # not theirs: not found (the change page redirects to the list)
    "superuser": (200, 200, 200, 302),
}


@pytest.mark.parametrize("who", EXPECTED)
def test_role_matrix_for_the_policy_its_history_and_its_backtest(issuer, other_issuer, policies, who):
    mine, _ = policies
    make_tx(issuer, days_ago=1)
    client = users(issuer, other_issuer)[who]
    change = url(RiskPolicy, "change", mine.pk)
    got = (
        client.get(change).status_code,
        client.get(reverse("admin:threeds_riskpolicy_history", args=[mine.pk])).status_code,
        client.post(reverse("admin:threeds_riskpolicy_backtest", args=[mine.pk]), form(mine, challenge_threshold=5)).status_code,
        client.post(change, form(mine, challenge_threshold=45)).status_code,
    )
    assert got == EXPECTED[who]
    mine.refresh_from_db()
    saved = who in ("issuer_admin", "superuser")
    assert mine.challenge_threshold == (45 if saved else 50) and mine.version == (2 if saved else 0)
    if who in ("anonymous", "other_issuer_admin"):
        assert "Challenge threshold" not in client.get(reverse("admin:threeds_riskpolicy_history", args=[mine.pk])).content.decode()


def test_the_backtest_page_shows_the_counts_and_saves_nothing(issuer, policies, boss):
    mine, _ = policies
    small = make_tx(issuer, days_ago=1)
    big = make_tx(issuer, days_ago=2, purchase_amount=40_000, merchant_name="Kyoto Camera")
    r = boss.post(reverse("admin:threeds_riskpolicy_backtest", args=[mine.pk]),
                  form(mine, amounts=[("392", "30000")], reason="", backtest_days="7"))
    assert r.status_code == 200, r.content.decode()[:2000]
    result = r.context["result"]
    assert (result.days, result.replayed, result.flipped) == (7, 2, 1)
    text = r.content.decode()
    assert "Amount threshold JPY: <del>none</del> → <ins>¥30,000</ins>" in text
    assert reverse("admin:threeds_transaction_change", args=[big.acs_trans_id]) in text
    assert reverse("admin:threeds_transaction_change", args=[small.acs_trans_id]) not in text
    assert "¥40,000" in text and "Frictionless → Challenge" in text
    # The publish form carries the draft back to the change page.
    assert 'name="amount_thresholds_value" value="30000"' in text
    mine.refresh_from_db()
    assert mine.amount_thresholds == {} and mine.version == 0 and not RiskPolicyVersion.objects.exists()


def test_a_bad_draft_is_not_backtested(issuer, policies, boss):
    mine, _ = policies
    r = boss.post(reverse("admin:threeds_riskpolicy_backtest", args=[mine.pk]), form(mine, challenge_threshold=0, backtest_days="91"))
    assert r.status_code == 200 and r.context["result"] is None
    text = r.content.decode()
    assert "Between 1 and 99." in text and "Days to replay" in text


def test_an_analyst_reads_the_policy_in_words(issuer, policies):
    mine, _ = policies
    mine.amount_thresholds = {"392": "30000"}
    mine.save()
    page = client_for(make_staff(issuer, ANALYST)).get(url(RiskPolicy, "change", mine.pk))
    text = page.content.decode()
    assert page.status_code == 200 and "<th scope=\"row\">Amount threshold JPY</th><td>¥30,000</td>" in text
    assert 'name="reason"' not in text and 'name="_backtest"' not in text
