"""The OTP engine: issue, deliver, verify, resend, cancel, expire.

Rules that matter for security, and where they hold:
- codes come from `secrets` (CSPRNG) and are stored only as an HMAC keyed by a server secret and
  bound to the session, compared with `hmac.compare_digest`;
- attempts, resends and send limits are counted in the database under row locks (session, card,
  destination number), so they hold with any number of web processes and concurrent requests;
- a code dies on success, expiry, resend (superseded), lockout and cancel;
- the code is never in a log line (`sensitive`), a task argument or an audit event: it travels
  only inside the encrypted SMS or DeliverOTP delivery row.
"""

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, FilteredRelation, Q
from django.utils import timezone, translation

from apps.audit.services import audit_record
from apps.cards.models import Card, Phone
from apps.core.exceptions import ApplicationError
from apps.core.logging import sensitive
from apps.core.money import format_amount
from apps.otp.models import (
    DEFAULT_TEMPLATES,
    ISSUER,
    OtpCode,
    OtpNumberLock,
    OtpPolicy,
    OtpPolicyVersion,
    OtpRefusal,
    OtpSession,
)
from apps.otp.policy_words import otp_policy_changes


class OtpRefused(ApplicationError):
    """A send or resend the rules do not allow. `.code` says which rule."""

    def __init__(self, message: str, *, code: str, retry_after: int | None = None):
        super().__init__(message, code=code, status_code=429 if retry_after else 409)
        self.retry_after = retry_after


@dataclass(frozen=True)
class VerifyResult:
    outcome: str  # verified | wrong | locked | expired | closed
    attempts_left: int
    state: str

    @property
    def verified(self) -> bool:
        return self.outcome == "verified"


# ---------------------------------------------------------------- policies


def otp_policy_save(*, policy: OtpPolicy, actor: str, reason: str = "") -> OtpPolicyVersion:
    """Validate, bump the version and freeze a snapshot with who and why. The only way policies
    change; the audit event lists the changes in words."""
    policy.full_clean()
    with transaction.atomic():
        previous = None
        if policy.pk:
            # Versions are numbered under a lock so two editors never produce the same number.
            current = OtpPolicy.objects.select_for_update().get(pk=policy.pk).version
            previous = policy.versions.filter(version=current).values_list("settings", flat=True).first()
        else:
            current = 0
        policy.version = current + 1
        policy.updated_by = actor
        policy.save()
        version = OtpPolicyVersion.objects.create(
            policy=policy, version=policy.version, settings=policy.snapshot(), created_by=actor, reason=reason
        )
        with translation.override("en"):
            changed = [str(c) for c in otp_policy_changes(previous, version.settings)] if previous is not None else []
        audit_record(
            issuer=policy.issuer, kind="otp_policy.saved", actor=actor, obj=policy,
            data={"version": policy.version, "product": str(policy.product_id or ""), "reason": reason, "changes": changed,
                  "settings": policy.snapshot()},
        )
    return version


def otp_policy_create_default(*, issuer, actor: str = "system", delivery_mode: str | None = None) -> OtpPolicyVersion:
    policy = OtpPolicy(
        issuer=issuer,
        allowed_countries=[issuer.country],
        sms_templates=dict(DEFAULT_TEMPLATES),
        sender_ids={},
        delivery_mode=delivery_mode or "provider",
    )
    return otp_policy_save(policy=policy, actor=actor)


def otp_policy_version_for(*, card: Card) -> OtpPolicyVersion:
    """The product's override if it has one, else the issuer's default (created on first use).
    One query: the current version of either policy, the product's first."""
    scope = Q(policy__issuer_id=card.issuer_id, policy__product__isnull=True)
    if card.product_id:
        scope |= Q(policy__product_id=card.product_id)
    version = (
        OtpPolicyVersion.objects.filter(scope, version=F("policy__version"))
        .order_by(F("policy__product_id").asc(nulls_last=True))
        .first()
    )
    if version is None:
        return otp_policy_create_default(issuer=card.issuer)
    return version


# ---------------------------------------------------------------- codes


