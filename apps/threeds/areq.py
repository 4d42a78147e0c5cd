"""AReq → decision → ARes (SPEC §3.1)."""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_event
from apps.cards.models import Card, Phone
from apps.core.crypto import pan_fingerprint
from apps.issuers.models import pan_prefix_key
from apps.oob.services import has_active_device
from apps.core.logging import sensitive
from apps.core.pan import CARTES_BANCAIRES
from apps.threeds import app_crypto, areq_store, risk
from apps.threeds.challenge import challenge_decoupled_start
from apps.threeds.emv import (
    ACS_DEC_CON_IND_YES,
    APP,
    AUTHENTICATION_TYPE_DECOUPLED,
    VERSION_RULES,
    REASON_3RI_NOT_SUPPORTED,
    REASON_ACS_TECHNICAL,
    REASON_CARD_EXPIRED,
    REASON_FREQUENCY_LIMIT,
    REASON_LOST_STOLEN,
    REASON_NO_CARD_RECORD,
    REASON_NO_METHOD,
    REASON_TRANSACTION_NOT_PERMITTED,
)
from apps.threeds.locale import texts_for
from apps.threeds.method import METHOD_DATA_TTL, method_status
from apps.threeds.messages import BROWSER, THREE_RI, MessageError, erro, validate_areq
from apps.threeds.models import Challenge, Transaction
from apps.threeds.outbound import notification_url, transaction_finished
from apps.threeds.results import CB_AVALGO, authentication_value, eci_for
from apps.threeds.signing_keys import signing_credentials

logger = logging.getLogger(__name__)

# AReq elements never kept on the transaction.
_AREQ_SECRET_ELEMENTS = ("acctNumber", "sdkEncData", "cardholderName", "email", "homePhone", "mobilePhone", "workPhone")


@dataclass
class AReqOutcome:
    response: dict
    transaction: Transaction | None
    duplicate: bool = False


def areq_process(message) -> AReqOutcome:
    """Validate, decide and answer. Never raises: a valid AReq that meets an internal failure gets
    U / 22, an invalid one an Erro.

    Duplicates (same threeDSServerTransID and dsTransID) are caught by the unique constraint on
    those ids, not by a look-up before the work: the second INSERT fails, the atomic block of
    `_record` rolls back everything that try wrote (its challenge, audit events, notifications),
    and the answer is the stored ARes of the first. Concurrent twins queue on the unique index
    until the first commits, so they too get the first's ARes, and never a second challenge."""
    try:
        ctx = validate_areq(message)
    except MessageError as exc:
        return AReqOutcome(erro(code=exc.code, detail=exc.detail, message=exc.message), None)

    pan = message["acctNumber"]
    with sensitive(pan):
        try:
            tx = _decide_and_record(message, ctx, pan)
        except IntegrityError:
            existing = _find_duplicate(message)
            if existing is not None:
                return AReqOutcome(existing.ares, existing, duplicate=True)
            logger.exception("AReq could not be recorded")
            return AReqOutcome(_technical_failure(message), None)
        except Exception:
            logger.exception("AReq processing failed")
            return AReqOutcome(_technical_failure(message), None)
    return AReqOutcome(tx.ares, tx)


def _find_duplicate(message) -> Transaction | None:
    """The transaction recorded for these ids (unique), once an INSERT has collided with it."""
    return Transaction.objects.filter(
        three_ds_server_trans_id=message["threeDSServerTransID"], ds_trans_id=message["dsTransID"]
    ).first()


def _technical_failure(message) -> dict:
    return {
        "messageType": "ARes",
        "messageVersion": message["messageVersion"],
        "threeDSServerTransID": message["threeDSServerTransID"],
        "dsTransID": message["dsTransID"],
        "acsTransID": str(uuid.uuid4()),
        "acsReferenceNumber": settings.ACS_REFERENCE_NUMBER,
        "transStatus": "U",
        "transStatusReason": REASON_ACS_TECHNICAL,
        **({"sdkTransID": message["sdkTransID"]} if message.get("sdkTransID") else {}),
    }


