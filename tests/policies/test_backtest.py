"""Backtest of a draft risk policy: counts checked against transactions whose outcomes were worked
out by hand, labelled ones included; only the issuer's own, only its recent, bounded."""

import pytest

from apps.analyst.models import TransactionLabel
from apps.threeds.backtest import risk_policy_backtest
from apps.threeds.models import RiskPolicy
from apps.threeds.risk import CHALLENGE, DECLINE, FRICTIONLESS
from tests.policies.conftest import make_tx
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

OLD_ROW_RULES = [{"rule": "base", "weight": 10}, {"rule": "velocity_high", "weight": 30, "count_last_hour": 5},
                 {"rule": "new_merchant_for_card", "weight": 30}]


def label(tx, value):
    TransactionLabel.objects.create(transaction=tx, issuer=tx.issuer, label=value)


@pytest.fixture
def history(issuer, other_issuer, risk_policy):
    """In force: base 10, threshold 50, ¥30,000 → +60, new merchant +30, from 4 an hour +30, 10 declined.
    Each row says its score in force → in the draft (threshold 40, ¥20,000, 6 an hour declined)."""
    rows = {
        "small": make_tx(issuer, days_ago=1),  # 10 → 10: frictionless both
        "mid": make_tx(issuer, days_ago=2, purchase_amount=25_000, merchant_name="Kyoto Camera"),  # 10 → 70: F → C
        "new_merchant": make_tx(issuer, days_ago=3, risk_facts={"recent_count": 0, "merchant_known": False}),  # 40 → 40: F → C
        "velocity": make_tx(issuer, days_ago=4, risk_facts={"recent_count": 7, "merchant_known": True}),  # 40 → declined: F → D
        "big": make_tx(issuer, days_ago=5, purchase_amount=50_000),  # 70 → 70: C both
        # Recorded before the facts were kept: replayed from its rules (5 in the hour, new merchant): 70 → 70.
        "old": make_tx(issuer, days_ago=6, risk_facts={}, risk_rules=OLD_ROW_RULES),
        "fraud_through": make_tx(issuer, days_ago=7),  # 10 → 10: F both
        "outside_30_days": make_tx(issuer, days_ago=40),  # F both, only in a 90-day backtest
        "no_decision": make_tx(issuer, days_ago=1, risk_score=None, ares_trans_status="N", trans_status="N"),  # lost card: not replayed
        "other_issuer": make_tx(other_issuer, days_ago=1, purchase_amount=25_000),
    }
    label(rows["mid"], "genuine")
    label(rows["big"], "genuine")
    label(rows["new_merchant"], "fraud")
    label(rows["velocity"], "fraud")
    label(rows["fraud_through"], "fraud")
    label(rows["other_issuer"], "fraud")
    return rows


def draft_of(policy, **changes) -> RiskPolicy:
    draft = RiskPolicy.objects.get(pk=policy.pk)
    for name, value in changes.items():
        setattr(draft, name, value)
    return draft


DRAFT = {"challenge_threshold": 40, "amount_thresholds": {"392": "20000"}, "velocity_max_per_hour": 6}


def test_the_counts_are_the_ones_worked_out_by_hand(issuer, risk_policy, history):
    result = risk_policy_backtest(issuer=issuer, current=risk_policy, draft=draft_of(risk_policy, **DRAFT), days=30)
    assert (result.total, result.replayed, result.approximated, result.sampled) == (7, 7, 1, False)
    assert dict(result.current) == {FRICTIONLESS: 5, CHALLENGE: 2}
    assert dict(result.draft) == {FRICTIONLESS: 2, CHALLENGE: 4, DECLINE: 1}
    assert dict(result.flips) == {(FRICTIONLESS, CHALLENGE): 2, (FRICTIONLESS, DECLINE): 1}
    assert {s.acs_trans_id for s in result.samples} == {str(history[k].acs_trans_id) for k in ("mid", "new_merchant", "velocity")}
    assert [s.merchant for s in result.samples][0] == "Kyoto Camera"  # newest first
    assert result.labelled == {"fraud": 3, "genuine": 2}
    assert result.fraud_frictionless == {"current": 3, "draft": 1}
    assert result.genuine_challenged == {"current": 1, "draft": 2}


def test_the_period_is_chosen_and_capped_at_90_days(issuer, risk_policy, history):
    assert risk_policy_backtest(issuer=issuer, current=risk_policy, draft=risk_policy, days=90).total == 8
    assert risk_policy_backtest(issuer=issuer, current=risk_policy, draft=risk_policy, days=365).days == 90


def test_the_same_policy_flips_nothing(issuer, risk_policy, history):
    result = risk_policy_backtest(issuer=issuer, current=risk_policy, draft=draft_of(risk_policy), days=30)
    assert result.flipped == 0 and result.current == result.draft


def test_past_the_bound_the_most_recent_are_replayed_and_it_says_so(issuer, risk_policy, history):
    result = risk_policy_backtest(issuer=issuer, current=risk_policy, draft=draft_of(risk_policy, **DRAFT), days=30, max_rows=3)
    assert (result.total, result.replayed, result.sampled) == (7, 3, True)
    assert dict(result.draft) == {FRICTIONLESS: 1, CHALLENGE: 2}  # small, mid, new_merchant


def test_a_live_areq_keeps_the_facts_and_replays_to_its_own_decision(client, cardholder, issuer):
    """The backtest decides with the live path's code: an AReq decided now, replayed through the
    same policy, gets the decision it got."""
    from apps.threeds.simulator.messages import areq
    from tests.factories import make_card, make_phone
    from tests.support.acs import post_areq

    pan = "4111111111111111"
    make_card(cardholder=cardholder, pan=pan)
    make_phone(cardholder)
    policy = RiskPolicy.objects.create(issuer=issuer, amount_thresholds={"392": "30000"})
    answers = [post_areq(client, areq(pan=pan, purchaseAmount=str(amount), purchaseCurrency="392", purchaseExponent="0"))["transStatus"]
               for amount in (1_000, 40_000)]
    assert answers == ["Y", "C"]
    tx = issuer.transactions.order_by("created_at").first()
    # The facts the backtest replays, with the policy's threshold the explanation reads.
    assert tx.risk_facts == {"recent_count": 0, "merchant_known": False, "browser_mismatches": [], "threshold": 50}
    result = risk_policy_backtest(issuer=issuer, current=policy, draft=policy, days=1)
    assert dict(result.current) == {FRICTIONLESS: 1, CHALLENGE: 1} and result.approximated == 0
