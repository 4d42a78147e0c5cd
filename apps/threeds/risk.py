"""The risk decision: issuer policy turned into a 0–99 score with the rules that fired.

Every rule that fires adds (or, for an accepted exemption, takes off) its weight and is recorded
with it, so the transaction explains its own decision. The same score goes out as CB-SCORE.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone, translation

from apps.audit.services import audit_record
from apps.threeds import areq_store
from apps.threeds.method import MISSING, browser_mismatches
from apps.threeds.models import RiskPolicy, RiskPolicyVersion, Transaction
from apps.threeds.policy_words import risk_policy_changes


FRICTIONLESS, CHALLENGE, DECLINE = "frictionless", "challenge", "decline"


@dataclass
class Decision:
    score: int
    challenge: bool
    mandated: bool
    velocity_exceeded: bool
    exemption: str  # "" or "low_risk"
    rules: list[dict] = field(default_factory=list)
    facts: "RiskFacts | None" = None

    @property
    def outcome(self) -> str:
        """frictionless, challenge or decline: what the risk decision alone asks for."""
        if self.velocity_exceeded:
            return DECLINE
        return CHALLENGE if self.challenge else FRICTIONLESS


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


def major_units(areq: dict) -> Decimal | None:
    amount, exponent = areq.get("purchaseAmount"), areq.get("purchaseExponent")
    if amount in (None, "") or exponent in (None, ""):
        return None
    return Decimal(int(amount)).scaleb(-int(exponent))


def _limit(table: dict, currency: str) -> Decimal | None:
    value = table.get(currency)
    return Decimal(value) if value is not None else None


@dataclass(frozen=True)
class RiskFacts:
    """What a decision weighs about one AReq, as known when it arrived. Stored on the transaction
    (`Transaction.risk_facts`, the parts not in its own columns) so that a backtest replays the
    decision exactly, without the card's history as it is today."""

    indicator: str
    amount: Decimal | None
    currency: str
    category: str
    merchant: str
    recent_count: int
    merchant_known: bool
    method: str = ""
    browser_mismatches: tuple = ()

    def stored(self) -> dict:
        return {"recent_count": self.recent_count, "merchant_known": self.merchant_known,
                "browser_mismatches": list(self.browser_mismatches)}


def risk_facts(*, card, areq: dict, now=None, method: str = "", method_data: dict | None = None) -> RiskFacts:
    """The facts of an AReq, reading the card's history (velocity, merchants) once."""
    now = now or timezone.now()
    merchant = _merchant(areq)
    return RiskFacts(
        indicator=areq.get("threeDSRequestorChallengeInd", ""),
        amount=major_units(areq),
        currency=areq.get("purchaseCurrency", ""),
        category=areq.get("messageCategory", ""),
        merchant=merchant,
        recent_count=_recent_count(card, now),
        merchant_known=_merchant_known(card, merchant) if merchant else True,
        method=method,
        browser_mismatches=tuple(browser_mismatches(areq, method_data)) if method_data else (),
    )


def decide(*, policy: RiskPolicy, card, areq: dict, now=None, method: str = "", method_data: dict | None = None) -> Decision:
    """`method` is the transaction's three_ds_method (SPEC §3.8) and `method_data` what the 3DS
    Method page collected, if anything."""
    return decide_facts(policy=policy, facts=risk_facts(card=card, areq=areq, now=now, method=method, method_data=method_data))


def decide_facts(*, policy: RiskPolicy, facts: RiskFacts) -> Decision:
    """The decision as a pure function of the policy's values and the AReq's facts: the live
    AReq and the backtest (apps.threeds.backtest) both decide here. `policy` may be unsaved."""
    rules: list[dict] = [{"rule": "base", "weight": policy.base_score}]
    score = policy.base_score
    mandated = False
    exemption = ""

    def fire(rule: str, weight: int, **detail):
        nonlocal score
        score += weight
        rules.append({"rule": rule, "weight": weight, **detail})

    indicator, amount, currency = facts.indicator, facts.amount, facts.currency

    if indicator == "04":
        mandated = True
        fire("challenge_mandated_by_requestor", 0, indicator=indicator)
    elif indicator == "03":
        fire("requestor_prefers_challenge", policy.requestor_prefers_challenge_weight, indicator=indicator)

    threshold = _limit(policy.amount_thresholds, currency)
    if amount is not None and threshold is not None and amount > threshold:
        fire("amount_over_threshold", policy.amount_weight, amount=str(amount), threshold=str(threshold), currency=currency)

    if facts.category == "02":
        fire("non_payment", policy.non_payment_weight)

    recent = facts.recent_count
    velocity_exceeded = recent >= policy.velocity_max_per_hour
    if velocity_exceeded:
        fire("velocity_exceeded", 0, count_last_hour=recent, limit=policy.velocity_max_per_hour)
    elif recent >= policy.velocity_warn_per_hour:
        fire("velocity_high", policy.velocity_weight, count_last_hour=recent)

    if facts.merchant and not facts.merchant_known:
        fire("new_merchant_for_card", policy.new_merchant_weight)

    # 3DS Method (SPEC §3.8). Recorded only when the issuer weighs it (weights default to 0), so
    # policies that do not use it keep their decisions and their explanations unchanged.
    if facts.method == MISSING and policy.three_ds_method_missing_weight:
        fire("three_ds_method_missing", policy.three_ds_method_missing_weight)
    if facts.browser_mismatches and policy.browser_data_mismatch_weight:
        fire("browser_data_mismatch", policy.browser_data_mismatch_weight, elements=list(facts.browser_mismatches))

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
    return Decision(score=score, challenge=challenge, mandated=mandated, velocity_exceeded=velocity_exceeded,
                    exemption=exemption, rules=rules, facts=facts)


def risk_policy_save(*, policy: RiskPolicy, actor: str, reason: str) -> RiskPolicyVersion:
    """Validate and save an issuer's risk policy (new or changed) with a new immutable version
    saying who, when and why, and an audit event with the changes in words; all or nothing."""
    policy.full_clean()
    with transaction.atomic():
        previous = None
        if policy.pk:
            # Numbered under the policy's row lock: two editors saving at once get two numbers.
            stored = RiskPolicy.objects.select_for_update().get(pk=policy.pk)
            policy.version = stored.version
            previous = policy.versions.filter(version=policy.version).values_list("settings", flat=True).first()
            if previous is None:
                # A policy from before versions (or made with the defaults on first use): its state
                # before this first change becomes version 1, so the change has a diff like any other.
                policy.version += 1
                previous = stored.snapshot()
                RiskPolicyVersion.objects.create(policy=policy, version=policy.version, settings=previous,
                                                 created_by="system", reason="")
        policy.version += 1
        policy.save()
        settings = policy.snapshot()
        version = RiskPolicyVersion.objects.create(policy=policy, version=policy.version, settings=settings,
                                                   created_by=actor, reason=reason)
        with translation.override("en"):
            changed = [str(change) for change in risk_policy_changes(previous, settings)] if previous is not None else []
        audit_record(issuer=policy.issuer, kind="risk_policy.saved", actor=actor, obj=policy,
                     data={"version": version.version, "reason": reason, "changes": changed,
                           "fields": sorted(k for k in settings if previous is None or previous.get(k) != settings[k])})
    return version