def _sms_phone_for(card: Card) -> Phone | None:
    # Asked twice by a challenged AReq (the method, then the challenge's phone): one query.
    if not hasattr(card, "_areq_sms_phone"):
        card._areq_sms_phone = card.cardholder.phones.filter(is_primary=True, verified=True).first()
    return card._areq_sms_phone


def _oob_available(card: Card) -> bool:
    """An active device enrolled by the cardholder, and WebAuthn configured for the issuer (a
    device cannot prove anything without the RP id and origins to check against)."""
    issuer = card.issuer
    return bool(issuer.webauthn_rp_id and issuer.webauthn_origins) and has_active_device(card.cardholder_id)


def _decide_and_record(message: dict, ctx, pan: str) -> Transaction:
    """Reads first (one statement: card, policy, history; a challenge also looks for a method),
    in autocommit like any read-committed read; then every write, all or none (`_record`)."""
    now = timezone.now()
    fingerprint = pan_fingerprint(pan)
    # The 3DS Method's data is read (in the same statement) only when the AReq says it ran.
    wants_method = ctx.channel == BROWSER and message.get("threeDSCompInd") == "Y"
    method_trans_id = message["threeDSServerTransID"] if wants_method else None
    method_since = now - METHOD_DATA_TTL
    card = risk.card_for_areq(fingerprint=fingerprint, prefix=pan_prefix_key(pan), areq=message, now=now,
                              method_trans_id=method_trans_id, method_since=method_since)
    if not wants_method:
        method_data = None
    elif card is not None:
        method_data = card.method_data
    else:  # no card: the one read returned no row to carry it
        method_data = areq_store.method_data_for(method_trans_id, since=method_since)
    tx = Transaction(
        issuer=card.issuer if card else None,
        card=card,
        three_ds_server_trans_id=message["threeDSServerTransID"],
        ds_trans_id=message["dsTransID"],
        sdk_trans_id=message.get("sdkTransID"),
        message_version=ctx.version,
        device_channel=ctx.channel,
        message_category=ctx.category,
        pan_last4=pan[-4:],
        pan_fingerprint=fingerprint,
        network=card.network if card else "",
        co_badge=card.co_badge if card else "",
        purchase_amount=int(message["purchaseAmount"]) if message.get("purchaseAmount") else None,
        purchase_currency=message.get("purchaseCurrency", ""),
        purchase_exponent=int(message["purchaseExponent"]) if message.get("purchaseExponent") else None,
        purchase_date=message.get("purchaseDate", ""),
        merchant_name=message.get("merchantName", ""),
        acquirer_merchant_id=message.get("acquirerMerchantID", ""),
        acquirer_bin=message.get("acquirerBIN", ""),
        mcc=message.get("mcc", ""),
        merchant_country_code=message.get("merchantCountryCode", ""),
        three_ds_requestor_challenge_ind=message.get("threeDSRequestorChallengeInd", ""),
        three_ds_method=method_status(message, channel=ctx.channel, data=method_data),
        notification_url=message.get("notificationURL", ""),
        ds_url=message.get("dsURL", ""),
        three_ds_requestor_app_url=message.get("threeDSRequestorAppURL", ""),
        areq={k: v for k, v in message.items() if k not in _AREQ_SECRET_ELEMENTS},
    )
    challenge = None
    decision = None
    facts: dict = {}  # the policy's threshold and why no method: the decision's record, with risk_facts
    acs_signed_content = cardholder_info = None
    if card is None:
        _fail(tx, REASON_NO_CARD_RECORD)
    elif card.status == Card.LOST_STOLEN:
        _fail(tx, REASON_LOST_STOLEN)
    elif card.status in (Card.SUSPENDED, Card.CLOSED):
        _fail(tx, REASON_TRANSACTION_NOT_PERMITTED)
    elif (card.expiry_year, card.expiry_month) < (now.year, now.month):
        _fail(tx, REASON_CARD_EXPIRED)
    else:
        policy = risk.risk_policy_for(card.issuer)
        decision = risk.decide(policy=policy, card=card, areq=message, now=now, method=tx.three_ds_method, method_data=method_data)
        tx.risk_score, tx.risk_rules = decision.score, decision.rules
        facts["threshold"] = policy.challenge_threshold
        if decision.velocity_exceeded:
            _fail(tx, REASON_FREQUENCY_LIMIT)
        elif not decision.challenge:
            tx.exemption = decision.exemption
            _succeed(tx, "Y", pan)
        elif ctx.channel == THREE_RI:
            _fail(tx, REASON_3RI_NOT_SUPPORTED)
        else:
            method = _challenge_method(card, policy)
            if method is None:
                facts["no_method"] = _why_no_method(card, policy)
                if policy.no_method_outcome == "A":
                    _succeed(tx, "A", pan)
                else:
                    _fail(tx, REASON_NO_METHOD)
            elif method == Challenge.OOB and (minutes := _decoupled_max_minutes(message, ctx)):
                # Decoupled (SPEC §3.9): the app is asked now, with no CReq; both deadlines are
                # the requestor's max time, so the first-CReq timeout never applies.
                deadline = now + timedelta(minutes=minutes)
                tx.ares_trans_status = "D"
                tx.authentication_type = AUTHENTICATION_TYPE_DECOUPLED
                challenge = Challenge(
                    transaction=tx,
                    method=Challenge.OOB,
                    decoupled=True,
                    state=Challenge.IN_PROGRESS,
                    locale=card.cardholder.locale,
                    first_creq_deadline=deadline,
                    deadline=deadline,
                    oob_deadline=deadline,
                )
                # ARes cardholderInfo (at most 128 characters): what the 3DS Requestor shows the
                # cardholder while the issuer's app is asked, in the cardholder's language.
                cardholder_info = texts_for(challenge.locale)["decoupled_info"]
            else:
                tx.ares_trans_status = "C"
                tx.authentication_type = "03" if method == Challenge.OOB else "02"
                challenge = Challenge(
                    transaction=tx,
                    method=method,
                    phone=_sms_phone_for(card),
                    locale=card.cardholder.locale,
                    first_creq_deadline=now + timedelta(seconds=policy.first_creq_timeout_seconds),
                    deadline=now + timedelta(seconds=policy.challenge_timeout_seconds),
                )
                if ctx.channel == APP:
                    # Only here: frictionless and refused AReqs make no key and sign nothing.
                    acs_signed_content = _app_session_open(tx, challenge, message)
                    if acs_signed_content is None:
                        challenge = None
                        _fail(tx, REASON_ACS_TECHNICAL, status="U")
                        tx.authentication_type = ""
    if tx.ares_trans_status not in ("C", "D"):
        tx.finished_at = now
    tx.ares = _ares(tx, message, decision, acs_signed_content, cardholder_info)
    if decision is not None:
        # One record of what was decided and why, on the transaction: the backtest replays its
        # facts, the explanation reads its threshold and why no method could be used.
        tx.risk_facts = {**decision.facts.stored(), **facts}
    _record(tx, challenge, ctx, facts=facts)
    return tx


