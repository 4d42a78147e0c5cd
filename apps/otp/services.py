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
from django.utils import timezone

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


def otp_policy_save(*, policy: OtpPolicy, actor: str) -> OtpPolicyVersion:
    """Validate, bump the version and freeze a snapshot. The only way policies change."""
    policy.full_clean()
    with transaction.atomic():
        if policy.pk:
            # Versions are numbered under a lock so two editors never produce the same number.
            current = OtpPolicy.objects.select_for_update().get(pk=policy.pk).version
        else:
            current = 0
        policy.version = current + 1
        policy.updated_by = actor
        policy.save()
        version = OtpPolicyVersion.objects.create(
            policy=policy, version=policy.version, settings=policy.snapshot(), created_by=actor
        )
        audit_record(
            issuer=policy.issuer, kind="otp_policy.saved", actor=actor, obj=policy,
            data={"version": policy.version, "product": str(policy.product_id or ""), "settings": policy.snapshot()},
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
    """The product's override if it has one, else the issuer's default (created on first use)."""
    policy = None
    if card.product_id:
        policy = OtpPolicy.objects.filter(product_id=card.product_id).first()
    if policy is None:
        policy = OtpPolicy.objects.filter(issuer_id=card.issuer_id, product__isnull=True).first()
    if policy is None:
        return otp_policy_create_default(issuer=card.issuer)
    return policy.versions.get(version=policy.version)


# ---------------------------------------------------------------- codes


def _code_hash(session_id, code: str) -> str:
    key = hmac.new(settings.SECRET_KEY.encode(), b"otp-code-hash", hashlib.sha256).digest()
    # surrogatepass: whatever a client typed (even a lone surrogate) is just a wrong code.
    return hmac.new(key, f"{session_id}:{code}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _new_code(length: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(length))


def _refuse(session: OtpSession, *, reason: str, message: str, actor: str, retry_after: int | None = None):
    raise OtpRefused(message, code=reason, retry_after=retry_after)


def _record_refusal(session: OtpSession, refusal: OtpRefused, *, actor: str) -> None:
    """Written outside the rolled-back send, so analysts see every refused send."""
    if refusal.code in ("country_not_allowed", "card_hourly_limit", "card_daily_limit", "phone_daily_limit"):
        OtpRefusal.objects.create(
            issuer_id=session.issuer_id, session=session, card_id=session.card_id, phone_e164=session.phone_e164, reason=refusal.code
        )
    audit_record(
        issuer=session.issuer, kind="otp.refused", actor=actor, acs_trans_id=session.acs_trans_id, obj=session,
        data={"reason": refusal.code, "phone": session.masked_phone},
    )


def _check_send_limits(session: OtpSession, rules, *, actor: str, now) -> None:
    number = phonenumbers.parse(session.phone_e164)
    country = phonenumbers.region_code_for_number(number)
    if country not in rules.allowed_countries:
        # SMS pumping protection: premium and far-away destinations are simply not sent to.
        _refuse(session, reason="country_not_allowed", message=f"SMS to {country or 'this destination'} is not allowed.", actor=actor)
    codes = OtpCode.objects.all()
    if session.card_id:
        if codes.filter(card_id=session.card_id, created_at__gte=now - timedelta(hours=1)).count() >= rules.max_sends_per_card_hour:
            _refuse(session, reason="card_hourly_limit", message="Too many codes sent for this card in the last hour.", actor=actor)
        if codes.filter(card_id=session.card_id, created_at__gte=now - timedelta(days=1)).count() >= rules.max_sends_per_card_day:
            _refuse(session, reason="card_daily_limit", message="Too many codes sent for this card today.", actor=actor)
    if codes.filter(phone_e164=session.phone_e164, created_at__gte=now - timedelta(days=1)).count() >= rules.max_sends_per_phone_day:
        _refuse(session, reason="phone_daily_limit", message="Too many codes sent to this phone today.", actor=actor)


def _number_lock_key(phone_e164: str) -> str:
    key = hmac.new(settings.SECRET_KEY.encode(), b"otp-number-lock", hashlib.sha256).digest()
    return hmac.new(key, phone_e164.encode(), hashlib.sha256).hexdigest()


def _lock_number(phone_e164: str) -> None:
    """Hold the number's lock row until the caller's transaction ends (created on first use;
    a concurrent creator makes this wait for its commit, then both lock the same row)."""
    key = _number_lock_key(phone_e164)
    OtpNumberLock.objects.bulk_create([OtpNumberLock(key=key)], ignore_conflicts=True)
    OtpNumberLock.objects.select_for_update().filter(key=key).first()


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


def _issue_code(session: OtpSession, *, actor: str) -> OtpCode:
    """Send a fresh code for a session the caller holds locked. Supersedes the previous code."""
    rules = session.policy_version.rules
    now = timezone.now()
    # Serialise sends per card and per destination number (what the limits count; several
    # cardholders may share a number) so concurrent sessions cannot both pass the limits.
    # Always card first, then number: one lock order, no deadlock.
    if session.card_id:
        Card.objects.select_for_update().filter(pk=session.card_id).first()
    _lock_number(session.phone_e164)
    _check_send_limits(session, rules, actor=actor, now=now)

    session.codes.filter(state=OtpCode.ACTIVE).update(state=OtpCode.SUPERSEDED)
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
    session.last_sent_at = now
    session.save(update_fields=["last_sent_at"])
    audit_record(
        issuer=session.issuer, kind="otp.sent", actor=actor, acs_trans_id=session.acs_trans_id, obj=session,
        data={"otp_code": str(otp_code.pk), "delivery_mode": rules.delivery_mode, "phone": session.masked_phone,
              "expires_at": otp_code.expires_at.isoformat(), "policy_version": session.policy_version.version},
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


def otp_session_start(
    *,
    card: Card,
    phone: Phone,
    locale: str,
    transaction_details: dict,
    acs_trans_id: uuid.UUID | None = None,
    actor: str = "acs",
) -> OtpSession:
    """Open the OTP side of a challenge and send the first code (OtpRefused if the rules say no;
    the session then stays, closed, for the record)."""
    refusal = None
    with transaction.atomic():
        session = _session_create(card=card, phone=phone, locale=locale, transaction_details=transaction_details, acs_trans_id=acs_trans_id)
        try:
            with transaction.atomic():
                _issue_code(session, actor=actor)
        except OtpRefused as exc:
            refusal = exc
            _record_refusal(session, exc, actor=actor)
            session.state, session.finished_at = OtpSession.CANCELLED, timezone.now()
            session.save(update_fields=["state", "finished_at"])
    if refusal is not None:
        raise refusal
    return session


def _session_create(*, card, phone, locale, transaction_details, acs_trans_id) -> OtpSession:
    version = otp_policy_version_for(card=card)
    number = phone.number
    session = OtpSession.objects.create(
        issuer_id=card.issuer_id,
        card=card,
        phone=phone,
        phone_e164=number.as_e164,
        masked_phone=phone.masked,
        acs_trans_id=acs_trans_id,
        policy_version=version,
        locale=locale,
        transaction_details=transaction_details,
    )
    return _locked_session(session.pk)


def _locked_session(session_id) -> OtpSession:
    return OtpSession.objects.select_for_update(of=("self",)).select_related("issuer", "policy_version", "card").get(pk=session_id)


def otp_resend(*, session_id, actor: str = "cardholder") -> OtpSession:
    """A new code; the old one stops working. OtpRefused when the limits or cooldown say no."""
    refusal = None
    with transaction.atomic():
        session = _locked_session(session_id)
        rules = session.policy_version.rules
        try:
            if session.state != OtpSession.ACTIVE:
                raise OtpRefused("This challenge is over.", code="session_closed")
            if session.resends_used >= rules.max_resends:
                raise OtpRefused("No more codes can be sent for this payment.", code="resend_limit")
            if session.last_sent_at is not None:
                wait = rules.resend_cooldown_seconds - (timezone.now() - session.last_sent_at).total_seconds()
                if wait > 0:
                    raise OtpRefused(f"Wait {int(wait) + 1} s before asking for a new code.", code="resend_cooldown", retry_after=int(wait) + 1)
            with transaction.atomic():
                _issue_code(session, actor=actor)
        except OtpRefused as exc:
            refusal = exc
            _record_refusal(session, exc, actor=actor)
        else:
            session.resends_used += 1
            session.save(update_fields=["resends_used"])
    if refusal is not None:
        raise refusal
    return session


def otp_verify(*, session_id, code: str, actor: str = "cardholder") -> VerifyResult:
    with transaction.atomic():
        session = _locked_session(session_id)
        result = _verify_locked(session, code if isinstance(code, str) else "", actor=actor)
    return result


def _verify_locked(session: OtpSession, code: str, *, actor: str) -> VerifyResult:
    rules = session.policy_version.rules
    left = max(0, rules.max_attempts - session.attempts_used)
    if session.state != OtpSession.ACTIVE:
        return VerifyResult("closed", left, session.state)
    now = timezone.now()
    active = session.codes.filter(state=OtpCode.ACTIVE).first()
    if active is None or active.expires_at <= now:
        if active is not None:
            active.state = OtpCode.EXPIRED
            active.save(update_fields=["state"])
        audit_record(issuer=session.issuer, kind="otp.expired_code_entered", actor=actor, acs_trans_id=session.acs_trans_id, obj=session)
        return VerifyResult("expired", left, session.state)

    with sensitive(code):
        matches = hmac.compare_digest(_code_hash(session.pk, code), active.code_hash)
    if matches:
        active.state = OtpCode.USED
        active.save(update_fields=["state"])
        session.state, session.finished_at = OtpSession.VERIFIED, now
        session.save(update_fields=["state", "finished_at"])
        audit_record(issuer=session.issuer, kind="otp.verified", actor=actor, acs_trans_id=session.acs_trans_id, obj=session,
                     data={"attempt": session.attempts_used + 1})
        return VerifyResult("verified", left, session.state)

    session.attempts_used += 1
    left = max(0, rules.max_attempts - session.attempts_used)
    fields = ["attempts_used"]
    if left == 0:
        active.state = OtpCode.DEAD
        active.save(update_fields=["state"])
        session.state, session.finished_at = OtpSession.LOCKED, now
        fields += ["state", "finished_at"]
    session.save(update_fields=fields)
    audit_record(
        issuer=session.issuer, kind="otp.locked" if left == 0 else "otp.wrong_code", actor=actor,
        acs_trans_id=session.acs_trans_id, obj=session, data={"attempts_used": session.attempts_used, "attempts_left": left},
    )
    return VerifyResult("locked" if left == 0 else "wrong", left, session.state)


@transaction.atomic
def otp_cancel(*, session_id, actor: str = "cardholder") -> OtpSession:
    session = _locked_session(session_id)
    if session.state == OtpSession.ACTIVE:
        session.codes.filter(state=OtpCode.ACTIVE).update(state=OtpCode.DEAD)
        session.state, session.finished_at = OtpSession.CANCELLED, timezone.now()
        session.save(update_fields=["state", "finished_at"])
        audit_record(issuer=session.issuer, kind="otp.cancelled", actor=actor, acs_trans_id=session.acs_trans_id, obj=session)
    return session


def otp_expire_codes(*, now=None) -> int:
    """Scheduled: mark codes past their lifetime as expired (verification also checks the time)."""
    now = now or timezone.now()
    return OtpCode.objects.filter(state=OtpCode.ACTIVE, expires_at__lte=now).update(state=OtpCode.EXPIRED)