def _code_hash(session_id, code: str) -> str:
    key = hmac.new(settings.SECRET_KEY.encode(), b"otp-code-hash", hashlib.sha256).digest()
    # surrogatepass: whatever a client typed (even a lone surrogate) is just a wrong code.
    return hmac.new(key, f"{session_id}:{code}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _new_code(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def _refusal(reason: str, message: str, retry_after: int | None = None) -> OtpRefused:
    return OtpRefused(message, code=reason, retry_after=retry_after)


def _record_refusal(session: OtpSession, refusal: OtpRefused, *, actor: str, audit: list | None) -> None:
    """Every refused send stays on record: analysts see them in OtpRefusal and the audit trail."""
    if refusal.code in ("country_not_allowed", "card_hourly_limit", "card_daily_limit", "phone_daily_limit"):
        OtpRefusal.objects.create(
            issuer_id=session.issuer_id, session=session, card_id=session.card_id, phone_e164=session.phone_e164, reason=refusal.code
        )
    audit_record(
        issuer=session.issuer, kind="otp.refused", actor=actor, acs_trans_id=session.acs_trans_id, obj=session,
        data={"reason": refusal.code, "phone": session.masked_phone}, batch=audit,
    )


def _send_refusal(*, card_id, phone_e164: str, rules, now) -> OtpRefused | None:
    """Whether the limits allow one more code to this card and number, decided under the card's
    and the number's locks (held until the caller's transaction ends), before anything is written."""
    country = phonenumbers.region_code_for_number(phonenumbers.parse(phone_e164))
    if country not in rules.allowed_countries:
        # SMS pumping protection: premium and far-away destinations are simply not sent to.
        return _refusal("country_not_allowed", f"SMS to {country or 'this destination'} is not allowed.")
    # Serialise sends per card and per destination number (what the limits count; several
    # cardholders may share a number) so concurrent sessions cannot both pass the limits.
    # Always card first, then number: one lock order, no deadlock.
    if card_id:
        Card.objects.select_for_update().filter(pk=card_id).first()
    _lock_number(phone_e164, now=now)
    # The three counts in one query over the codes of the last day for this card or this number.
    day, hour = now - timedelta(days=1), now - timedelta(hours=1)
    number = Q(phone_e164=phone_e164)
    if card_id:
        card = Q(card_id=card_id)
        sent = OtpCode.objects.filter(card | number, created_at__gte=day).aggregate(
            card_hour=Count("pk", filter=card & Q(created_at__gte=hour)),
            card_day=Count("pk", filter=card),
            number_day=Count("pk", filter=number),
        )
        if sent["card_hour"] >= rules.max_sends_per_card_hour:
            return _refusal("card_hourly_limit", "Too many codes sent for this card in the last hour.")
        if sent["card_day"] >= rules.max_sends_per_card_day:
            return _refusal("card_daily_limit", "Too many codes sent for this card today.")
    else:
        sent = {"number_day": OtpCode.objects.filter(number, created_at__gte=day).count()}
    if sent["number_day"] >= rules.max_sends_per_phone_day:
        return _refusal("phone_daily_limit", "Too many codes sent to this phone today.")
    return None


def _number_lock_key(phone_e164: str) -> str:
    key = hmac.new(settings.SECRET_KEY.encode(), b"otp-number-lock", hashlib.sha256).digest()
    return hmac.new(key, phone_e164.encode(), hashlib.sha256).hexdigest()


def _lock_number(phone_e164: str, *, now) -> None:
    """Hold the number's lock row until the caller's transaction ends, in one statement: an
    upsert (INSERT ... ON CONFLICT DO UPDATE) creates the row on first use and otherwise updates,
    and so locks, the existing one; a concurrent creator makes it wait for that commit."""
    OtpNumberLock.objects.bulk_create(
        [OtpNumberLock(key=_number_lock_key(phone_e164), locked_at=now)],
        update_conflicts=True, unique_fields=["key"], update_fields=["locked_at"],
    )


def _render_sms(rules, *, locale: str, code: str, details: dict) -> str:
    templates = rules.sms_templates or DEFAULT_TEMPLATES
    template = templates.get(locale) or templates.get("en") or next(iter(templates.values()), DEFAULT_TEMPLATES["en"])
    amount = ""
    if details.get("purchaseAmount") not in (None, ""):
        amount = format_amount(details["purchaseAmount"], str(details.get("purchaseCurrency", "")), details.get("purchaseExponent", 0), locale)
    return template.format(
        code=code,
        merchant=details.get("merchantName", ""),
        amount=amount,
        minutes=max(1, rules.lifetime_seconds // 60),
    )


def _sender_for(rules, phone_e164: str) -> str:
    country = phonenumbers.region_code_for_number(phonenumbers.parse(phone_e164))
    return rules.sender_ids.get(country) or rules.sender_ids.get("default", "")


def _send_code(session: OtpSession, rules, *, now, actor: str, audit: list | None) -> OtpCode:
    """Write and deliver a fresh code for a session whose send the limits allowed (the caller
    holds the locks and has superseded any earlier code)."""
    code = _new_code(rules.code_length)
    with sensitive(code):
        otp_code = OtpCode.objects.create(
            session=session,
            code_hash=_code_hash(session.pk, code),
            delivery_mode=rules.delivery_mode,
            card_id=session.card_id,
            phone_e164=session.phone_e164,
            expires_at=now + timedelta(seconds=rules.lifetime_seconds),
        )
        if rules.delivery_mode == ISSUER:
            _deliver_through_issuer(session, otp_code, code)
        else:
            _deliver_through_provider(session, otp_code, code, rules)
    audit_record(
        issuer=session.issuer, kind="otp.sent", actor=actor, acs_trans_id=session.acs_trans_id, obj=session,
        data={"otp_code": str(otp_code.pk), "delivery_mode": rules.delivery_mode, "phone": session.masked_phone,
              "expires_at": otp_code.expires_at.isoformat(), "policy_version": session.policy_version.version},
        batch=audit,
    )
    return otp_code


def _deliver_through_provider(session: OtpSession, otp_code: OtpCode, code: str, rules) -> None:
    from apps.sms.services import sms_delivery_create

    sms_delivery_create(
        issuer=session.issuer,
        to=session.phone_e164,
        body=_render_sms(rules, locale=session.locale, code=code, details=session.transaction_details),
        sender_id=_sender_for(rules, session.phone_e164),
        secret=code,
        otp_code=otp_code,
        acs_trans_id=session.acs_trans_id,
    )


def _deliver_through_issuer(session: OtpSession, otp_code: OtpCode, code: str) -> None:
    from apps.webhooks.services import deliver_otp_enqueue, deliver_otp_payload

    card = session.card
    details = session.transaction_details
    payload = deliver_otp_payload(
        operation_id=str(uuid.uuid4()),
        issuer_id=session.issuer.issuer_id,
        card_id=card.card_id if card else "",
        consumer_id=card.cardholder.external_id if card else "",
        acs_trans_id=str(session.acs_trans_id or ""),
        otp=code,
        otp_expires_at=otp_code.expires_at,
        locale=session.locale,
        masked_phone=session.masked_phone,
        merchant_name=details.get("merchantName", ""),
        purchase_amount=str(details.get("purchaseAmount", "")),
        purchase_currency=str(details.get("purchaseCurrency", "")),
        purchase_exponent=str(details.get("purchaseExponent", "")),
    )
    deliver_otp_enqueue(issuer=session.issuer, payload=payload, acs_trans_id=session.acs_trans_id)


# ---------------------------------------------------------------- sessions
#
# `audit`: a caller that writes audit events of its own in the same transaction (the challenge)
# passes its list; the events of these functions are appended to it, and the caller writes them
# all in one INSERT (audit_record_many). Without it, they write their events themselves.


def otp_session_start(
    *,
    card: Card,
    phone: Phone,
    locale: str,
    transaction_details: dict,
    acs_trans_id: uuid.UUID | None = None,
    actor: str = "acs",
    audit: list | None = None,
) -> OtpSession:
    """Open the OTP side of a challenge and send the first code (OtpRefused if the rules say no;
    the session then stays, closed, for the record). The limits are decided before anything is
    written, so a refusal needs no savepoint to undo a half-made send."""
    with transaction.atomic(savepoint=False):
        version = otp_policy_version_for(card=card)
        rules = version.rules
        now = timezone.now()
        phone_e164 = phone.number.as_e164
        refusal = _send_refusal(card_id=card.pk, phone_e164=phone_e164, rules=rules, now=now)
        session = OtpSession.objects.create(
            issuer=card.issuer,
            card=card,
            phone=phone,
            phone_e164=phone_e164,
            masked_phone=phone.masked,
            acs_trans_id=acs_trans_id,
            policy_version=version,
            locale=locale,
            transaction_details=transaction_details,
            **({"state": OtpSession.CANCELLED, "finished_at": now} if refusal else {"last_sent_at": now}),
        )
        if refusal is None:
            _send_code(session, rules, now=now, actor=actor, audit=audit)
        else:
            _record_refusal(session, refusal, actor=actor, audit=audit)
    # Raised after the block: the refusal's records are part of the caller's transaction.
    if refusal is not None:
        raise refusal
    return session


def _session(session_id, *, lock: bool = False) -> OtpSession:
    sessions = OtpSession.objects.select_related("issuer", "policy_version", "card")
    if lock:
        sessions = sessions.select_for_update(of=("self",))
    return sessions.get(pk=session_id)


def otp_resend(*, session_id, actor: str = "cardholder", audit: list | None = None) -> OtpSession:
    """A new code; the old one stops working. OtpRefused when the limits or cooldown say no.
    Holds the session's row lock from its read on, so a verification racing it re-reads (see
    otp_verify) and never accepts the superseded code."""
    refusal = None
    with transaction.atomic(savepoint=False):
        session = _session(session_id, lock=True)
        rules = session.policy_version.rules
        now = timezone.now()
        if session.state != OtpSession.ACTIVE:
            refusal = _refusal("session_closed", "This challenge is over.")
        elif session.resends_used >= rules.max_resends:
            refusal = _refusal("resend_limit", "No more codes can be sent for this payment.")
        elif session.last_sent_at is not None and (wait := rules.resend_cooldown_seconds - (now - session.last_sent_at).total_seconds()) > 0:
            refusal = _refusal("resend_cooldown", f"Wait {int(wait) + 1} s before asking for a new code.", retry_after=int(wait) + 1)
        else:
            refusal = _send_refusal(card_id=session.card_id, phone_e164=session.phone_e164, rules=rules, now=now)
        if refusal is None:
            session.codes.filter(state=OtpCode.ACTIVE).update(state=OtpCode.SUPERSEDED)
            _send_code(session, rules, now=now, actor=actor, audit=audit)
            OtpSession.objects.filter(pk=session.pk).update(resends_used=F("resends_used") + 1, last_sent_at=now)
            session.resends_used, session.last_sent_at = session.resends_used + 1, now
        else:
            _record_refusal(session, refusal, actor=actor, audit=audit)
    if refusal is not None:
        raise refusal
    return session


_UNREAD = object()


def active_code_relation(session_path: str) -> FilteredRelation:
    """For a query that reads an OTP session through `session_path` (e.g. the challenge's lock):
    the session's active code joined into the same query, as
    `.annotate(active_code=active_code_relation("otp_session")).select_related("active_code")`;
    `obj.active_code` is then the code or None. At most one code is active per session (a
    constraint), so the join adds no rows. Pass it to otp_verify with the session."""
    return FilteredRelation(f"{session_path}__codes", condition=Q(**{f"{session_path}__codes__state": OtpCode.ACTIVE}))


def otp_verify(
    *, code: str, session_id=None, session: OtpSession | None = None, active_code=_UNREAD, actor: str = "cardholder",
    audit: list | None = None,
) -> VerifyResult:
    """Check a code. `session`: one the caller has just read (the challenge reads it with its own
    row, select_related with policy_version and issuer), else it is read by `session_id`;
    `active_code`: the session's active code (or None) read in the same query (see
    active_code_relation), else it is read here.

    No lock is taken before the check: the first write is a conditional UPDATE of the session row
    that holds only if the session is still as it was read (active, same attempts and resends).
    It takes the row's lock; if another request changed the session meanwhile (an attempt, a
    resend, a cancel), it matches no row and the check runs again on a fresh read. So attempts
    are counted exactly once each and a superseded code never verifies, however many requests
    race (tests/otp/test_concurrency.py)."""
    code = code if isinstance(code, str) else ""
    with transaction.atomic(savepoint=False):
        if session is None:
            session = _session(session_id)
        # Each retry follows a change another request committed; those are finite (attempts,
        # resends, one final state), so this ends.
        while True:
            result = _verify_locked(session, code, actor=actor, audit=audit, active=active_code)
            if result is not None:
                return result
            session, active_code = _session(session.pk), _UNREAD


def _verify_locked(session: OtpSession, code: str, *, actor: str, audit: list | None, active=_UNREAD) -> VerifyResult | None:
    """One try at the check; None when the session changed under it (the caller re-reads)."""
    rules = session.policy_version.rules
    left = max(0, rules.max_attempts - session.attempts_used)
    if session.state != OtpSession.ACTIVE:
        return VerifyResult("closed", left, session.state)
    now = timezone.now()
    if active is _UNREAD:
        active = session.codes.filter(state=OtpCode.ACTIVE).first()
    as_read = OtpSession.objects.filter(
        pk=session.pk, state=OtpSession.ACTIVE, attempts_used=session.attempts_used, resends_used=session.resends_used
    )
    if active is None or active.expires_at <= now:
        if not as_read.exists():
            return None  # no active code because another request just ended or replaced it
        if active is not None:
            OtpCode.objects.filter(pk=active.pk, state=OtpCode.ACTIVE).update(state=OtpCode.EXPIRED)
        audit_record(issuer=session.issuer, kind="otp.expired_code_entered", actor=actor, acs_trans_id=session.acs_trans_id,
                     obj=session, batch=audit)
        return VerifyResult("expired", left, session.state)

    with sensitive(code):
        matches = hmac.compare_digest(_code_hash(session.pk, code), active.code_hash)
    if matches:
        if not as_read.update(state=OtpSession.VERIFIED, finished_at=now):
            return None
        OtpCode.objects.filter(pk=active.pk).update(state=OtpCode.USED)
        session.state, session.finished_at = OtpSession.VERIFIED, now
        audit_record(issuer=session.issuer, kind="otp.verified", actor=actor, acs_trans_id=session.acs_trans_id, obj=session,
                     data={"attempt": session.attempts_used + 1}, batch=audit)
        return VerifyResult("verified", left, session.state)

    left = max(0, rules.max_attempts - session.attempts_used - 1)
    lockout = {"state": OtpSession.LOCKED, "finished_at": now} if left == 0 else {}
    if not as_read.update(attempts_used=F("attempts_used") + 1, **lockout):
        return None
    session.attempts_used += 1
    if left == 0:
        OtpCode.objects.filter(pk=active.pk).update(state=OtpCode.DEAD)
        session.state, session.finished_at = OtpSession.LOCKED, now
    audit_record(
        issuer=session.issuer, kind="otp.locked" if left == 0 else "otp.wrong_code", actor=actor,
        acs_trans_id=session.acs_trans_id, obj=session, data={"attempts_used": session.attempts_used, "attempts_left": left},
        batch=audit,
    )
    return VerifyResult("locked" if left == 0 else "wrong", left, session.state)


def otp_cancel(*, session_id, actor: str = "cardholder", audit: list | None = None) -> None:
    """End the session and kill its code. The conditional UPDATE is the check: a session that is
    no longer active (verified, locked, cancelled) is left as it is."""
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        if OtpSession.objects.filter(pk=session_id, state=OtpSession.ACTIVE).update(state=OtpSession.CANCELLED, finished_at=now):
            OtpCode.objects.filter(session_id=session_id, state=OtpCode.ACTIVE).update(state=OtpCode.DEAD)
            session = _session(session_id)
            audit_record(issuer=session.issuer, kind="otp.cancelled", actor=actor, acs_trans_id=session.acs_trans_id,
                         obj=session, batch=audit)


def otp_expire_codes(*, now=None) -> int:
    """Scheduled: mark codes past their lifetime as expired (verification also checks the time)."""
    now = now or timezone.now()
    return OtpCode.objects.filter(state=OtpCode.ACTIVE, expires_at__lte=now).update(state=OtpCode.EXPIRED)