def _app_session_open(tx: Transaction, challenge: Challenge, message: dict) -> str | None:
    """The ACS's half of the app channel's secure session (SPEC §3.3.2–3): a fresh ephemeral
    P-256 key, the session key derived with the SDK's sdkEphemPubKey and sealed on the challenge,
    and acsSignedContent signed with the card network's key. None when the network has no
    signing credentials installed, or they have expired (the caller answers U / 22).

    The ephemeral private key is not stored: SPEC §3.3.6 asks that it be kept sealed and wiped
    with the challenge, but once the session key is derived nothing needs it again, so it never
    leaves this function (which is stricter)."""
    credentials = signing_credentials(tx.network)
    if credentials is None:
        logger.warning("no usable ACS signing key for network %s: app challenge answered U/22", tx.network or "?")
        return None
    acs_ephem_key = app_crypto.acs_ephem_key_new()
    session_key = app_crypto.session_key_derive(
        acs_ephem_key=acs_ephem_key,
        sdk_ephem_pub_key=app_crypto.sdk_ephem_pub_key_load(message["sdkEphemPubKey"]),
        sdk_reference_number=message["sdkReferenceNumber"],
    )
    sealed = app_crypto.session_key_seal(session_key, acs_trans_id=tx.acs_trans_id)
    challenge.app_session_key_id, challenge.app_session_key_blob = sealed.key_id, sealed.blob
    return app_crypto.acs_signed_content(
        acs_trans_id=tx.acs_trans_id,
        acs_ref_number=settings.ACS_REFERENCE_NUMBER,
        acs_url=app_acs_url(),
        acs_ephem_pub_key=app_crypto.ephem_pub_key_jwk(acs_ephem_key),
        sdk_ephem_pub_key=message["sdkEphemPubKey"],
        signing_key=credentials.private_key,
        chain=credentials.chain,
    )


