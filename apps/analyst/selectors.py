"""Reads for the analyst workspace (SPEC §5.6): the filtered transaction list with keyset
pagination, one transaction with its merged event timeline, and the rows of the CSV export.

Everything starts from a `Scope`: one issuer's rows, or every issuer's for a superuser. Another
issuer's transaction is simply not found. Nothing here reads a PAN (there is none in clear), an
OTP (stored hashed; the DeliverOTP payload is never read) or an authentication value.

The list is ordered by (created_at, acs_trans_id) descending and paged by that key, never by
OFFSET and never with a COUNT: the indexes that serve each filter are described in
docs/BENCHMARKS-ANALYST.md, with their EXPLAIN plans on a million transactions.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterator

from django.apps import apps
from django.db.models import Q, QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from apps.analyst.models import TransactionLabel
from apps.audit.models import AuditEvent
from apps.cards.models import Card
from apps.core.exceptions import NotFound
from apps.core.money import currency_alpha
from apps.core.pagination import NEWEST_FIRST, Cursor, Page, page_from_rows, page_queryset
from apps.oob.models import AuthnRequest
from apps.sms.models import SmsDelivery
from apps.threeds.emv import CHALLENGED_ARES_STATUSES, TRANS_STATUS_DESCRIPTIONS
from apps.threeds.models import Challenge, RReqDelivery, Transaction
from apps.webhooks.models import KIND_DELIVER_OTP, WebhookDelivery

FRICTIONLESS = "frictionless"
METHODS = [(Challenge.OOB, _("OOB (app)")), (Challenge.SMS_OTP, _("SMS OTP")), (FRICTIONLESS, _("Frictionless (no challenge)"))]
IN_CHALLENGE = "C"  # as a filter: the challenge is still running (no final transStatus yet)
TRANS_STATUSES = [
    *((s, format_lazy("{} — {}", s, TRANS_STATUS_DESCRIPTIONS[s])) for s in ("Y", "A", "N", "U", "R")),
    (IN_CHALLENGE, _("C — challenge running")),
]
FALLBACK_REASONS = [
    "cancelled_in_app", "oob_timeout", "push_failed", "push_rate_limited", "assertion_failed", "device_blocked",
    "no_active_device",
]
LABELLED = "any"  # as a filter: labelled fraud or genuine
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
EXPORT_CHUNK = 2000

# Keys never shown from a recorded document (audit data, messages), whatever their value.
HIDDEN_KEYS = {"authenticationvalue", "otp", "code", "pan", "acctnumber", "secret", "token"}


@dataclass(frozen=True)
class Scope:
    """Whose data a request may read: one issuer's, or (issuer None) every issuer's."""

    issuer: Any = None

    def transactions(self) -> QuerySet[Transaction]:
        qs = Transaction.objects.all()
        return qs.filter(issuer=self.issuer) if self.issuer is not None else qs


@dataclass(frozen=True)
class TransactionFilters:
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    trans_status: str = ""
    method: str = ""
    fell_back: bool | None = None
    fallback_reason: str = ""
    merchant: str = ""
    merchant_match: str = "prefix"  # or "contains"; case-insensitive either way
    last4: str = ""
    currency: str = ""
    amount_min: int | None = None  # minor units of `currency`
    amount_max: int | None = None
    acs_trans_id: uuid.UUID | None = None
    ds_trans_id: uuid.UUID | None = None
    card_id: str = ""  # the issuer's card id
    cardholder: str = ""  # the cardholder's external_id
    label: str = ""  # an analyst's label: fraud, genuine, or "any" (labelled at all)

    def describe(self) -> dict:
        """The filters that are set, JSON-safe (for the export's audit event)."""
        described = {}
        for name, value in self.__dict__.items():
            if value in (None, "") or (name == "merchant_match" and not self.merchant):
                continue
            described[name] = value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value
        return described

    @classmethod
    def from_described(cls, described: dict) -> "TransactionFilters":
        """The inverse of describe(): how an export job replays the filters it was asked for."""
        values = dict(described)
        for name in ("created_from", "created_to"):
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        for name in ("acs_trans_id", "ds_trans_id"):
            if values.get(name):
                values[name] = uuid.UUID(values[name])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


def transaction_list(*, scope: Scope, filters: TransactionFilters) -> QuerySet[Transaction]:
    """The scope's transactions matching every filter that is set, not yet ordered."""
    f = filters
    qs = scope.transactions()
    if f.acs_trans_id is not None:
        qs = qs.filter(acs_trans_id=f.acs_trans_id)
    if f.ds_trans_id is not None:
        qs = qs.filter(ds_trans_id=f.ds_trans_id)
    if f.created_from is not None:
        qs = qs.filter(created_at__gte=f.created_from)
    if f.created_to is not None:
        qs = qs.filter(created_at__lt=f.created_to)
    if f.trans_status == IN_CHALLENGE:
        qs = qs.filter(ares_trans_status__in=CHALLENGED_ARES_STATUSES, trans_status="")
    elif f.trans_status:
        qs = qs.filter(trans_status=f.trans_status)
    # Every challenge filter also says ares_trans_status IN ('C', 'D'): only challenged (or decoupled)
    # transactions have a challenge, and it lets PostgreSQL walk the partial index of them.
    if f.method == FRICTIONLESS:
        qs = qs.exclude(ares_trans_status__in=CHALLENGED_ARES_STATUSES)
    elif f.method:
        qs = qs.filter(ares_trans_status__in=CHALLENGED_ARES_STATUSES, challenge__method=f.method)
    if f.fallback_reason:
        qs = qs.filter(ares_trans_status__in=CHALLENGED_ARES_STATUSES, challenge__fallback_reason=f.fallback_reason)
    elif f.fell_back is True:
        qs = qs.filter(ares_trans_status__in=CHALLENGED_ARES_STATUSES, challenge__fallback_reason__gt="")
    elif f.fell_back is False:
        qs = qs.filter(Q(challenge__isnull=True) | Q(challenge__fallback_reason=""))
    if f.merchant:
        lookup = "merchant_name__icontains" if f.merchant_match == "contains" else "merchant_name__istartswith"
        qs = qs.filter(**{lookup: f.merchant})
    if f.last4:
        qs = qs.filter(pan_last4=f.last4)
    if f.currency:
        qs = qs.filter(purchase_currency=f.currency)
    if f.amount_min is not None:
        qs = qs.filter(purchase_amount__gte=f.amount_min)
    if f.amount_max is not None:
        qs = qs.filter(purchase_amount__lte=f.amount_max)
    # Cards, cardholders and labels are few beside transactions: find their ids first, then walk
    # the transactions' (card, created_at) index or the scope's keyset index with them.
    if f.card_id or f.cardholder:
        cards = Card.objects.all() if scope.issuer is None else Card.objects.filter(issuer=scope.issuer)
        if f.card_id:
            cards = cards.filter(card_id=f.card_id)
        if f.cardholder:
            cards = cards.filter(cardholder__external_id=f.cardholder)
        qs = qs.filter(card__in=cards.values("pk"))
    if f.label:
        labels = TransactionLabel.objects.all() if scope.issuer is None else TransactionLabel.objects.filter(issuer=scope.issuer)
        if f.label != LABELLED:
            labels = labels.filter(label=f.label)
        # A semi-join: PostgreSQL walks the newest transactions, probing the label's unique index
        # (15–90 ms at 1M rows and 2,000 labels, docs/BENCHMARKS.md).
        qs = qs.filter(acs_trans_id__in=labels.values("transaction_id"))
    return qs


# ---------------------------------------------------------------- keyset pagination (apps.core.pagination)


def transaction_page_queryset(*, scope: Scope, filters: TransactionFilters, cursor: Cursor | None, size: int) -> QuerySet:
    """One page plus one row (to know whether there is more), in the order it is read."""
    # The challenge and issuer of the page's rows come in their own small queries (prefetch): a
    # join here would be made for every candidate row before the sort, not for the 51 kept. The
    # messages are not shown in the list.
    qs = transaction_list(scope=scope, filters=filters).prefetch_related("challenge", "issuer", "label").defer("areq", "ares")
    return page_queryset(qs, cursor=cursor, size=size)


def transaction_page(*, scope: Scope, filters: TransactionFilters, cursor: Cursor | None, size: int = PAGE_SIZE) -> Page:
    size = max(1, min(size, MAX_PAGE_SIZE))
    rows = list(transaction_page_queryset(scope=scope, filters=filters, cursor=cursor, size=size))
    return page_from_rows(rows, cursor=cursor, size=size)


# ---------------------------------------------------------------- one transaction


def transaction_get(*, scope: Scope, acs_trans_id) -> Transaction:
    try:
        pk = uuid.UUID(str(acs_trans_id))
    except ValueError:
        raise NotFound("No such transaction.")
    tx = (
        scope.transactions()
        .filter(pk=pk)
        .select_related(
            "issuer", "card__cardholder", "challenge", "challenge__otp_session__policy_version", "rreq_delivery",
            "label__labelled_by",
        )
        .first()
    )
    if tx is None:
        raise NotFound("No such transaction.")
    return tx


def amount_major(amount: int | None, exponent: int | None) -> Decimal | None:
    if amount is None:
        return None
    return Decimal(amount).scaleb(-(exponent or 0))


def amount_text(tx: Transaction) -> str:
    major = amount_major(tx.purchase_amount, tx.purchase_exponent)
    if major is None:
        return "—"
    return f"{major:,.{tx.purchase_exponent or 0}f} {currency_alpha(tx.purchase_currency)}"


@dataclass
class ChallengeSummary:
    method: str
    method_label: str
    state: str
    fallback_reason: str
    otp_attempts_used: int | None
    otp_max_attempts: int | None
    resends_used: int | None
    created_at: datetime | None
    creq_received_at: datetime | None
    finished_at: datetime | None
    started_as_oob: bool


def challenge_summary(*, tx: Transaction) -> ChallengeSummary | None:
    challenge = getattr(tx, "challenge", None)
    if challenge is None:
        return None
    session = challenge.otp_session
    rules = getattr(getattr(session, "policy_version", None), "rules", None) if session is not None else None
    return ChallengeSummary(
        method=challenge.method,
        method_label=challenge.get_method_display(),
        state=challenge.state,
        fallback_reason=challenge.fallback_reason,
        otp_attempts_used=session.attempts_used if session is not None else None,
        otp_max_attempts=getattr(rules, "max_attempts", None),
        resends_used=session.resends_used if session is not None else None,
        created_at=challenge.created_at,
        creq_received_at=challenge.creq_received_at,
        finished_at=challenge.finished_at,
        started_as_oob=challenge.method == Challenge.OOB or bool(challenge.fallback_reason),
    )


def masked_authentication_value(value: str) -> str:
    """Whether one was issued, never the value: a cryptogram good for an authorisation."""
    return "issued (not shown)" if value else "—"


# ---------------------------------------------------------------- timeline


@dataclass
class TimelineEntry:
    at: datetime
    source: str  # what recorded it: "event", "sms", "sms try", "push", "oob", "webhook", "rreq", ...
    title: str
    details: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = ""  # "ok", "fail" or "" — for the eye only, the text says it too
    order: int = 0  # ties at the same instant keep the order of the sources below


def _shown(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(_hide(value), ensure_ascii=False, sort_keys=True)
    return "" if value is None else str(value)


def _hide(value):
    if isinstance(value, dict):
        return {k: "[not shown]" if str(k).lower().replace("_", "") in HIDDEN_KEYS else _hide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return value


def _details(**values) -> list[tuple[str, str]]:
    return [(k.replace("_", " "), _shown(v)) for k, v in values.items() if v not in (None, "", [], {})]


def _ms(value) -> str:
    return f"{value} ms" if value is not None else ""


_SMS_TRY_OUTCOME = {"succeeded": "ok", "failed_transient": "fail", "failed_permanent": "fail", "interrupted": "fail"}
_FAILED_WORDS = ("failed", "undelivered", "refused", "locked", "wrong", "expired", "error", "fallback", "cancel")


def _event_outcome(kind: str) -> str:
    if any(word in kind for word in _FAILED_WORDS):
        return "fail"
    if kind.endswith((".delivered", ".verified", ".approved", ".rres_received", ".sent")):
        return "ok"
    return ""


def transaction_timeline(*, tx: Transaction) -> list[TimelineEntry]:
    """Everything recorded about the transaction, oldest first: audit events (AReq received … RRes
    received, OTP, OOB, SMS status callbacks), every SMS delivery and try, push deliveries and
    tries, the OOB request, webhook deliveries and tries, the RReq and its tries."""
    entries: list[TimelineEntry] = []
    issuer_id, acs_trans_id = tx.issuer_id, tx.acs_trans_id

    for e in AuditEvent.objects.filter(issuer_id=issuer_id, acs_trans_id=acs_trans_id).order_by("created_at", "id"):
        entries.append(TimelineEntry(e.created_at, "event", e.kind, [("by", e.actor), *_details(**e.data)], _event_outcome(e.kind), 0))

    deliveries = SmsDelivery.objects.filter(issuer_id=issuer_id, acs_trans_id=acs_trans_id).prefetch_related("attempts")
    for n, d in enumerate(sorted(deliveries, key=lambda d: d.created_at), start=1):
        entries.append(TimelineEntry(
            d.created_at, "sms", f"SMS #{n} queued ({d.purpose})",
            _details(to=d.masked_to, sender_id=d.sender_id, status_now=d.status, provider=d.provider, error_code=d.error_code), "", 1,
        ))
        for a in sorted(d.attempts.all(), key=lambda a: (a.started_at, a.pk)):
            entries.append(TimelineEntry(
                a.started_at, "sms try", f"SMS #{n}: {a.provider_role} {a.provider} try {a.try_number} — {a.state}",
                _details(provider_message_id=a.provider_message_id, last_status_callback=a.provider_status,
                         error_code=a.error_code, error=a.error_message, duration=_ms(a.duration_ms)),
                "fail" if a.provider_status in ("undelivered", "failed") else _SMS_TRY_OUTCOME.get(a.state, ""), 2,
            ))
        if d.accepted_at:
            entries.append(TimelineEntry(d.accepted_at, "sms", f"SMS #{n} accepted by {d.provider}",
                                         _details(enqueue_to_accepted=_ms(_delta_ms(d.created_at, d.accepted_at))), "ok", 3))

    entries += _push_entries(issuer_id, acs_trans_id)

    request = AuthnRequest.objects.filter(challenge_id=acs_trans_id, issuer_id=issuer_id).first()
    if request is not None:
        entries.append(TimelineEntry(request.created_at, "oob", "OOB request created",
                                     _details(devices=request.devices.count(), due=request.expires_at.isoformat()), "", 1))
        if request.proceeded_at:
            entries.append(TimelineEntry(request.proceeded_at, "oob", "OOB: cardholder proceeded in the app", [], "", 1))
        if request.decided_at:
            entries.append(TimelineEntry(request.decided_at, "oob", f"OOB request {request.state}",
                                         _details(assertion_failures=request.assertion_failures),
                                         "ok" if request.state == AuthnRequest.APPROVED else "fail", 1))
        elif not request.is_open:
            entries.append(TimelineEntry(request.expires_at, "oob", f"OOB request {request.state}",
                                         _details(assertion_failures=request.assertion_failures), "fail", 1))

    for w in WebhookDelivery.objects.filter(issuer_id=issuer_id, acs_trans_id=acs_trans_id).prefetch_related("attempts"):
        label = "DeliverOTP" if w.kind == KIND_DELIVER_OTP else "3DS notification" if w.kind == "3ds_notification" else w.kind
        # Never the DeliverOTP payload (it carried the code); from a notification, its outcome only.
        shown = {} if w.kind == KIND_DELIVER_OTP else {k: w.display_payload.get(k) for k in ("operation", "status")}
        entries.append(TimelineEntry(w.created_at, "webhook", f"{label} queued",
                                     _details(status_now=w.status, tries=w.tries, last_error=w.last_error, **shown), "", 1))
        for a in w.attempts.all():
            ok = a.status_code is not None and 200 <= a.status_code < 300
            entries.append(TimelineEntry(a.started_at, "webhook try", f"{label} try {a.number} — HTTP {a.status_code or 'no answer'}",
                                         _details(error=a.error_class, duration=_ms(a.duration_ms)), "ok" if ok else "fail", 2))

    rreq = RReqDelivery.objects.filter(transaction=tx).prefetch_related("attempts").first()
    if rreq is not None:
        message = {k: rreq.message.get(k) for k in ("transStatus", "transStatusReason", "eci", "challengeCancel", "interactionCounter")}
        entries.append(TimelineEntry(rreq.created_at, "rreq", "RReq queued to the DS",
                                     _details(status_now=rreq.status, tries=rreq.tries, **message), "", 1))
        for a in rreq.attempts.all():
            ok = a.results_status == "01"
            entries.append(TimelineEntry(
                a.started_at, "rreq try", f"RReq try {a.number} — HTTP {a.status_code or 'no answer'}"
                + (f", RRes resultsStatus {a.results_status}" if a.results_status else ""),
                _details(error=a.error_message or a.error_class, duration=_ms(a.duration_ms)), "ok" if ok else "fail", 2,
            ))

    entries.sort(key=lambda e: (e.at, e.order))
    return entries


def _delta_ms(start, end) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def _push_entries(issuer_id, acs_trans_id) -> list[TimelineEntry]:
    """Push deliveries and tries, when apps.push is installed (it is optional to this page)."""
    try:
        PushDelivery = apps.get_model("push", "PushDelivery")
    except LookupError:
        return []
    entries = []
    for p in PushDelivery.objects.filter(issuer_id=issuer_id, acs_trans_id=acs_trans_id).prefetch_related("attempts"):
        device = getattr(p, "device_id", "")
        entries.append(TimelineEntry(p.created_at, "push", f"Push to device {device} queued",
                                     _details(platform=getattr(p, "platform", ""), status_now=p.status,
                                              error_code=getattr(p, "error_code", "")), "", 1))
        for a in sorted(p.attempts.all(), key=lambda a: (a.started_at, a.pk)):
            outcome = getattr(a, "state", "")
            entries.append(TimelineEntry(
                a.started_at, "push try", f"Push try {a.number} — {outcome}",
                _details(http_status=getattr(a, "status_code", None), error_code=getattr(a, "error_code", ""),
                         duration=_ms(getattr(a, "duration_ms", None))),
                "ok" if outcome == "succeeded" else "fail" if outcome.startswith("failed") else "", 2,
            ))
    return entries


# ---------------------------------------------------------------- export


def transaction_count_upto(*, scope: Scope, filters: TransactionFilters, limit: int) -> int:
    """How many match, counting no further than `limit` (a COUNT over a LIMITed subquery): decides
    between a streamed export and a background job without counting 800,000 rows."""
    return transaction_list(scope=scope, filters=filters)[:limit].count()


EXPORT_COLUMNS = [
    # (header, values_list path)
    ("created_at", "created_at"),
    ("issuer_id", "issuer__issuer_id"),
    ("acs_trans_id", "acs_trans_id"),
    ("ds_trans_id", "ds_trans_id"),
    ("three_ds_server_trans_id", "three_ds_server_trans_id"),
    ("message_version", "message_version"),
    ("device_channel", "device_channel"),
    ("message_category", "message_category"),
    ("card_last4", "pan_last4"),
    ("network", "network"),
    ("merchant_name", "merchant_name"),
    ("mcc", "mcc"),
    ("merchant_country_code", "merchant_country_code"),
    ("purchase_amount_minor", "purchase_amount"),
    ("purchase_currency", "purchase_currency"),
    ("purchase_exponent", "purchase_exponent"),
    ("risk_score", "risk_score"),
    ("exemption", "exemption"),
    ("ares_trans_status", "ares_trans_status"),
    ("method", "challenge__method"),
    ("challenge_state", "challenge__state"),
    ("fallback_reason", "challenge__fallback_reason"),
    ("trans_status", "trans_status"),
    ("trans_status_reason", "trans_status_reason"),
    ("eci", "eci"),
    ("challenge_cancel", "challenge_cancel"),
    ("finished_at", "finished_at"),
]
EXPORT_HEADER = [header for header, _ in EXPORT_COLUMNS[:15]] + ["purchase_amount"] + [h for h, _ in EXPORT_COLUMNS[15:]]


def transaction_export_rows(*, scope: Scope, filters: TransactionFilters) -> Iterator[list]:
    """The filtered list, newest first, one list of cell values per transaction (header order),
    streamed from a server-side cursor in chunks: memory stays flat on millions of rows."""
    qs = transaction_list(scope=scope, filters=filters).order_by(*NEWEST_FIRST).values_list(*(p for _, p in EXPORT_COLUMNS))
    for values in qs.iterator(chunk_size=EXPORT_CHUNK):
        row = list(values)
        # The amount in major units (exponent honoured) beside the raw minor units and currency.
        major = amount_major(row[13], row[15])
        row.insert(15, "" if major is None else f"{major:.{row[15] or 0}f}")
        yield row
