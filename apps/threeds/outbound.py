"""What goes out when a transaction ends: the 3DS notification to the issuer's backend (SPEC §5.4)
and, after a challenge, the RReq to the DS (apps.threeds.rreq)."""

import uuid

from apps.threeds.emv import (
    REASON_3RI_NOT_SUPPORTED,
    REASON_CARD_EXPIRED,
    REASON_FREQUENCY_LIMIT,
    REASON_LOST_STOLEN,
    REASON_NO_CARD_RECORD,
    REASON_NO_METHOD,
    REASON_TIMEOUT,
    REASON_TOO_MANY_ATTEMPTS,
    REASON_TRANSACTION_NOT_PERMITTED,
)
from apps.threeds.models import Challenge, Transaction
from apps.webhooks.models import KIND_3DS_NOTIFICATION
from apps.webhooks.services import iso_8601_utc, webhook_delivery_create

OPERATION_FRICTIONLESS = "3DS_FRICTIONLESS"
OPERATION_OOB = "3DS_CHALLENGE_OOB"
OPERATION_OTP_SMS = "3DS_CHALLENGE_OTP_SMS"


def notification_operation(tx: Transaction) -> str:
    challenge = getattr(tx, "challenge", None) if tx.ares_trans_status in ("C", "D") else None
    if challenge is None:
        return OPERATION_FRICTIONLESS
    # The method that decided: an OOB challenge that fell back to SMS is an SMS challenge.
    return OPERATION_OOB if challenge.method == Challenge.OOB else OPERATION_OTP_SMS


def notification_payload(tx: Transaction) -> dict:
    challenge = getattr(tx, "challenge", None) if tx.ares_trans_status in ("C", "D") else None
    succeeded = tx.trans_status in ("Y", "A")
    payload = {
        "operationId": str(uuid.uuid4()),
        "operation": notification_operation(tx),
        "status": "SUCCESSFUL" if succeeded else "FAILED",
        "startTime": iso_8601_utc(tx.created_at),
        "consumerId": tx.card.cardholder.external_id if tx.card else "",
        "details": {
            "acsTransactionId": str(tx.acs_trans_id),
            "threeDSServerTransId": str(tx.three_ds_server_trans_id),
            "dsTransId": str(tx.ds_trans_id),
            "transStatus": tx.trans_status,
            "transStatusReason": tx.trans_status_reason or None,
            "eci": tx.eci or None,
            "merchantName": tx.merchant_name,
            "purchaseAmount": str(tx.purchase_amount) if tx.purchase_amount is not None else None,
            "purchaseCurrency": tx.purchase_currency or None,
            "fallbackReason": (challenge.fallback_reason or None) if challenge else None,
        },
    }
    if not succeeded:
        payload["error"] = {"code": f"TRANS_STATUS_{tx.trans_status}_{tx.trans_status_reason or '00'}", "message": _reason_text(tx)}
    return payload


def _reason_text(tx: Transaction) -> str:
    texts = {
        REASON_CARD_EXPIRED: "Card expired.",
        REASON_NO_CARD_RECORD: "No card record.",
        REASON_LOST_STOLEN: "Card reported lost or stolen.",
        REASON_FREQUENCY_LIMIT: "Too many authentications for the card.",
        REASON_TRANSACTION_NOT_PERMITTED: "Transaction not permitted to the cardholder.",
        REASON_NO_METHOD: "No challenge method available.",
        REASON_TIMEOUT: "Challenge timed out.",
        REASON_TOO_MANY_ATTEMPTS: "Too many wrong codes.",
        REASON_3RI_NOT_SUPPORTED: "Challenge needed without the cardholder present.",
    }
    if tx.challenge_cancel == "01":
        return "Cancelled by the cardholder."
    return texts.get(tx.trans_status_reason, "Authentication failed.")


def notification_url(tx: Transaction) -> str | None:
    base = (tx.issuer.notification_base_url or "").rstrip("/")
    if not base or tx.card is None:
        return None
    return f"{base}/notifications/d1/v1/issuers/{tx.issuer.issuer_id}/cards/{tx.card.card_id}/3ds/notifications"


def transaction_finished(tx: Transaction) -> None:
    """Inside the transaction that recorded the result: the outbound messages are sent after it
    commits, each with its own delivery row and retries (nothing is lost if a worker dies)."""
    url = notification_url(tx)
    if url:
        webhook_delivery_create(
            issuer=tx.issuer, kind=KIND_3DS_NOTIFICATION, url=url, payload=notification_payload(tx), acs_trans_id=tx.acs_trans_id
        )
    if tx.ares_trans_status in ("C", "D"):  # a challenge, or a decoupled authentication (SPEC §3.9)
        from apps.threeds.rreq import rreq_enqueue

        rreq_enqueue(tx)
