"""Reads of transactions, always scoped to one issuer: another issuer's transaction is simply not
found (404). Nothing here returns or logs a PAN."""

import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from apps.audit.models import AuditEvent
from apps.core.crypto import pan_fingerprint
from apps.core.exceptions import NotFound
from apps.core.logging import sensitive
from apps.threeds.emv import CHALLENGED_ARES_STATUSES
from apps.threeds.models import Transaction
from apps.threeds.results import authentication_value_matches

logger = logging.getLogger(__name__)

IN_CHALLENGE = "C"


def transaction_list(
    *,
    issuer,
    card: uuid.UUID | None = None,
    status: str | None = None,
    method: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Transaction]:
    """`status` is the final transStatus; "C" finds the challenges still running. `created_after`
    is inclusive, `created_before` exclusive."""
    qs = Transaction.objects.filter(issuer=issuer).select_related("card", "challenge")
    if card is not None:
        qs = qs.filter(card_id=card)
    if status == IN_CHALLENGE:
        qs = qs.filter(ares_trans_status__in=CHALLENGED_ARES_STATUSES, trans_status="")
    elif status:
        qs = qs.filter(trans_status=status)
    if method:
        qs = qs.filter(challenge__method=method)
    if created_after is not None:
        qs = qs.filter(created_at__gte=created_after)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    return qs


def transaction_get(*, issuer, acs_trans_id) -> Transaction:
    try:
        pk = uuid.UUID(str(acs_trans_id))
    except ValueError:
        raise NotFound("No such transaction.")
    tx = (
        Transaction.objects.filter(issuer=issuer, pk=pk)
        .select_related("issuer", "card", "challenge", "challenge__otp_session__policy_version", "rreq_delivery")
        .first()
    )
    if tx is None:
        raise NotFound("No such transaction.")
    return tx


def transaction_timeline(*, tx: Transaction) -> QuerySet[AuditEvent]:
    """What happened to the transaction, oldest first (audit data is scrubbed when written)."""
    return AuditEvent.objects.filter(issuer_id=tx.issuer_id, acs_trans_id=tx.acs_trans_id).order_by("created_at", "id")


@dataclass
class Verification:
    valid: bool
    transaction: Transaction


def authentication_value_verify(
    *, issuer, pan: str, ds_trans_id: uuid.UUID, authentication_value: str, purchase_amount: int | None, purchase_currency: str
) -> Verification:
    """For the issuer's authorisation system: is this the authenticationValue this service issued
    for this card, dsTransID, amount and currency? Recomputed with the key the transaction used.

    Unknown dsTransID (for this issuer): NotFound. A wrong PAN, amount, currency or value: not
    valid. Only Y and A results carry a value."""
    with sensitive(pan):
        candidates = list(Transaction.objects.filter(issuer=issuer, ds_trans_id=ds_trans_id).select_related("issuer"))
        if not candidates:
            raise NotFound("No transaction with this ds_trans_id.")
        fingerprint = pan_fingerprint(pan)
        same_card = [tx for tx in candidates if hmac.compare_digest(tx.pan_fingerprint, fingerprint)]
        # Several 3DS Servers may reuse a dsTransID only in theory; the newest answers.
        tx = max(same_card or candidates, key=lambda t: t.created_at)
        if not same_card or tx.trans_status not in ("Y", "A") or not tx.authentication_value_key_id:
            return Verification(False, tx)
        try:
            valid = authentication_value_matches(
                authentication_value,
                issuer_id=issuer.issuer_id,
                key_id=tx.authentication_value_key_id,
                pan=pan,
                ds_trans_id=tx.ds_trans_id,
                acs_trans_id=tx.acs_trans_id,
                purchase_amount=purchase_amount,
                purchase_currency=purchase_currency,
                trans_status=tx.trans_status,
            )
        except ImproperlyConfigured:
            # The key that made this value has been retired: it can no longer be vouched for.
            logger.warning("authentication value of %s: key %s is no longer configured", tx.acs_trans_id, tx.authentication_value_key_id)
            valid = False
        return Verification(valid, tx)
