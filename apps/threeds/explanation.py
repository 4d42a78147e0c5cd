"""Why a transaction ended as it did, in words (SPEC §5.1 `explanation`, §5.6 admin and analyst).

    explain(transaction, *, events=None) -> str
    explanation_for(transaction, *, events=None) -> Explanation   # the same, with a machine key

Both read only what was recorded when it happened — the transaction's result fields, risk rules
and `risk_facts` (the policy's threshold and, for a decline for want of a method, why neither the
app nor an SMS could be used; older transactions have these in their `threeds.ares_sent` audit
event), its challenge, the audit events of its acsTransID (`threeds.oob_fallback` the app's
reason before an SMS took over) and, for an SMS limit,
the OTP policy version the refused session ran under. Nothing is decided again, so a policy
changed since does not change an old transaction's explanation.

`events`: the transaction's audit events if the caller has them already (the analyst page loads
the timeline anyway); else they are read here (one query). The words are in the active language
(gettext; English and Japanese catalogs in apps/threeds/locale). Keep these signatures: the admin,
the analyst workspace and the issuer API call them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from apps.core import display
from apps.threeds import emv
from apps.threeds.models import Challenge, Transaction

__all__ = ["Explanation", "explain", "explanation_for"]


@dataclass(frozen=True)
class Explanation:
    """`outcome`: a stable machine key (e.g. `declined_no_method`, `challenge_sms_verified`);
    `text`: the explanation in words, in the active language."""

    outcome: str
    text: str


def explain(transaction: Transaction, *, events=None) -> str:
    return explanation_for(transaction, events=events).text


def explanation_for(transaction: Transaction, *, events=None) -> Explanation:
    tx = transaction
    facts = _Facts(tx, events)
    challenge = _challenge_of(tx)
    if challenge is not None:
        return _challenged(tx, challenge, facts)
    return _decided_at_areq(tx, facts)


# ---------------------------------------------------------------- the facts recorded


class _Facts:
    """The audit events of the transaction, read once and only when needed."""

    def __init__(self, tx: Transaction, events):
        self._tx = tx
        self._events = list(events) if events is not None else None

    @property
    def events(self) -> list:
        if self._events is None:
            from apps.threeds.selectors import transaction_timeline

            self._events = list(transaction_timeline(tx=self._tx)) if self._tx.issuer_id else []
        return self._events

    def first(self, kind: str) -> dict | None:
        return next((e.data or {} for e in self.events if e.kind == kind), None)

    @property
    def decision(self) -> dict:
        """The policy's threshold and why no method could be used, as decided: in the
        transaction's `risk_facts`; for transactions recorded before it kept them, in the
        `threeds.ares_sent` audit event."""
        stored = self._tx.risk_facts or {}
        if "threshold" in stored:
            return stored
        return self.first("threeds.ares_sent") or {}


def _challenge_of(tx: Transaction) -> Challenge | None:
    return getattr(tx, "challenge", None)


def _status(tx: Transaction, status: str | None = None, reason: str | None = None) -> str:
    """"N / 13", "Y": how the result reads in EMV terms."""
    status = status if status is not None else (tx.trans_status or tx.ares_trans_status)
    reason = reason if reason is not None else tx.trans_status_reason
    return f"{status} / {reason}" if reason else status


def _rule(tx: Transaction, name: str) -> dict | None:
    return next((r for r in (tx.risk_rules or []) if isinstance(r, dict) and r.get("rule") == name), None)


def _factor(tx: Transaction, rule: dict) -> str:
    name, weight = rule.get("rule"), rule.get("weight", 0)
    if name == "base":
        return _("base %(weight)s") % {"weight": weight}
    if name == "amount_over_threshold":
        words = _("amount over %(threshold)s") % {"threshold": _major(rule.get("threshold"), rule.get("currency"))}
    elif name == "velocity_high":
        words = _("%(count)s authentications of the card in the last hour") % {"count": rule.get("count_last_hour")}
    elif name == "velocity_exceeded":
        words = _("velocity limit reached")
    elif name == "browser_data_mismatch":
        words = _("browser data differ from the 3DS Method's (%(elements)s)") % {"elements": ", ".join(rule.get("elements") or [])}
    else:
        words = _rule_label(str(name))
    return f"{words} {weight:+d}" if weight else words


def _major(amount: str | None, currency: str | None) -> str:
    # A threshold is kept in major units; display.amount takes minor units and an exponent of 0.
    if amount in (None, ""):
        return "—"
    if "." in amount:
        whole, fraction = amount.split(".", 1)
        return display.amount(int(whole + fraction), currency, len(fraction))
    return display.amount(int(amount), currency, 0)


def _rule_label(name: str) -> str:
    return {
        "challenge_mandated_by_requestor": _("challenge mandated by the 3DS Requestor (indicator 04)"),
        "requestor_prefers_challenge": _("the 3DS Requestor prefers a challenge (indicator 03)"),
        "non_payment": _("non-payment authentication"),
        "new_merchant_for_card": _("first authentication of the card at this merchant"),
        "three_ds_method_missing": _("3DS Method data missing"),
        "tra_exemption": _("low-risk (TRA) exemption requested, within the limit"),
        "sca_already_performed": _("SCA already performed (indicator 07), within the limit"),
    }.get(name, name)


def _score(tx: Transaction, facts: _Facts) -> str:
    """"Risk score 70 (threshold 50): base 10, amount over ¥30,000 +60." — or "" without a score."""
    if tx.risk_score is None:
        return ""
    factors = pgettext("list separator", ", ").join(
        _factor(tx, r) for r in (tx.risk_rules or []) if isinstance(r, dict) and _counts(r))
    threshold = facts.decision.get("threshold")
    if threshold is not None:
        head = _("Risk score %(score)s (challenge threshold %(threshold)s)") % {"score": tx.risk_score, "threshold": threshold}
    else:
        head = _("Risk score %(score)s") % {"score": tx.risk_score}
    return _("%(head)s: %(factors)s.") % {"head": head, "factors": factors} if factors else _("%(head)s.") % {"head": head}


def _counts(rule: dict) -> bool:
    # A rule the policy gives no weight changed nothing, except those that decide by themselves.
    return bool(rule.get("weight")) or rule.get("rule") in ("base", "challenge_mandated_by_requestor", "velocity_exceeded")


def _why_challenge(tx: Transaction, facts: _Facts) -> str:
    if _rule(tx, "challenge_mandated_by_requestor"):
        return _("the 3DS Requestor mandated a challenge")
    threshold = facts.decision.get("threshold")
    if threshold is not None and tx.risk_score is not None:
        return _("the risk score %(score)s reached the challenge threshold %(threshold)s") % {
            "score": tx.risk_score, "threshold": threshold}
    return _("the risk decision required a challenge")


# ---------------------------------------------------------------- decided at the AReq


def _decided_at_areq(tx: Transaction, facts: _Facts) -> Explanation:
    status, reason = tx.trans_status or tx.ares_trans_status, tx.trans_status_reason
    score = _score(tx, facts)

    def out(outcome: str, text: str, *, with_score: bool = False) -> Explanation:
        return Explanation(outcome, f"{text} {score}" if with_score and score else text)

    if reason == emv.REASON_NO_CARD_RECORD:
        return out("declined_no_card_record", _(
            "No card of the issuer has this card number, or the number lies outside the issuer's BIN ranges: "
            "no card record (%(status)s).") % {"status": _status(tx)})
    if reason == emv.REASON_LOST_STOLEN:
        return out("declined_lost_stolen", _("The card is reported lost or stolen: declined (%(status)s).") % {"status": _status(tx)})
    if reason == emv.REASON_TRANSACTION_NOT_PERMITTED:
        return out("declined_card_suspended", _(
            "The card was suspended or closed: transaction not permitted (%(status)s).") % {"status": _status(tx)})
    if reason == emv.REASON_CARD_EXPIRED:
        if tx.card is not None:
            return out("declined_card_expired", _("The card had expired (expiry %(expiry)s): declined (%(status)s).") % {
                "expiry": tx.card.expiry, "status": _status(tx)})
        return out("declined_card_expired", _("The card had expired: declined (%(status)s).") % {"status": _status(tx)})
    if reason == emv.REASON_FREQUENCY_LIMIT:
        rule = _rule(tx, "velocity_exceeded") or {}
        return out("declined_velocity", _(
            "Velocity limit: %(count)s authentications of this card in the last hour, the limit is %(limit)s: "
            "declined (%(status)s).") % {"count": rule.get("count_last_hour", "?"), "limit": rule.get("limit", "?"),
                                         "status": _status(tx)})
    if reason == emv.REASON_3RI_NOT_SUPPORTED:
        return out("declined_3ri", _(
            "A challenge was needed (%(why)s), but a 3RI authentication has no cardholder present to challenge: "
            "declined (%(status)s).") % {"why": _why_challenge(tx, facts), "status": _status(tx)}, with_score=True)
    if reason == emv.REASON_NO_METHOD or status == "A":  # an AReq answers A only for want of a method
        why = _no_method_words(facts.decision.get("no_method"))
        if status == "A":
            return out("attempt_no_method", _(
                "A challenge was needed (%(why_challenge)s) but there is no way to challenge the cardholder: %(why)s. "
                "The policy answers an attempt instead (A).") % {"why_challenge": _why_challenge(tx, facts), "why": why},
                with_score=True)
        return out("declined_no_method", _(
            "A challenge was needed (%(why_challenge)s) but there is no way to challenge the cardholder: %(why)s. "
            "Declined by policy (%(status)s).") % {"why_challenge": _why_challenge(tx, facts), "why": why, "status": _status(tx)},
            with_score=True)
    if status == "U" and reason == emv.REASON_ACS_TECHNICAL:
        return out("technical", _(
            "A technical problem at the ACS stopped the authentication; nothing was decided about the cardholder "
            "(%(status)s).") % {"status": _status(tx)})
    if status == "Y":
        threshold = facts.decision.get("threshold")
        if threshold is not None:
            text = _("Frictionless: the risk score %(score)s is below the challenge threshold %(threshold)s, so the "
                     "cardholder was authenticated without a challenge (Y).") % {"score": tx.risk_score, "threshold": threshold}
        else:
            text = _("Frictionless: the risk score %(score)s did not require a challenge, so the cardholder was "
                     "authenticated without a challenge (Y).") % {"score": tx.risk_score}
        if tx.exemption == "low_risk":
            text = f"{text} {_('A low-risk (TRA) exemption was granted.')}"
        return out("frictionless", text, with_score=True)
    return out("other", _("Result %(status)s: %(meaning)s.") % {
        "status": _status(tx), "meaning": emv.reason_text(reason) if reason else emv.trans_status_text(status)}, with_score=True)


def _no_method_words(no_method: dict | None) -> str:
    if not no_method:  # recorded before the reasons were
        return _("no verified primary phone for an SMS code and no active device for the app")
    sms = {
        "no_phone": _("no phone is enrolled for an SMS code"),
        "phone_unverified": _("the cardholder's phone is not verified, so no SMS code can be sent"),
        "no_verified_primary": _("no verified phone is the primary one, so no SMS code can be sent"),
    }.get(no_method.get("sms"), _("no verified primary phone for an SMS code"))
    oob = {
        "no_active_device": _("no device is enrolled in the issuer's app"),
        "not_allowed": _("the policy does not allow app (OOB) challenges"),
        "not_configured": _("app (OOB) authentication is not configured for the issuer"),
    }.get(no_method.get("oob"), _("no active device for the app"))
    return _("%(sms)s, and %(oob)s") % {"sms": sms, "oob": oob}


# ---------------------------------------------------------------- challenged


def _fallback_words(reason: str) -> str:
    return {
        "cancelled_in_app": _("the cardholder cancelled in the app"),
        "oob_timeout": _("the app did not answer in time"),
        "push_failed": _("the notification to the app could not be delivered"),
        "push_rate_limited": _("notifications to the device were rate-limited"),
        "assertion_failed": _("the app's approval could not be verified"),
        "device_blocked": _("the device was blocked"),
        "no_active_device": _("the cardholder's device is no longer active"),
    }.get(reason, reason)


def _method_words(method: str) -> str:
    return _("the app (OOB)") if method == Challenge.OOB else _("an SMS code")


def _challenged(tx: Transaction, challenge: Challenge, facts: _Facts) -> Explanation:
    intro = _("Challenged because %(why)s.") % {"why": _why_challenge(tx, facts)}
    score = _score(tx, facts)

    def out(outcome: str, text: str) -> Explanation:
        return Explanation(outcome, " ".join(part for part in (intro, text, score) if part))

    if challenge.decoupled:
        return _decoupled(tx, challenge, out)
    fallback = facts.first("threeds.oob_fallback")
    steps: list[str] = []
    if fallback is not None and fallback.get("to") == Challenge.SMS_OTP:
        steps.append(_("The app challenge fell back to an SMS code because %(reason)s.") % {
            "reason": _fallback_words(fallback.get("reason", ""))})
    elif fallback is not None:
        steps.append(_("The app challenge could not finish because %(reason)s, and falling back to an SMS code was not "
                       "possible: %(why)s.") % {"reason": _fallback_words(fallback.get("reason", "")),
                                                "why": _why_no_fallback(tx, challenge)})

    if not challenge.is_final:
        if challenge.state == Challenge.AWAITING_CREQ:
            steps.append(_("Challenge by %(method)s started; waiting for the cardholder to open it.") % {
                "method": _method_words(challenge.method)})
            return out("challenge_awaiting", " ".join(steps))
        steps.append(_("Challenge by %(method)s in progress.") % {"method": _method_words(challenge.method)})
        return out("challenge_running", " ".join(steps))

    status, reason, cancel = tx.trans_status, tx.trans_status_reason, tx.challenge_cancel
    session = challenge.otp_session if challenge.otp_session_id else None
    if status in ("Y", "A"):
        if challenge.method == Challenge.OOB:
            steps.append(_("The cardholder approved the payment in the app (%(status)s).") % {"status": _status(tx)})
            return out("challenge_oob_approved", " ".join(steps))
        wrong = session.attempts_used if session is not None else 0
        if wrong:
            steps.append(ngettext(
                "The cardholder entered the correct SMS code after %(wrong)s wrong code (%(status)s).",
                "The cardholder entered the correct SMS code after %(wrong)s wrong codes (%(status)s).",
                wrong) % {"wrong": wrong, "status": _status(tx)})
        else:
            steps.append(_("The cardholder entered the correct SMS code (%(status)s).") % {"status": _status(tx)})
        key = "challenge_fallback_sms_verified" if fallback else "challenge_sms_verified"
        return out(key, " ".join(steps))
    if reason == emv.REASON_TOO_MANY_ATTEMPTS:
        used = session.attempts_used if session is not None else "?"
        steps.append(_("Too many wrong codes: %(used)s of %(max)s attempts used (%(status)s).") % {
            "used": used, "max": _max_attempts(session), "status": _status(tx)})
        return out("challenge_too_many_attempts", " ".join(steps))
    if reason == emv.REASON_TIMEOUT:
        if cancel == emv.CANCEL_TIMEOUT_FIRST_CREQ:
            steps.append(_("The challenge was never opened in time (no first CReq): timed out (%(status)s).") % {"status": _status(tx)})
        elif fallback is not None and fallback.get("to") is None and fallback.get("reason") == "oob_timeout":
            steps.append(_("Timed out (%(status)s).") % {"status": _status(tx)})
        else:
            steps.append(_("The challenge was not completed in time: timed out (%(status)s).") % {"status": _status(tx)})
        return out("challenge_timeout", " ".join(steps))
    if cancel == emv.CANCEL_BY_CARDHOLDER:
        if fallback is not None and fallback.get("reason") == "cancelled_in_app" and fallback.get("to") is None:
            steps.append(_("Declined (%(status)s).") % {"status": _status(tx)})
        else:
            steps.append(_("The cardholder cancelled the challenge (%(status)s).") % {"status": _status(tx)})
        return out("challenge_cancelled", " ".join(steps))
    if challenge.fallback_reason.startswith("sms_"):
        refusal = challenge.fallback_reason[len("sms_"):]
        steps.append(_("The SMS code could not be sent: %(limit)s. Declined (%(status)s).") % {
            "limit": _sms_limit_words(refusal, _refused_session(tx)), "status": _status(tx)})
        return out("challenge_sms_limit", " ".join(steps))
    if reason == emv.REASON_NO_METHOD:
        if fallback is None:
            steps.append(_("No verified phone to send an SMS code to: declined (%(status)s).") % {"status": _status(tx)})
        else:
            steps.append(_("Declined (%(status)s).") % {"status": _status(tx)})
        return out("challenge_no_method", " ".join(steps))
    if reason == emv.REASON_AUTH_FAILED:
        steps.append(_("Authentication failed (%(status)s).") % {"status": _status(tx)})
        return out("challenge_failed", " ".join(steps))
    if status == "U" and reason == emv.REASON_ACS_TECHNICAL:
        steps.append(_("The card was removed during the challenge, so the ACS could not vouch for it (%(status)s).") % {
            "status": _status(tx)})
        return out("technical", " ".join(steps))
    steps.append(_("Result %(status)s: %(meaning)s.") % {"status": _status(tx), "meaning": emv.reason_text(reason)})
    return out("other", " ".join(steps))


def _decoupled(tx: Transaction, challenge: Challenge, out) -> Explanation:
    if not challenge.is_final:
        return out("decoupled_running", _(
            "Decoupled authentication in progress: the cardholder's app has been asked to confirm, until %(deadline)s.") % {
            "deadline": challenge.deadline.strftime("%Y-%m-%d %H:%M UTC")})
    if tx.trans_status in ("Y", "A"):
        return out("decoupled_approved", _(
            "Decoupled authentication: the cardholder approved in the app (%(status)s).") % {"status": _status(tx)})
    if challenge.state == Challenge.CANCELLED:
        return out("decoupled_cancelled", _(
            "Decoupled authentication: the cardholder refused in the app (%(status)s).") % {"status": _status(tx)})
    if challenge.state == Challenge.TIMED_OUT:
        return out("decoupled_timed_out", _(
            "Decoupled authentication: no answer from the app before the 3DS Requestor's maximum time (%(status)s).") % {
            "status": _status(tx)})
    reason = _fallback_words(challenge.fallback_reason) if challenge.fallback_reason else emv.reason_text(tx.trans_status_reason)
    return out("decoupled_failed", _("Decoupled authentication failed: %(reason)s (%(status)s).") % {
        "reason": reason, "status": _status(tx)})


def _why_no_fallback(tx: Transaction, challenge: Challenge) -> str:
    if challenge.decoupled:
        return _("a decoupled authentication has no page to enter a code")
    if challenge.phone_id is None:
        return _("the cardholder has no verified primary phone")
    return _("the policy does not allow falling back to SMS")


def _max_attempts(session) -> str:
    if session is None:
        return "?"
    return str(getattr(session.policy_version.rules, "max_attempts", "?"))


def _refused_session(tx: Transaction):
    from apps.otp.models import OtpSession

    return (OtpSession.objects.filter(acs_trans_id=tx.acs_trans_id, issuer_id=tx.issuer_id)
            .select_related("policy_version").order_by("-created_at").first())


def _sms_limit_words(refusal: str, session) -> str:
    rules = session.policy_version.rules if session is not None else None

    def limit(name: str) -> str:
        return str(getattr(rules, name, "?")) if rules is not None else "?"

    if refusal == "card_hourly_limit":
        return _("the card reached its limit of %(limit)s codes in an hour") % {"limit": limit("max_sends_per_card_hour")}
    if refusal == "card_daily_limit":
        return _("the card reached its limit of %(limit)s codes in 24 hours") % {"limit": limit("max_sends_per_card_day")}
    if refusal == "phone_daily_limit":
        return _("the phone number reached its limit of %(limit)s codes in 24 hours") % {"limit": limit("max_sends_per_phone_day")}
    if refusal == "country_not_allowed":
        return _("the OTP policy does not allow SMS to the phone's country")
    return refusal
