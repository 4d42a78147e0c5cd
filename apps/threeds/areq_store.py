"""The AReq's fast path to the database: its one read and its writes, in one place.

An AReq is a read (the card, its issuer, the issuer's risk policy, the cardholder, and the card's
history that the risk rules need) and a write (the transaction, its challenge if any, two audit
events). Compiling those three or four statements with the ORM on every AReq was about two
thirds of its Python time, so their SQL is built once from the models' metadata by
apps.core.model_sql (documented APIs only; see there): the write is `model_sql.write` (one
statement on PostgreSQL), the read is `read_card` below.

What model_sql cannot write (a field with its own SQL placeholder, a composite primary key, a
model with a parent table) is refused at start-up by the system check `threeds.E001`
(`check_written_models`), never at the AReq, where any error is answered with `U`.
"""

from collections.abc import Sequence

from django.core import checks
from django.db import connections

from apps.audit.models import AuditEvent
from apps.cards.models import Card, Cardholder
from apps.core import model_sql
from apps.core.model_sql import InsertPlan, columns, load, unwritable_fields
from apps.issuers.models import BinGrant, Issuer
from apps.threeds.models import Challenge, RiskPolicy, ThreeDSMethodData, Transaction

# The models the AReq writes, and those it reads: the system check looks at the first.
WRITTEN_MODELS = (Transaction, Challenge, AuditEvent)
READ_MODELS = (Card, Issuer, RiskPolicy, Cardholder)


# ---------------------------------------------------------------- what can be written


def check_written_models(app_configs=None, **kwargs) -> list[checks.Error]:
    """System check threeds.E001: every model the AReq writes can be written by this module."""
    return [
        checks.Error(
            f"The AReq's fast path (apps/threeds/areq_store.py) cannot write this: {problem}.",
            hint="Teach apps.core.model_sql this kind of field (and test it), or keep it off the models the AReq writes.",
            obj=model,
            id="threeds.E001",
        )
        for model in WRITTEN_MODELS
        for problem in unwritable_fields(model)
    ]


# The AReq writes through the shared builder (tests reach it here too).
plan_for = model_sql.plan_for
write = model_sql.write
__all__ = ["InsertPlan", "check_written_models", "method_data_for", "plan_for", "read_card", "write"]


# ---------------------------------------------------------------- the read


_card_sqls: dict = {}


def _card_sql(*, with_merchant: bool, statuses: int, connection, with_method: bool = False) -> str:
    key = (with_merchant, statuses, connection.alias, with_method)
    if key not in _card_sqls:
        _card_sqls[key] = _build_card_sql(
            with_merchant=with_merchant, statuses=statuses, quote=connection.ops.quote_name, with_method=with_method)
    return _card_sqls[key]


def _build_card_sql(*, with_merchant: bool, statuses: int, quote, with_method: bool = False) -> str:
    """The AReq's one read: the card by fingerprint, its issuer, the issuer's risk policy (NULLs
    when it has none yet), its cardholder, and the card's history the risk rules need: the count
    since a moment (velocity) and the first transaction at this merchant with one of the given
    statuses (known merchant), or NULL.

    The merchant look-up is a scalar "first matching id or NULL" rather than EXISTS: PostgreSQL
    may run an EXISTS in the select list as a hashed subplan over every matching row of every
    card (seen: 17 ms on 8k rows); a scalar subquery with LIMIT 1 runs per card, on the
    (card, acquirer_merchant_id) index.

    Routing by grant (SPEC §2, §3.1): the card is found only through its own grant, which must
    belong to the card's issuer and hold the PAN's prefix. Grants never overlap (a database
    constraint), so at most one issuer can answer and, a PAN being enrolled once per issuer, at
    most one card: the ORDER BY only keeps the statement deterministic should that ever change.

    With `with_method` (a browser AReq saying threeDSCompInd Y), also the 3DS Method's data kept
    for its threeDSServerTransID since a moment (SPEC §3.8), by the unique index, or NULL: the
    AReq's read stays one statement."""

    def col(model, name):
        return quote(model._meta.get_field(name).column)

    tx = quote(Transaction._meta.db_table)
    placeholders = ", ".join(f"%(status{i})s" for i in range(statuses))
    known = (
        f"(SELECT t.{col(Transaction, 'acs_trans_id')} FROM {tx} t WHERE t.{col(Transaction, 'card')} = c.{col(Card, 'id')}"
        f" AND t.{col(Transaction, 'acquirer_merchant_id')} = %(merchant)s AND t.{col(Transaction, 'trans_status')} IN ({placeholders}) LIMIT 1)"
        if with_merchant else "NULL"
    )
    method = (
        f"(SELECT m.{col(ThreeDSMethodData, 'data')} FROM {quote(ThreeDSMethodData._meta.db_table)} m"
        f" WHERE m.{col(ThreeDSMethodData, 'three_ds_server_trans_id')} = %(method_id)s"
        f" AND m.{col(ThreeDSMethodData, 'created_at')} >= %(method_since)s)"
        if with_method else "NULL"
    )
    return (
        f"SELECT {columns(Card, 'c', quote)}, {columns(Issuer, 'i', quote)},"
        f" {columns(RiskPolicy, 'p', quote)}, {columns(Cardholder, 'h', quote)},"
        f" (SELECT COUNT(*) FROM {tx} t WHERE t.{col(Transaction, 'card')} = c.{col(Card, 'id')}"
        f" AND t.{col(Transaction, 'created_at')} >= %(since)s), {known}, {method}"
        f" FROM {quote(Card._meta.db_table)} c"
        f" INNER JOIN {quote(Issuer._meta.db_table)} i ON i.{col(Issuer, 'id')} = c.{col(Card, 'issuer')}"
        f" INNER JOIN {quote(BinGrant._meta.db_table)} g ON g.{col(BinGrant, 'id')} = c.{col(Card, 'grant')}"
        f" AND g.{col(BinGrant, 'issuer')} = c.{col(Card, 'issuer')}"
        f" AND g.{col(BinGrant, 'low')} <= %(prefix)s AND g.{col(BinGrant, 'high')} >= %(prefix)s"
        f" INNER JOIN {quote(Cardholder._meta.db_table)} h ON h.{col(Cardholder, 'id')} = c.{col(Card, 'cardholder')}"
        f" LEFT OUTER JOIN {quote(RiskPolicy._meta.db_table)} p ON p.{col(RiskPolicy, 'issuer')} = i.{col(Issuer, 'id')}"
        f" WHERE c.{col(Card, 'pan_fingerprint')} = %(fingerprint)s ORDER BY c.{col(Card, 'id')} LIMIT 1"
    )


