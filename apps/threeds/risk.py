"""The risk decision: issuer policy turned into a 0–99 score with the rules that fired.

Every rule that fires adds (or, for an accepted exemption, takes off) its weight and is recorded
with it, so the transaction explains its own decision. The same score goes out as CB-SCORE.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.threeds import areq_store
from apps.threeds.method import MISSING, browser_mismatches
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


def card_for_areq(*, fingerprint: str, prefix: int, areq: dict, now, using: str = "default",
                  method_trans_id=None, method_since=None):
    """The card of this PAN fingerprint, inside the grant holding the PAN's prefix key
    (`pan_prefix_key`), with its issuer, risk policy, cardholder and the history decide() reads
    (the count of the last hour, whether the card has succeeded at this merchant), and with
    `method_trans_id` the 3DS Method's data (`card.method_data`), in one statement
    (areq_store.read_card); or None. decide() must get the same areq and now."""
    return areq_store.read_card(fingerprint=fingerprint, prefix=prefix, since=now - VELOCITY_WINDOW,
                                merchant=_merchant(areq), statuses=KNOWN_MERCHANT_STATUSES, using=using,
                                method_trans_id=method_trans_id, method_since=method_since)


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


def decide(*, policy: RiskPolicy, card, areq: dict, now=None, method: str = "", method_data: dict | None = None) -> Decision:
    """`method` is the transaction's three_ds_method (SPEC §3.8) and `method_data` what the 3DS
    Method page collected, if anything."""
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

    # 3DS Method (SPEC §3.8). Recorded only when the issuer weighs it (weights default to 0), so
    # policies that do not use it keep their decisions and their explanations unchanged.
    if method == MISSING and policy.three_ds_method_missing_weight:
        fire("three_ds_method_missing", policy.three_ds_method_missing_weight)
    if method_data and policy.browser_data_mismatch_weight:
        mismatched = browser_mismatches(areq, method_data)
        if mismatched:
            fire("browser_data_mismatch", policy.browser_data_mismatch_weight, elements=mismatched)

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


@transaction.atomic
def risk_policy_save(*, policy, actor: str, fields: list[str] | None = None):
    """Validate and save an issuer's risk policy (new or changed); `fields` names what changed."""
    policy.full_clean()
    policy.save()
    audit_record(issuer=policy.issuer, kind="risk_policy.saved", actor=actor, obj=policy,
                 data={"fields": sorted(fields or [])})
    return policy
