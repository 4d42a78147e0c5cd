"""Dashboard figures for one period, aggregated by the database (GROUP BY the truncated time),
always bounded to [start, end) and to the scope's issuer: a handful of grouped rows come back,
never the transactions themselves.

- volume: frictionless (ARes not C) versus challenged, per bucket;
- outcomes: final transStatus per bucket (C while a challenge still runs);
- fallback: challenges that started out of band, those that fell back to SMS, and why;
- SMS: deliveries per status per bucket; per provider (role:backend of each try): tries, accepted,
  failed, delivered according to the status callbacks, and latency p50/p95 — of the provider
  call (attempt duration) and from enqueue to acceptance (delivery created → accepted_at).

Percentiles are computed by PostgreSQL (percentile_cont); on SQLite (the embedded default, small
data) the durations of the period are read and the percentiles computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, FloatField, Q
from django.db.models.functions import Trunc

from apps.analyst.models import TransactionLabel
from apps.analyst.selectors import Scope
from apps.sms.models import SmsAttempt, SmsDelivery
from apps.threeds.emv import CHALLENGED_ARES_STATUSES
from apps.threeds.models import Challenge, Transaction

OUTCOMES = ["Y", "A", "N", "U", "R", "C"]  # C: no final status yet (a challenge or decoupled authentication running)
SMS_SUCCESS = {SmsDelivery.QUEUED, SmsDelivery.SENDING, SmsDelivery.SENT, SmsDelivery.DELIVERED}
SMS_FAILURE = {SmsDelivery.FAILED, SmsDelivery.UNDELIVERED}
CHALLENGE_SLACK = timedelta(hours=1)


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate: percentile_cont(fraction) WITHIN GROUP (ORDER BY expr)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


@dataclass
class ProviderStats:
    provider: str
    tries: int = 0
    accepted: int = 0
    failed_transient: int = 0
    failed_permanent: int = 0
    delivered: int = 0
    undelivered: int = 0
    call_p50_ms: float | None = None
    call_p95_ms: float | None = None
    deliveries_accepted: int = 0
    enqueue_p50_ms: float | None = None
    enqueue_p95_ms: float | None = None

    @property
    def acceptance_rate(self) -> float | None:
        return _rate(self.accepted, self.tries)

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among the tries whose fate a callback told."""
        return _rate(self.delivered, self.delivered + self.undelivered)


@dataclass
class LabelStats:
    """The period's transactions an analyst labelled, by label: how the ACS had decided them."""

    label: str
    total: int = 0
    frictionless: int = 0  # let through without a challenge
    challenged: int = 0
    authenticated: int = 0  # final transStatus Y or A


@dataclass
class Dashboard:
    start: datetime
    end: datetime
    granularity: str
    buckets: list[datetime]
    frictionless: list[int]
    challenged: list[int]
    outcomes: dict[str, list[int]]
    oob_started: list[int]
    fell_back: list[int]
    fallback_reasons: list[tuple[str, int]]
    methods: dict[str, int]
    sms_success: list[int]
    sms_failure: list[int]
    sms_pending: list[int]
    providers: list[ProviderStats] = field(default_factory=list)
    labels: list[LabelStats] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.frictionless) + sum(self.challenged)

    @property
    def is_empty(self) -> bool:
        return self.total == 0 and not any(self.sms_success) and not any(self.sms_failure)

    def rate(self, part: list[int], whole: list[int]) -> list[float | None]:
        return [_rate(p, w) for p, w in zip(part, whole)]

    @property
    def outcome_rates(self) -> dict[str, list[float | None]]:
        totals = [f + c for f, c in zip(self.frictionless, self.challenged)]
        return {status: self.rate(counts, totals) for status, counts in self.outcomes.items()}

    @property
    def fallback_rate(self) -> list[float | None]:
        return self.rate(self.fell_back, self.oob_started)

    @property
    def sms_success_rate(self) -> list[float | None]:
        return self.rate(self.sms_success, [s + f for s, f in zip(self.sms_success, self.sms_failure)])

    def totals(self) -> dict:
        finished = {s: sum(v) for s, v in self.outcomes.items()}
        sms_done = sum(self.sms_success) + sum(self.sms_failure)
        return {
            "transactions": self.total,
            "frictionless": sum(self.frictionless),
            "challenged": sum(self.challenged),
            "frictionless_rate": _rate(sum(self.frictionless), self.total),
            "outcomes": finished,
            "oob_started": sum(self.oob_started),
            "fell_back": sum(self.fell_back),
            "fallback_rate": _rate(sum(self.fell_back), sum(self.oob_started)),
            "sms": sms_done + sum(self.sms_pending),
            "sms_success_rate": _rate(sum(self.sms_success), sms_done),
        }