def read_card(*, fingerprint: str, prefix: int, since, merchant: str, statuses: Sequence[str], using: str = "default",
              method_trans_id=None, method_since=None):
    """The card of this PAN fingerprint inside the grant holding the PAN's prefix key, with its
    issuer, risk policy and cardholder loaded as select_related would (no lazy query follows),
    and two attributes: `risk_recent_count` (its transactions created since `since`) and
    `risk_merchant_known_id` (one of its transactions at `merchant` with one of `statuses`, or
    None), and with `method_trans_id` a third, `method_data` (the 3DS Method's data for that
    threeDSServerTransID kept since `method_since`, or None); or None. One statement, through
    Django's cursor (CONN_HEALTH_CHECKS as usual)."""
    connection = connections[using]
    with_method = method_trans_id is not None
    sql = _card_sql(with_merchant=bool(merchant), statuses=len(statuses), connection=connection, with_method=with_method)
    params = {
        "fingerprint": fingerprint, "prefix": prefix, "merchant": merchant,
        "since": Transaction._meta.get_field("created_at").get_db_prep_value(since, connection),
        **{f"status{i}": status for i, status in enumerate(statuses)},
    }
    if with_method:
        params["method_id"] = ThreeDSMethodData._meta.get_field("three_ds_server_trans_id").get_db_prep_value(method_trans_id, connection)
        params["method_since"] = ThreeDSMethodData._meta.get_field("created_at").get_db_prep_value(method_since, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    parts, at = [], 0
    for model in READ_MODELS:
        width = len(model._meta.concrete_fields)
        parts.append(row[at:at + width])
        at += width
    card = load(Card, parts[0], connection, using)
    issuer = load(Issuer, parts[1], connection, using)
    holder = load(Cardholder, parts[3], connection, using)
    # Assigned through the relations' descriptors, which cache both sides as select_related does.
    card.issuer, card.cardholder = issuer, holder
    if parts[2][0] is not None:
        issuer.risk_policy = load(RiskPolicy, parts[2], connection, using)
    card.risk_recent_count, card.risk_merchant_known_id = row[at], row[at + 1]
    if with_method:
        card.method_data = method_data_load(row[at + 2], connection)
    return card


def method_data_load(value, connection):
    """A JSON column read by a raw cursor: text on SQLite and (as Django sets psycopg up) on
    PostgreSQL; decoded by the field as the ORM would."""
    if value is None:
        return None
    field = ThreeDSMethodData._meta.get_field("data")
    return field.from_db_value(value, None, connection)


def method_data_for(server_trans_id, *, since, using: str = "default"):
    """The 3DS Method's data for an AReq whose card was not found (its one read had no row)."""
    row = ThreeDSMethodData.objects.using(using).filter(
        three_ds_server_trans_id=server_trans_id, created_at__gte=since).values_list("data", flat=True).first()
    return row
