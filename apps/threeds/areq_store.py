"""The AReq's fast path to the database: its one read and its writes, in one place.

An AReq is a read (the card, its issuer, the issuer's risk policy, the cardholder, and the card's
history that the risk rules need) and a write (the transaction, its challenge if any, two audit
events). Compiling those three or four statements with the ORM on every AReq was about two
thirds of its Python time, so their SQL is built here once per model from the models' metadata,
through documented APIs only:

- tables and columns from `Model._meta` (`db_table`, `concrete_fields`, `field.column`), quoted
  by `connection.ops.quote_name`: the statements follow the models and their migrations;
- values written as the ORM writes them: `field.pre_save(obj, add=True)` (defaults were applied
  when the instance was made; `auto_now_add` here), then `field.get_db_prep_save(value,
  connection)`; a field left to its `db_default` (or a `GeneratedField`) is left out of the
  INSERT so the database fills it, and it reads back from the database on first access;
- values read as the ORM reads them: the backend's and the field's converters
  (`connection.ops.get_db_converters`, `Col.get_db_converters`) and `Model.from_db`.

What this module cannot write (a field with its own SQL placeholder, a composite primary key, a
model with a parent table) is refused at start-up by the system check `threeds.E001`
(`check_written_models`), never at the AReq, where any error is answered with `U`.

On PostgreSQL the writes are one statement (the groups before the last as data-modifying WITH
clauses, which run exactly once): atomic by itself, so in autocommit no BEGIN or COMMIT round trip.
Elsewhere (SQLite) one INSERT per group inside a transaction. Statements go through Django's
cursor like any other: query logging, error mapping, CONN_HEALTH_CHECKS and, when
DB_SERVER_SIDE_BINDING is on, psycopg's server-side binding and automatic preparation.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from functools import cache
from weakref import WeakKeyDictionary

from django.core import checks
from django.db import connections, models, transaction
from django.db.models.expressions import DatabaseDefault

from apps.audit.models import AuditEvent
from apps.cards.models import Card, Cardholder
from apps.issuers.models import BinGrant, Issuer
from apps.threeds.models import Challenge, RiskPolicy, Transaction

# The models the AReq writes, and those it reads: the system check looks at the first.
WRITTEN_MODELS = (Transaction, Challenge, AuditEvent)
READ_MODELS = (Card, Issuer, RiskPolicy, Cardholder)


# ---------------------------------------------------------------- what can be written


def unwritable_fields(model: type[models.Model]) -> list[str]:
    """Why each part of `model` cannot be written by `write`, as sentences; empty when it can."""
    meta = model._meta
    problems = []
    if meta.parents:
        problems.append(f"{meta.label} has a parent model (multi-table inheritance writes two tables)")
    if not isinstance(meta.pk, models.Field) or not meta.pk.concrete:
        problems.append(f"{meta.label} has a composite primary key")
    for field in meta.concrete_fields:
        if hasattr(field, "get_placeholder"):
            # The ORM wraps such a value in the field's own SQL (e.g. a geometry constructor).
            problems.append(f"{meta.label}.{field.name} ({type(field).__name__}) has its own SQL placeholder")
    return problems


def check_written_models(app_configs=None, **kwargs) -> list[checks.Error]:
    """System check threeds.E001: every model the AReq writes can be written by this module."""
    return [
        checks.Error(
            f"The AReq's fast path (apps/threeds/areq_store.py) cannot write this: {problem}.",
            hint="Teach areq_store.write this kind of field (and test it), or keep it off the models the AReq writes.",
            obj=model,
            id="threeds.E001",
        )
        for model in WRITTEN_MODELS
        for problem in unwritable_fields(model)
    ]


class InsertPlan:
    """One model's INSERT, worked out once from its metadata."""

    def __init__(self, model: type[models.Model]):
        problems = unwritable_fields(model)
        if problems:
            raise TypeError("; ".join(problems))  # also threeds.E001 at start-up
        meta = model._meta
        self.model = model
        self.table = meta.db_table
        self.auto_pk = meta.auto_field  # None when the primary key is given (a UUID, a one-to-one)
        # What the ORM leaves to the database: generated columns always, a db_default column
        # when the instance still holds the DatabaseDefault marker.
        self.fields = [f for f in meta.concrete_fields if not isinstance(f, models.GeneratedField)]
        self.generated = [f for f in meta.concrete_fields if isinstance(f, models.GeneratedField)]
        self.db_defaults = [f for f in self.fields if f.has_db_default()]
        self.relations = [f for f in self.fields if f.is_relation]
        self._sql = {}

    def sql(self, shapes: tuple[tuple[bool, ...], ...], *, with_pk: bool, returning: bool, connection) -> tuple[str, tuple]:
        """The INSERT text for rows of these shapes (one per row), and the fields whose columns it
        lists. A db_default column left to the database by every row is not listed; one left by
        some rows only is written DEFAULT there (the caller never mixes shapes where the
        database has no DEFAULT keyword). Built once per shape and size: an AReq's groups have
        one or two rows."""
        key = (shapes, with_pk, returning, connection.alias)
        if key not in self._sql:
            left_by_all = {f for i, f in enumerate(self.db_defaults) if all(shape[i] for shape in shapes)}
            fields = tuple(f for f in self.fields if f not in left_by_all and (with_pk or f is not self.auto_pk))
            quote = connection.ops.quote_name
            rows = []
            for shape in shapes:
                left = {f for f, out in zip(self.db_defaults, shape) if out}
                rows.append("(" + ", ".join("DEFAULT" if f in left else "%s" for f in fields) + ")")
            sql = f"INSERT INTO {quote(self.table)} ({', '.join(quote(f.column) for f in fields)}) VALUES {', '.join(rows)}"
            if returning:
                sql += f" RETURNING {quote(self.auto_pk.column)}"
            self._sql[key] = sql, fields
        return self._sql[key]

    def shape(self, obj) -> tuple[bool, ...]:
        """Which db_default fields of obj are left to the database (still the ORM's marker)."""
        return tuple(isinstance(getattr(obj, f.attname), DatabaseDefault) for f in self.db_defaults)

    def prepare(self, obj, operation: str) -> None:
        """What save() checks of related objects before an INSERT: an unsaved one is refused, one
        saved after it was assigned gives its key now."""
        for field in self.relations:
            if not field.is_cached(obj):
                continue
            related = getattr(obj, field.name)
            if related is None:
                continue
            key = getattr(related, field.target_field.attname)
            if key is None:
                raise ValueError(f"{operation}() prohibited to prevent data loss due to unsaved related object '{field.name}'.")
            if getattr(obj, field.attname) is None:
                setattr(obj, field.name, related)