def _rate(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def bucket_starts(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    buckets, at = [], start
    while at < end:
        buckets.append(at)
        at += step
    return buckets


def _trunc(field_name: str, granularity: str):
    return Trunc(field_name, granularity, tzinfo=dt_timezone.utc)


def dashboard_querysets(*, scope: Scope, start: datetime, end: datetime, granularity: str) -> list[tuple[str, object]]:
    """The grouped queries of a dashboard (named, for EXPLAIN in bench/analyst_data.py)."""
    txs = scope.transactions().filter(created_at__gte=start, created_at__lt=end)
    # Challenges by their own created_at (written with the ARes, just after the transaction's).
    # The transaction's created_at, bounded too (with slack), lets PostgreSQL join two index range
    # scans of the period instead of reading every challenge.
    challenges = Challenge.objects.filter(
        created_at__gte=start, created_at__lt=end, transaction__ares_trans_status__in=CHALLENGED_ARES_STATUSES,
        transaction__created_at__gte=start - CHALLENGE_SLACK, transaction__created_at__lt=end,
    )
    sms = SmsDelivery.objects.filter(created_at__gte=start, created_at__lt=end)
    attempts = SmsAttempt.objects.filter(delivery__created_at__gte=start, delivery__created_at__lt=end)
    labels = TransactionLabel.objects.filter(transaction_created_at__gte=start, transaction_created_at__lt=end)
    if scope.issuer is not None:
        labels = labels.filter(issuer=scope.issuer)
        challenges = challenges.filter(transaction__issuer=scope.issuer)
        sms = sms.filter(issuer=scope.issuer)
        attempts = attempts.filter(delivery__issuer=scope.issuer)
    by_provider = {
        "tries": Count("pk"),
        "accepted": Count("pk", filter=Q(state=SmsAttempt.SUCCEEDED)),
        "failed_transient": Count("pk", filter=Q(state=SmsAttempt.FAILED_TRANSIENT)),
        "failed_permanent": Count("pk", filter=Q(state=SmsAttempt.FAILED_PERMANENT)),
        "delivered": Count("pk", filter=Q(provider_status=SmsDelivery.DELIVERED)),
        "undelivered": Count("pk", filter=Q(provider_status__in=[SmsDelivery.UNDELIVERED, SmsDelivery.FAILED])),
    }
    accepted = {"n": Count("pk")}
    if connection.vendor == "postgresql":
        # Percentiles in the same pass (ordered-set aggregates ignore NULL durations).
        enqueue = ExpressionWrapper(F("accepted_at") - F("created_at"), output_field=DurationField())
        by_provider.update(
            call_p50=PercentileCont("duration_ms", 0.5, output_field=FloatField()),
            call_p95=PercentileCont("duration_ms", 0.95, output_field=FloatField()),
        )
        accepted.update(
            enqueue_p50=PercentileCont(enqueue, 0.5, output_field=DurationField()),
            enqueue_p95=PercentileCont(enqueue, 0.95, output_field=DurationField()),
        )
    return [
        ("transactions", txs.order_by().values("ares_trans_status", "trans_status", bucket=_trunc("created_at", granularity))
         .annotate(n=Count("pk"))),
        ("challenges", challenges.order_by().values("method", "fallback_reason",
                                                     bucket=_trunc("created_at", granularity)).annotate(n=Count("pk"))),
        ("sms deliveries", sms.order_by().values("status", bucket=_trunc("created_at", granularity)).annotate(n=Count("pk"))),
        ("sms tries by provider", attempts.order_by().values("provider_role", "provider").annotate(**by_provider)),
        ("sms accepted by provider", sms.filter(accepted_at__isnull=False).order_by().values("provider").annotate(**accepted)),
        # The period's labels by their copy of the transaction's time, then their transactions by key.
        ("labels", labels.order_by().values("label", "transaction__ares_trans_status", "transaction__trans_status")
         .annotate(n=Count("pk"))),
    ]


def dashboard(*, scope: Scope, start: datetime, end: datetime, granularity: str) -> Dashboard:
    buckets = bucket_starts(start, end, granularity)
    index = {b: i for i, b in enumerate(buckets)}
    size = len(buckets)

    def zeros():
        return [0] * size

    queries = dict(dashboard_querysets(scope=scope, start=start, end=end, granularity=granularity))

    frictionless, challenged = zeros(), zeros()
    outcomes = {status: zeros() for status in OUTCOMES}
    for row in queries["transactions"]:
        i = index.get(_utc(row["bucket"]))
        if i is None:
            continue
        (challenged if row["ares_trans_status"] in CHALLENGED_ARES_STATUSES else frictionless)[i] += row["n"]
        status = row["trans_status"] or ("C" if row["ares_trans_status"] in CHALLENGED_ARES_STATUSES else "")
        if status in outcomes:
            outcomes[status][i] += row["n"]

    oob_started, fell_back = zeros(), zeros()
    reasons: dict[str, int] = {}
    methods: dict[str, int] = {}
    for row in queries["challenges"]:
        i = index.get(_utc(row["bucket"]))
        if i is None:
            continue
        methods[row["method"]] = methods.get(row["method"], 0) + row["n"]
        if row["method"] == Challenge.OOB or row["fallback_reason"]:
            oob_started[i] += row["n"]
        if row["fallback_reason"]:
            fell_back[i] += row["n"]
            reasons[row["fallback_reason"]] = reasons.get(row["fallback_reason"], 0) + row["n"]

    sms_success, sms_failure, sms_pending = zeros(), zeros(), zeros()
    for row in queries["sms deliveries"]:
        i = index.get(_utc(row["bucket"]))
        if i is None:
            continue
        if row["status"] in SMS_SUCCESS:
            sms_success[i] += row["n"]
        elif row["status"] in SMS_FAILURE:
            sms_failure[i] += row["n"]
        elif row["status"] == SmsDelivery.PENDING:
            sms_pending[i] += row["n"]

    return Dashboard(
        start=start, end=end, granularity=granularity, buckets=buckets,
        frictionless=frictionless, challenged=challenged, outcomes=outcomes,
        oob_started=oob_started, fell_back=fell_back,
        fallback_reasons=sorted(reasons.items(), key=lambda item: (-item[1], item[0])), methods=methods,
        sms_success=sms_success, sms_failure=sms_failure, sms_pending=sms_pending,
        providers=_providers(queries, scope=scope, start=start, end=end),
        labels=_labels(queries["labels"]),
    )


def _labels(rows) -> list[LabelStats]:
    stats = {label: LabelStats(label=label) for label, _ in TransactionLabel.LABELS}
    for row in rows:
        s = stats[row["label"]]
        s.total += row["n"]
        if row["transaction__ares_trans_status"] in CHALLENGED_ARES_STATUSES:
            s.challenged += row["n"]
        else:
            s.frictionless += row["n"]
        if row["transaction__trans_status"] in ("Y", "A"):
            s.authenticated += row["n"]
    return list(stats.values())


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(dt_timezone.utc) if value is not None else None


def _providers(queries: dict, *, scope: Scope, start: datetime, end: datetime) -> list[ProviderStats]:
    stats: dict[str, ProviderStats] = {}
    for row in queries["sms tries by provider"]:
        name = f"{row['provider_role']}:{row['provider']}"
        stats[name] = ProviderStats(
            provider=name, tries=row["tries"], accepted=row["accepted"], failed_transient=row["failed_transient"],
            failed_permanent=row["failed_permanent"], delivered=row["delivered"], undelivered=row["undelivered"],
            call_p50_ms=row.get("call_p50"), call_p95_ms=row.get("call_p95"),
        )
    for row in queries["sms accepted by provider"]:
        s = stats.setdefault(row["provider"], ProviderStats(provider=row["provider"]))
        s.deliveries_accepted = row["n"]
        s.enqueue_p50_ms, s.enqueue_p95_ms = _ms(row.get("enqueue_p50")), _ms(row.get("enqueue_p95"))
    if connection.vendor != "postgresql":
        _percentiles_in_python(stats, scope=scope, start=start, end=end)
    return sorted(stats.values(), key=lambda s: s.provider)


def _percentiles_in_python(stats: dict[str, ProviderStats], *, scope: Scope, start: datetime, end: datetime) -> None:
    """SQLite has no percentile aggregate: read the period's durations (small, embedded data)."""
    attempts = SmsAttempt.objects.filter(delivery__created_at__gte=start, delivery__created_at__lt=end, duration_ms__isnull=False)
    accepted = SmsDelivery.objects.filter(created_at__gte=start, created_at__lt=end, accepted_at__isnull=False)
    if scope.issuer is not None:
        attempts = attempts.filter(delivery__issuer=scope.issuer)
        accepted = accepted.filter(issuer=scope.issuer)
    durations: dict[str, list[float]] = {}
    for role, provider, ms in attempts.values_list("provider_role", "provider", "duration_ms"):
        durations.setdefault(f"{role}:{provider}", []).append(ms)
    for name, values in durations.items():
        if name in stats:
            stats[name].call_p50_ms, stats[name].call_p95_ms = percentile(values, 0.5), percentile(values, 0.95)
    waits: dict[str, list[float]] = {}
    for provider, created_at, accepted_at in accepted.values_list("provider", "created_at", "accepted_at"):
        waits.setdefault(provider, []).append((accepted_at - created_at).total_seconds() * 1000)
    for name, values in waits.items():
        if name in stats:
            stats[name].enqueue_p50_ms, stats[name].enqueue_p95_ms = percentile(values, 0.5), percentile(values, 0.95)


def _ms(value: timedelta | None) -> float | None:
    return value.total_seconds() * 1000 if value is not None else None


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks: what percentile_cont computes."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
