"""The risk decision: issuer policy turned into a 0–99 score with the rules that fired.

Every rule that fires adds (or, for an accepted exemption, takes off) its weight and is recorded
with it, so the transaction explains its own decision. The same score goes out as CB-SCORE.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import cache

from django.db import connections
from django.db.models import DateTimeField
from django.utils import timezone

from apps.cards.models import Card, Cardholder
from apps.core import sql
from apps.issuers.models import BinGrant, Issuer
from apps.threeds.models import RiskPolicy, Transaction


@dataclass
class Decision:
    score: int
    challenge: bool
    mandated: bool
    velocity_exceeded: bool
    exemption: str  # "" or "low_risk"
    rules: list[dict] = field(default_factory=list)


VELOCITY_WINDOW = timedelta(hours=1)
_CREATED_AT = DateTimeField()  # prepares the window's start as the ORM would (one field, not one per AReq)
KNOWN_MERCHANT_STATUSES = ("Y", "A")


def risk_policy_for(issuer) -> RiskPolicy:
    """The issuer's policy, created with the defaults on first use. The AReq's card query brings
    it along (`select_related("issuer__risk_policy")`), so reading it costs no statement there and
    is never stale: no per-process cache that an admin edit would have to invalidate."""
    try:
        return issuer.risk_policy
    except RiskPolicy.DoesNotExist:
        return RiskPolicy.objects.get_or_create(issuer=issuer)[0]


def _merchant(areq: dict) -> str:
    return areq.get("acquirerMerchantID") or areq.get("merchantName", "")


@cache
def _card_sql(*, with_merchant: bool, using: str) -> str:
    """The AReq's one read: the card by fingerprint, its issuer, the issuer's risk policy (NULLs
    when it has none yet), its cardholder, and the card's history that decide() needs: the count
    of the last hour (velocity) and whether the card has a successful authentication at this
    merchant. Built once from the models; `card_for_areq` turns the row into instances.

    The merchant look-up is a scalar "first matching id or NULL" rather than EXISTS: PostgreSQL
    may run an EXISTS in the select list as a hashed subplan over every matching row of every
    card (seen: 17 ms on 8k rows); a scalar subquery with LIMIT 1 runs per card, on the
    (card, acquirer_merchant_id) index.

    Routing by grant (SPEC §2, §3.1): the card is found only through its own grant, which must
    belong to the card's issuer and hold the PAN's prefix. Grants never overlap (a database
    constraint), so at most one issuer can answer and, a PAN being enrolled once per issuer, at
    most one card: the ORDER BY only keeps the statement deterministic should that ever change."""
    def q(name):
        return sql.quote(name, using=using)

    def col(model, name):
        return q(model._meta.get_field(name).column)

    tx = q(Transaction._meta.db_table)
    statuses = ", ".join(f"%(known{i})s" for i in range(len(KNOWN_MERCHANT_STATUSES)))
    known = (
        f"(SELECT t.{col(Transaction, 'acs_trans_id')} FROM {tx} t WHERE t.{col(Transaction, 'card')} = c.{col(Card, 'id')}"
        f" AND t.{col(Transaction, 'acquirer_merchant_id')} = %(merchant)s AND t.{col(Transaction, 'trans_status')} IN ({statuses}) LIMIT 1)"
        if with_merchant else "NULL"
    )
    return (
        f"SELECT {sql.columns_sql(Card, 'c', using=using)}, {sql.columns_sql(Issuer, 'i', using=using)},"
        f" {sql.columns_sql(RiskPolicy, 'p', using=using)}, {sql.columns_sql(Cardholder, 'h', using=using)},"
        f" (SELECT COUNT(*) FROM {tx} t WHERE t.{col(Transaction, 'card')} = c.{col(Card, 'id')}"
        f" AND t.{col(Transaction, 'created_at')} >= %(since)s), {known}"
        f" FROM {q(Card._meta.db_table)} c"
        f" INNER JOIN {q(Issuer._meta.db_table)} i ON i.{col(Issuer, 'id')} = c.{col(Card, 'issuer')}"
        f" INNER JOIN {q(BinGrant._meta.db_table)} g ON g.{col(BinGrant, 'id')} = c.{col(Card, 'grant')}"
        f" AND g.{col(BinGrant, 'issuer')} = c.{col(Card, 'issuer')}"
        f" AND g.{col(BinGrant, 'low')} <= %(prefix)s AND g.{col(BinGrant, 'high')} >= %(prefix)s"
        f" INNER JOIN {q(Cardholder._meta.db_table)} h ON h.{col(Cardholder, 'id')} = c.{col(Card, 'cardholder')}"
        f" LEFT OUTER JOIN {q(RiskPolicy._meta.db_table)} p ON p.{col(RiskPolicy, 'issuer')} = i.{col(Issuer, 'id')}"
        f" WHERE c.{col(Card, 'pan_fingerprint')} = %(fingerprint)s ORDER BY c.{col(Card, 'id')} LIMIT 1"
    )


def card_for_areq(*, fingerprint: str, prefix: int, areq: dict, now, using: str = "default"):
    """The card of this PAN fingerprint, inside the grant holding the PAN's prefix key
    (`pan_prefix_key`), with its issuer, risk policy, cardholder and history (see _card_sql), in
    one statement; or None. decide() must get the same areq and now."""
    connection = connections[using]
    merchant = _merchant(areq)
    since = _CREATED_AT.get_db_prep_value(now - VELOCITY_WINDOW, connection)
    # Usually the AReq's first statement: it is also the connection's health check (read_one).
    row = sql.read_one(_card_sql(with_merchant=bool(merchant), using=using), {
        "fingerprint": fingerprint, "prefix": prefix, "since": since, "merchant": merchant,
        **{f"known{i}": status for i, status in enumerate(KNOWN_MERCHANT_STATUSES)},
    }, using=using)
    if row is None:
        return None
    widths = [len(model._meta.concrete_fields) for model in (Card, Issuer, RiskPolicy, Cardholder)]
    parts, at = [], 0
    for width in widths:
        parts.append(row[at:at + width])
        at += width
    card = sql.from_row(Card, parts[0], using=using)
    issuer = sql.from_row(Issuer, parts[1], using=using)
    policy = sql.from_row(RiskPolicy, parts[2], using=using) if parts[2][0] is not None else None
    holder = sql.from_row(Cardholder, parts[3], using=using)
    # The related objects cached as select_related would: the reverse one-to-one cached as None
    # makes issuer.risk_policy raise DoesNotExist, as without a policy row.
    Card.issuer.field.set_cached_value(card, issuer)
    Card.cardholder.field.set_cached_value(card, holder)
    Issuer.risk_policy.related.set_cached_value(issuer, policy)
    if policy is not None:
        RiskPolicy.issuer.field.set_cached_value(policy, issuer)
    card.risk_recent_count, card.risk_merchant_known_id = row[at], row[at + 1]
    return card


def _recent_count(card, now) -> int:
    if hasattr(card, "risk_recent_count"):
        return card.risk_recent_count
    return Transaction.objects.filter(card=card, created_at__gte=now - VELOCITY_WINDOW).count()


def _merchant_known(card, merchant: str) -> bool:
    if hasattr(card, "risk_merchant_known_id"):
        return card.risk_merchant_known_id is not None
    return Transaction.objects.filter(card=card, acquirer_merchant_id=merchant, trans_status__in=KNOWN_MERCHANT_STATUSES).exists()


def _major_units(areq: dict) -> Decimal | None:
    amount, exponent = areq.get("purchaseAmount"), areq.get("purchaseExponent")
    if amount in (None, "") or exponent in (None, ""):
        return None
    return Decimal(int(amount)).scaleb(-int(exponent))


def _limit(table: dict, currency: str) -> Decimal | None:
    value = table.get(currency)
    return Decimal(value) if value is not None else None


def decide(*, policy: RiskPolicy, card, areq: dict, now=None) -> Decision:
    now = now or timezone.now()
    rules: list[dict] = [{"rule": "base", "weight": policy.base_score}]
    score = policy.base_score
    mandated = False
    exemption = ""

    def fire(rule: str, weight: int, **detail):
        nonlocal score
        score += weight
        rules.append({"rule": rule, "weight": weight, **detail})

    indicator = areq.get("threeDSRequestorChallengeInd", "")
    amount = _major_units(areq)
    currency = areq.get("purchaseCurrency", "")

    if indicator == "04":
        mandated = True
        fire("challenge_mandated_by_requestor", 0, indicator=indicator)
    elif indicator == "03":
        fire("requestor_prefers_challenge", policy.requestor_prefers_challenge_weight, indicator=indicator)

    threshold = _limit(policy.amount_thresholds, currency)
    if amount is not None and threshold is not None and amount > threshold:
        fire("amount_over_threshold", policy.amount_weight, amount=str(amount), threshold=str(threshold), currency=currency)

    if areq.get("messageCategory") == "02":
        fire("non_payment", policy.non_payment_weight)

    recent = _recent_count(card, now)
    velocity_exceeded = recent >= policy.velocity_max_per_hour
    if velocity_exceeded:
        fire("velocity_exceeded", 0, count_last_hour=recent, limit=policy.velocity_max_per_hour)
    elif recent >= policy.velocity_warn_per_hour:
        fire("velocity_high", policy.velocity_weight, count_last_hour=recent)

    merchant = _merchant(areq)
    if merchant and not _merchant_known(card, merchant):
        fire("new_merchant_for_card", policy.new_merchant_weight)

    # Exemptions asked by the requestor, granted within the issuer's limits and never over a mandate.
    if indicator in ("05", "07") and not mandated and amount is not None:
        limit = _limit(policy.tra_max_amounts if indicator == "05" else policy.sca_performed_max_amounts, currency)
        if limit is not None and amount <= limit:
            exemption = "low_risk" if indicator == "05" else ""
            fire("tra_exemption" if indicator == "05" else "sca_already_performed", -policy.exemption_credit, limit=str(limit))

    score = max(0, min(99, score))
    challenge = mandated or score >= policy.challenge_threshold
    if challenge:
        exemption = ""
    return Decision(score=score, challenge=challenge, mandated=mandated, velocity_exceeded=velocity_exceeded, exemption=exemption, rules=rules)