@cache
def plan_for(model: type[models.Model]) -> InsertPlan:
    return InsertPlan(model)


# ---------------------------------------------------------------- the write


class _Statement:
    __slots__ = ("sql", "params", "objs", "returns_pk", "plan")

    def __init__(self, sql, params, objs, returns_pk, plan):
        self.sql, self.params, self.objs, self.returns_pk, self.plan = sql, params, objs, returns_pk, plan


def _statements(group: Sequence[models.Model], connection, *, last: bool) -> list[_Statement]:
    """The INSERTs of one group: one, unless some rows leave a db_default column to the database
    and others do not where the database has no DEFAULT keyword (SQLite): then one per run of
    rows of the same shape."""
    model = type(group[0])
    plan = plan_for(model)
    leave_pk = plan.auto_pk is not None and group[0].pk is None
    if leave_pk and not last:
        raise ValueError("only the last group may leave its primary keys to the database")
    features = connection.features
    default_keyword = features.supports_default_keyword_in_insert and features.supports_default_keyword_in_bulk_insert
    runs: list[tuple[list, list]] = []  # (shapes, objects)
    for obj in group:
        if type(obj) is not model or (obj.pk is None) != leave_pk or not obj._state.adding:
            raise ValueError("write takes new objects of one model per group, all with or all without a primary key")
        plan.prepare(obj, "write")
        shape = plan.shape(obj)
        if runs and (default_keyword or runs[-1][0][-1] == shape):
            runs[-1][0].append(shape)
            runs[-1][1].append(obj)
        else:
            runs.append(([shape], [obj]))
    statements = []
    returning = leave_pk and features.can_return_rows_from_bulk_insert
    for shapes, objs in runs:
        sql, fields = plan.sql(tuple(shapes), with_pk=not leave_pk, returning=returning, connection=connection)
        params = []
        for obj, shape in zip(objs, shapes):
            left = {f for f, out in zip(plan.db_defaults, shape) if out} if any(shape) else ()
            for field in fields:
                if field in left:
                    continue  # DEFAULT in the statement
                value = field.pre_save(obj, True)
                if hasattr(value, "resolve_expression"):
                    raise TypeError(f"{plan.model._meta.label}.{field.name}: an expression is not written by the AReq's store")
                params.append(field.get_db_prep_save(value, connection))
        statements.append(_Statement(sql, params, objs, leave_pk, plan))
    return statements