def _decoupled_max_minutes(message: dict, ctx) -> int | None:
    """threeDSRequestorDecMaxTime when the AReq asks for decoupled authentication in a version
    that has it (validate_areq checked the format, and that it is present with DecReqInd Y);
    else None: a 2.1.0 message's elements of that name are unknown ones, ignored."""
    if not VERSION_RULES[ctx.version].decoupled or message.get("threeDSRequestorDecReqInd") != "Y":
        return None
    return int(message["threeDSRequestorDecMaxTime"])


def app_acs_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/3ds/v2/creq"
def _record(tx: Transaction, challenge: Challenge | None, ctx, *, facts: dict | None = None) -> None:
    """All of the AReq's writes, or none: the transaction first, so that a duplicate's INSERT
    fails on the unique ids before anything else is written, and nothing else is. On PostgreSQL
    the transaction, its challenge and both audit events are one statement; when nothing else is
    to be written (no notification), that statement is the whole database transaction."""
    rows = [[tx], [challenge] if challenge is not None else []]
    if tx.issuer_id:
        # Both events in this order (ids and created_at ascend with it).
        rows.append([
            audit_event(
                issuer=tx.issuer, kind="threeds.areq_received", actor="ds", acs_trans_id=tx.acs_trans_id,
                data={"channel": ctx.channel, "category": ctx.category, "version": ctx.version, "merchant": tx.merchant_name,
                      "amount": tx.purchase_amount, "currency": tx.purchase_currency, "last4": tx.pan_last4},
            ),
            audit_event(
                issuer=tx.issuer, kind="threeds.ares_sent", actor="acs", acs_trans_id=tx.acs_trans_id,
                data={"transStatus": tx.ares_trans_status, "transStatusReason": tx.trans_status_reason, "score": tx.risk_score,
                      "rules": tx.risk_rules, "method": challenge.method if challenge else None,
                      # As decided (also in the transaction's risk_facts): the audit trail's own copy.
                      **(facts or {}),
                      **({"decoupled": True} if challenge is not None and challenge.decoupled else {})},
            ),
        ])
    if challenge is not None and challenge.decoupled:
        # The OOB request and its pushes in the AReq's database transaction: a duplicate AReq's
        # INSERT fails first, so it never pushes twice.
        with transaction.atomic():
            areq_store.write(rows)
            challenge_decoupled_start(challenge)
        return
    finished = tx.ares_trans_status in ("Y", "A", "N", "U") and tx.issuer_id
    if not (finished and notification_url(tx)):
        areq_store.write(rows)
        return
    with transaction.atomic():
        areq_store.write(rows)
        transaction_finished(tx)


def _challenge_method(card: Card, policy) -> str | None:
    if policy.allow_oob and _oob_available(card):
        return Challenge.OOB
    if _sms_phone_for(card) is not None:
        return Challenge.SMS_OTP
    return None


def _why_no_method(card: Card, policy) -> dict:
    """Why neither the app nor an SMS could challenge (rare: one more read, on this path only)."""
    if not policy.allow_oob:
        oob = "not_allowed"
    elif not (card.issuer.webauthn_rp_id and card.issuer.webauthn_origins):
        oob = "not_configured"
    else:
        oob = "no_active_device"
    phones = list(card.cardholder.phones.values_list("is_primary", "verified"))
    if not phones:
        sms = "no_phone"
    elif any(verified for _, verified in phones):
        sms = "no_verified_primary"
    else:
        sms = "phone_unverified"
    return {"oob": oob, "sms": sms}


