"""Backtest of a draft risk policy: the issuer's recent AReqs replayed through the current policy
and the draft, with the same decision code the live AReq uses (risk.decide_facts), to see what
would change before the draft is published.

Each transaction keeps the facts its decision weighed (`Transaction.risk_facts`), so the replay
needs no history query per row. Transactions from before those facts were stored are replayed from
their columns and the rules that fired then: exact for the amount, currency, requestor indicator,
category, new merchant and 3DS Method status; the hour's count is known only when a velocity rule
fired then (otherwise taken as 0), and browser-data mismatches only when they were weighed then.
Those rows are counted as approximated on the page.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from apps.core.display import amount
from apps.threeds.models import RiskPolicy, Transaction
from apps.threeds.risk import CHALLENGE, DECLINE, FRICTIONLESS, RiskFacts, major_units, decide_facts

DEFAULT_DAYS, MAX_DAYS = 30, 90
# Past this many transactions the most recent ones are replayed (and the page says so): the
# backtest runs in the request, and both decisions of a row take ~40 µs of Python (measured), so
# 100,000 rows stay a few seconds, well inside the worker timeout.
MAX_ROWS = 100_000
CHUNK = 5_000
SAMPLES = 20
OUTCOMES = (FRICTIONLESS, CHALLENGE, DECLINE)
FRAUD, GENUINE = "fraud", "genuine"  # apps.analyst's TransactionLabel values, read through the relation

_COLUMNS = ("acs_trans_id", "created_at", "purchase_amount", "purchase_currency", "purchase_exponent", "merchant_name",
            "acquirer_merchant_id", "message_category", "three_ds_requestor_challenge_ind", "three_ds_method",
            "risk_facts", "risk_rules")


@dataclass
class Flip:
    acs_trans_id: str
    created_at: datetime
    amount: str
    merchant: str
    before: str
    after: str
    label: str


@dataclass
class BacktestResult:
    days: int
    since: datetime
    total: int = 0
    replayed: int = 0
    approximated: int = 0
    current: Counter = field(default_factory=Counter)
    draft: Counter = field(default_factory=Counter)
    flips: Counter = field(default_factory=Counter)  # (before, after) → count
    samples: list[Flip] = field(default_factory=list)
    labelled: Counter = field(default_factory=Counter)  # label → count among the replayed
    fraud_frictionless: Counter = field(default_factory=Counter)  # "current"/"draft" → count
    genuine_challenged: Counter = field(default_factory=Counter)  # challenged or declined

    @property
    def sampled(self) -> bool:
        return self.replayed < self.total

    @property
    def flipped(self) -> int:
        return sum(self.flips.values())


def facts_from_row(row: dict) -> tuple[RiskFacts, bool]:
    """The facts of a stored transaction, and whether they were approximated (see the module)."""
    stored = row["risk_facts"] or {}
    approximated = "recent_count" not in stored
    if approximated:
        rules = {rule.get("rule"): rule for rule in row["risk_rules"] or []}
        velocity = rules.get("velocity_exceeded") or rules.get("velocity_high") or {}
        mismatch = rules.get("browser_data_mismatch") or {}
        stored = {"recent_count": velocity.get("count_last_hour", 0), "merchant_known": "new_merchant_for_card" not in rules,
                  "browser_mismatches": mismatch.get("elements", [])}
    areq = {"purchaseAmount": row["purchase_amount"], "purchaseExponent": row["purchase_exponent"]}
    facts = RiskFacts(
        indicator=row["three_ds_requestor_challenge_ind"],
        amount=major_units(areq),
        currency=row["purchase_currency"],
        category=row["message_category"],
        merchant=row["acquirer_merchant_id"] or row["merchant_name"],
        recent_count=int(stored.get("recent_count", 0)),
        merchant_known=bool(stored.get("merchant_known", True)),
        method=row["three_ds_method"],
        browser_mismatches=tuple(stored.get("browser_mismatches") or ()),
    )
    return facts, approximated


def risk_policy_backtest(*, issuer, current: RiskPolicy, draft: RiskPolicy, days: int = DEFAULT_DAYS, now=None,
                         max_rows: int = MAX_ROWS) -> BacktestResult:
    """Replay the issuer's AReqs of the last `days` days that reached the risk decision (a card
    found, active and unexpired) through both policies."""
    days = max(1, min(MAX_DAYS, int(days)))
    since = (now or timezone.now()) - timedelta(days=days)
    result = BacktestResult(days=days, since=since)
    decided = Transaction.objects.filter(issuer=issuer, created_at__gte=since, risk_score__isnull=False)
    result.total = decided.count()
    labels = dict(decided.filter(label__isnull=False).values_list("acs_trans_id", "label__label"))
    rows = decided.order_by("-created_at").values(*_COLUMNS)
    if result.total > max_rows:
        rows = rows[:max_rows]
    for row in rows.iterator(chunk_size=CHUNK):
        facts, approximated = facts_from_row(row)
        before = decide_facts(policy=current, facts=facts).outcome
        after = decide_facts(policy=draft, facts=facts).outcome
        result.replayed += 1
        result.approximated += approximated
        result.current[before] += 1
        result.draft[after] += 1
        label = labels.get(row["acs_trans_id"], "")
        if label:
            result.labelled[label] += 1
            for side, outcome in (("current", before), ("draft", after)):
                if label == FRAUD and outcome == FRICTIONLESS:
                    result.fraud_frictionless[side] += 1
                if label == GENUINE and outcome != FRICTIONLESS:
                    result.genuine_challenged[side] += 1
        if before != after:
            result.flips[(before, after)] += 1
            if len(result.samples) < SAMPLES:
                result.samples.append(Flip(
                    acs_trans_id=str(row["acs_trans_id"]), created_at=row["created_at"],
                    amount=amount(row["purchase_amount"], row["purchase_currency"], row["purchase_exponent"]),
                    merchant=row["merchant_name"], before=before, after=after, label=label,
                ))
    return result