def write(groups: Sequence[Sequence[models.Model]], *, using: str = "default") -> None:
    """INSERT new objects, a group per model, all or none, in as few round trips as the database
    allows (see the module's docstring). Only the last group may leave its primary keys to the
    database (they come back with RETURNING). An integrity error leaves nothing written and the
    caller's transaction usable (a savepoint inside one)."""
    groups = [list(g) for g in groups if g]
    if not groups:
        return
    connection = connections[using]
    statements = []
    for i, group in enumerate(groups):
        statements.extend(_statements(group, connection, last=i == len(groups) - 1))
    if connection.vendor == "postgresql":
        *heads, last = statements
        sql, params = last.sql, []
        if heads:
            sql = "WITH " + ", ".join(f"_w{i} AS ({s.sql})" for i, s in enumerate(heads)) + " " + last.sql
            for s in heads:
                params.extend(s.params)
        params.extend(last.params)
        # Outside a transaction the statement is its own; inside one a failure would abort the
        # caller's transaction, so it gets a savepoint there.
        with transaction.atomic(using=using) if connection.in_atomic_block else nullcontext():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                if last.returns_pk:
                    for obj, (pk,) in zip(last.objs, cursor.fetchall(), strict=True):
                        obj.pk = pk
    else:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            for s in statements:
                if s.returns_pk and not connection.features.can_return_rows_from_bulk_insert:
                    _insert_one_by_one(cursor, s, connection)
                    continue
                cursor.execute(s.sql, s.params)
                if s.returns_pk:
                    for obj, (pk,) in zip(s.objs, cursor.fetchall(), strict=True):
                        obj.pk = pk
    for s in statements:
        for obj in s.objs:
            obj._state.adding, obj._state.db = False, using
            # Filled in by the database: read from it on first access, as a deferred field.
            for field in s.plan.generated:
                obj.__dict__.pop(field.attname, None)
            for field in s.plan.db_defaults:
                if isinstance(obj.__dict__.get(field.attname), DatabaseDefault):
                    del obj.__dict__[field.attname]


def _insert_one_by_one(cursor, statement: _Statement, connection) -> None:
    """A database that cannot return keys from a multi-row INSERT: one row at a time."""
    width = len(statement.params) // len(statement.objs)
    plan = statement.plan
    one_row = statement.sql.split(" VALUES ")[0] + " VALUES (" + ", ".join(["%s"] * width) + ")"
    for i, obj in enumerate(statement.objs):
        cursor.execute(one_row, statement.params[i * width:(i + 1) * width])
        obj.pk = connection.ops.last_insert_id(cursor, plan.table, plan.auto_pk.column)


# ---------------------------------------------------------------- the read


def _columns(model: type[models.Model], alias: str, quote) -> str:
    """The model's concrete columns in field order, qualified by `alias` (a row `_load` reads)."""
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


_card_sqls: dict = {}


def _card_sql(*, with_merchant: bool, statuses: int, connection) -> str:
    key = (with_merchant, statuses, connection.alias)
    if key not in _card_sqls:
        _card_sqls[key] = _build_card_sql(with_merchant=with_merchant, statuses=statuses, quote=connection.ops.quote_name)
    return _card_sqls[key]