def _fail(tx: Transaction, reason: str, *, status: str = "N") -> None:
    tx.ares_trans_status = tx.trans_status = status
    tx.trans_status_reason = reason
    tx.eci = eci_for(network=tx.network, co_badge=tx.co_badge, trans_status=status) if tx.network else ""


def _succeed(tx: Transaction, status: str, pan: str) -> None:
    tx.ares_trans_status = tx.trans_status = status
    tx.eci = eci_for(network=tx.network, co_badge=tx.co_badge, trans_status=status)
    tx.authentication_value, tx.authentication_value_key_id = authentication_value(
        issuer_id=tx.issuer.issuer_id,
        pan=pan,
        ds_trans_id=tx.ds_trans_id,
        acs_trans_id=tx.acs_trans_id,
        purchase_amount=tx.purchase_amount,
        purchase_currency=tx.purchase_currency,
        trans_status=status,
    )


def cb_message_extensions(tx: Transaction) -> list[dict]:
    """Cartes Bancaires data elements (CB-SCORE, CB-AVALGO, CB-EXEMPTION) for co-badged cards."""
    if tx.network != CARTES_BANCAIRES:
        return []
    extensions = [{"name": "CB-AVALGO", "id": "A000000042_CB-AVALGO", "criticalityIndicator": False, "data": {"avalgo": CB_AVALGO}}]
    if tx.risk_score is not None:
        extensions.append({"name": "CB-SCORE", "id": "A000000042_CB-SCORE", "criticalityIndicator": False, "data": {"score": tx.risk_score}})
    extensions.append({"name": "CB-EXEMPTION", "id": "A000000042_CB-EXEMPTION", "criticalityIndicator": False,
                       "data": {"exemption": cb_exemption_bitmap(tx)}})
    return extensions


def cb_exemption_bitmap(tx: Transaction) -> str:
    """3-byte bitmap, least significant byte first, base64: 'AAAA' none, 'BAAA' low-risk granted."""
    import base64

    first = 0x04 if tx.exemption == "low_risk" else 0x00
    return base64.b64encode(bytes([first, 0, 0])).decode()


def _ares(tx: Transaction, message: dict, decision, acs_signed_content: str | None = None, cardholder_info: str | None = None) -> dict:
    ares = {
        "messageType": "ARes",
        "messageVersion": tx.message_version,
        "threeDSServerTransID": str(tx.three_ds_server_trans_id),
        "dsTransID": str(tx.ds_trans_id),
        "acsTransID": str(tx.acs_trans_id),
        "acsReferenceNumber": settings.ACS_REFERENCE_NUMBER,
        "dsReferenceNumber": message.get("dsReferenceNumber"),
        "transStatus": tx.ares_trans_status,
    }
    if tx.sdk_trans_id:
        ares["sdkTransID"] = str(tx.sdk_trans_id)
    if tx.trans_status_reason:
        ares["transStatusReason"] = tx.trans_status_reason
    if tx.eci:
        ares["eci"] = tx.eci
    if tx.authentication_value:
        ares["authenticationValue"] = tx.authentication_value
    if tx.ares_trans_status == "C":
        ares["acsChallengeMandated"] = "Y" if decision and decision.mandated else "N"
        ares["authenticationType"] = tx.authentication_type
        if tx.device_channel == BROWSER:
            ares["acsURL"] = f"{settings.PUBLIC_BASE_URL}/3ds/v2/challenge"
        else:
            ares["acsRenderingType"] = {"acsInterface": "01", "acsUiTemplate": "04" if tx.authentication_type == "03" else "01"}
            ares["acsURL"] = app_acs_url()
            ares["acsSignedContent"] = acs_signed_content
    elif tx.ares_trans_status == "D":
        ares["acsDecConInd"] = ACS_DEC_CON_IND_YES
        ares["authenticationType"] = tx.authentication_type
        ares["cardholderInfo"] = cardholder_info
    extensions = cb_message_extensions(tx)
    if extensions:
        ares["messageExtension"] = extensions
    return ares