def _build_card_sql(*, with_merchant: bool, statuses: int, quote) -> str:
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
    most one card: the ORDER BY only keeps the statement deterministic should that ever change."""

    def col(model, name):
        return quote(model._meta.get_field(name).column)

    tx = quote(Transaction._meta.db_table)
    placeholders = ", ".join(f"%(status{i})s" for i in range(statuses))
    known = (
        f"(SELECT t.{col(Transaction, 'acs_trans_id')} FROM {tx} t WHERE t.{col(Transaction, 'card')} = c.{col(Card, 'id')}"
        f" AND t.{col(Transaction, 'acquirer_merchant_id')} = %(merchant)s AND t.{col(Transaction, 'trans_status')} IN ({placeholders}) LIMIT 1)"
        if with_merchant else "NULL"
    )
    return (
        f"SELECT {_columns(Card, 'c', quote)}, {_columns(Issuer, 'i', quote)},"
        f" {_columns(RiskPolicy, 'p', quote)}, {_columns(Cardholder, 'h', quote)},"
        f" (SELECT COUNT(*) FROM {tx} t WHERE t.{col(Transaction, 'card')} = c.{col(Card, 'id')}"
        f" AND t.{col(Transaction, 'created_at')} >= %(since)s), {known}"
        f" FROM {quote(Card._meta.db_table)} c"
        f" INNER JOIN {quote(Issuer._meta.db_table)} i ON i.{col(Issuer, 'id')} = c.{col(Card, 'issuer')}"
        f" INNER JOIN {quote(BinGrant._meta.db_table)} g ON g.{col(BinGrant, 'id')} = c.{col(Card, 'grant')}"
        f" AND g.{col(BinGrant, 'issuer')} = c.{col(Card, 'issuer')}"
        f" AND g.{col(BinGrant, 'low')} <= %(prefix)s AND g.{col(BinGrant, 'high')} >= %(prefix)s"
        f" INNER JOIN {quote(Cardholder._meta.db_table)} h ON h.{col(Cardholder, 'id')} = c.{col(Card, 'cardholder')}"
        f" LEFT OUTER JOIN {quote(RiskPolicy._meta.db_table)} p ON p.{col(RiskPolicy, 'issuer')} = i.{col(Issuer, 'id')}"
        f" WHERE c.{col(Card, 'pan_fingerprint')} = %(fingerprint)s ORDER BY c.{col(Card, 'id')} LIMIT 1"
    )


# Per connection (the backend's converters are methods of its connection's `ops`), per model:
# each column's expression and the converters the ORM would apply to it.
_converters: WeakKeyDictionary = WeakKeyDictionary()


def _load(model: type[models.Model], row: Sequence, connection, using: str) -> models.Model:
    """An instance from a row of `_columns(model, ...)`, as the ORM would load it."""
    table = _converters.setdefault(connection, {})
    if model not in table:
        # get_col gives a foreign key the type of the key it points to (a UUID stays a UUID).
        cols = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
        table[model] = [(col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)) for col in cols]
    values = []
    for value, (col, converters) in zip(row, table[model], strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return model.from_db(using, None, values)


def read_card(*, fingerprint: str, prefix: int, since, merchant: str, statuses: Sequence[str], using: str = "default"):
    """The card of this PAN fingerprint inside the grant holding the PAN's prefix key, with its
    issuer, risk policy and cardholder loaded as select_related would (no lazy query follows),
    and two attributes: `risk_recent_count` (its transactions created since `since`) and
    `risk_merchant_known_id` (one of its transactions at `merchant` with one of `statuses`, or
    None); or None. One statement, through Django's cursor (CONN_HEALTH_CHECKS as usual)."""
    connection = connections[using]
    sql = _card_sql(with_merchant=bool(merchant), statuses=len(statuses), connection=connection)
    params = {
        "fingerprint": fingerprint, "prefix": prefix, "merchant": merchant,
        "since": Transaction._meta.get_field("created_at").get_db_prep_value(since, connection),
        **{f"status{i}": status for i, status in enumerate(statuses)},
    }
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
    card = _load(Card, parts[0], connection, using)
    issuer = _load(Issuer, parts[1], connection, using)
    holder = _load(Cardholder, parts[3], connection, using)
    # Assigned through the relations' descriptors, which cache both sides as select_related does.
    card.issuer, card.cardholder = issuer, holder
    if parts[2][0] is not None:
        issuer.risk_policy = _load(RiskPolicy, parts[2], connection, using)
    card.risk_recent_count, card.risk_merchant_known_id = row[at], row[at + 1]
    return card
