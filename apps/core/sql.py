"""Statements built once from the models' metadata, for the few paths where building them with the
ORM on every call is most of the cost (the AReq: about two thirds of its Python time was the ORM
compiling one SELECT and two INSERTs).

The SQL comes from `_meta` (tables, columns, quoting), so it follows the models and their
migrations; values go through each field's own `get_db_prep_save` and come back through the
backend's and the field's converters, exactly as the ORM would store and read them. Portable:
SQLite runs the same statements, except that several INSERTs are sent one by one there. On
PostgreSQL `cursor()` also has them prepared once per connection (DB_PREPARED_STATEMENTS).
"""

import datetime
import decimal
import json
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from functools import cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import Model


def cursor(*, using: str = "default"):
    """A cursor for a hot statement: on PostgreSQL (unless DB_PREPARED_STATEMENTS is off) one that
    binds parameters on the server and has psycopg prepare each statement once per connection,
    so that PostgreSQL parses and plans it once instead of at every call; elsewhere the usual one.
    Both go through Django's wrapper (errors mapped to django.db's, query logging, wrappers)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    # What connection.cursor() does, with another cursor class.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_preparing_cursor_class()(connection.connection))


def read_one(sql: str, params, *, using: str = "default"):
    """The first row of a hot read (through `cursor`), or None. When this read is the request's
    first statement on a reused connection, it stands in for Django's health check (a `SELECT 1`
    round trip before it, CONN_HEALTH_CHECKS): if the connection died since its last use (a
    PostgreSQL restart, a failover), the read fails the way the check would have, and is sent
    again once on a new connection. Only for a connection found dead, and only outside a
    transaction, where a read that failed changed nothing and sending it again is safe."""
    connection = connections[using]
    standing_in = (
        connection.connection is not None
        and connection.health_check_enabled
        and not connection.health_check_done
        and not connection.in_atomic_block
    )
    if standing_in:
        connection.health_check_done = True
    try:
        with cursor(using=using) as cur:
            cur.execute(sql, params)
            return cur.fetchone()
    except (OperationalError, InterfaceError):
        raw = connection.connection
        # psycopg says closed/broken once the server is gone; any other driver's connection, or a
        # live one (a cancelled statement, a locked SQLite file), leaves the error as the answer.
        if not standing_in or not (raw is None or getattr(raw, "closed", False) is True or getattr(raw, "broken", False) is True):
            raise
        connection.close()  # what a failed health check does; the next cursor connects anew
    with cursor(using=using) as cur:
        cur.execute(sql, params)
        return cur.fetchone()


@cache
def _preparing_cursor_class():
    import psycopg

    class LoggedQuery:
        __slots__ = ("query",)

        def __init__(self, query: str):
            self.query = query.encode()

    class PreparingCursor(psycopg.Cursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            try:
                return super().execute(query, params, prepare=True, binary=binary)
            finally:
                # psycopg keeps no query for an executed prepared statement; Django's query log
                # (DEBUG, tests) reads this one: the statement, placeholders and no values.
                self._query = LoggedQuery(query)

    return PreparingCursor


def quote(name: str, *, using: str = "default") -> str:
    return connections[using].ops.quote_name(name)


def columns_sql(model: type[Model], alias: str, *, using: str = "default") -> str:
    """The model's concrete columns, in field order, qualified by `alias` (a row that from_row reads)."""
    return ", ".join(f"{alias}.{quote(f.column, using=using)}" for f in model._meta.concrete_fields)


def _converters(model: type[Model], using: str) -> list:
    """Per column: the converters the ORM would apply, bound to this thread's connection (the
    backend's converters belong to its connection object, so they are kept on it)."""
    connection = connections[using]
    cache_ = connection.__dict__.setdefault("_core_sql_converters", {})
    if model not in cache_:
        table = []
        for field in model._meta.concrete_fields:
            # get_col gives a foreign key the type of the key it points to (a UUID stays a UUID).
            col = field.get_col(model._meta.db_table)
            table.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
        cache_[model] = table
    return cache_[model]


def from_row(model: type[Model], row: Sequence, *, using: str = "default") -> Model:
    """An instance from a row of `columns_sql(model, ...)`, as the ORM would load it."""
    connection = connections[using]
    values = []
    for value, (col, converters) in zip(row, _converters(model, using)):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return model.from_db(using, None, values)


@cache
def _insert_sql(model: type[Model], fields: tuple, rows: int, returning: str | None, using: str) -> str:
    ops = connections[using].ops
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"
    return sql + (f" RETURNING {ops.quote_name(returning)}" if returning else "")


def _ready_to_insert(obj: Model, model: type[Model], auto_pk: bool) -> None:
    """What bulk_create would refuse: another model, a saved object, a mix of given and missing keys."""
    if type(obj) is not model or (obj.pk is None) != auto_pk or not obj._state.adding:
        raise ValueError("insert_together takes new objects of one model per group, all with or all without a primary key")
    obj._prepare_related_fields_for_save(operation_name="insert_together")


def _insert(objs: Sequence[Model], using: str) -> tuple[str, list, Sequence[Model]]:
    """One multi-row INSERT of objects of one model, with the values bulk_create would send
    (defaults, auto_now_add, each field's own preparation)."""
    model = type(objs[0])
    connection = connections[using]
    pk = model._meta.pk
    auto_pk = pk.db_returning and objs[0].pk is None
    fields = tuple(f for f in model._meta.concrete_fields if not (auto_pk and f is pk))
    params = []
    for obj in objs:
        _ready_to_insert(obj, model, auto_pk)
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    returning = pk.column if auto_pk else None
    return _insert_sql(model, fields, len(objs), returning, using), params, (objs if auto_pk else ())


@cache
def _insert_json_sql(model: type[Model], fields: tuple, returning: str | None, using: str) -> str:
    ops = connections[using].ops
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
    return sql + (f" RETURNING {ops.quote_name(returning)}" if returning else "")


def _json_scalar(value):
    """A prepared value as JSON can carry it (the document's own json.dumps writes it)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, _jsonb()):
        return json.loads(value.dumps(value.obj))  # a JSON field's own encoder has had its say
    raise TypeError(type(value).__name__)


def _plain_kind(field) -> str | None:
    """How a field's own preparation treats a value of its plain Python type, when that is known
    to change nothing JSON would see: "str", "int" or "bool" (the value is sent as it is),
    "uuid", "datetime" (sent as text), "json" (a JSON field without an encoder: the value is
    embedded). None for every other field, or one whose class overrides any of these steps: its
    value then goes through get_db_prep_save as the ORM's would."""
    from django.db.models import fields as f
    from django.db.models.fields.json import JSONField

    cls = type(field)
    if cls.pre_save is not f.Field.pre_save and not (
        cls.pre_save is f.DateTimeField.pre_save and not (field.auto_now or field.auto_now_add)
    ):
        return None
    if isinstance(field, JSONField):
        plain = (cls.get_db_prep_save is JSONField.get_db_prep_save and cls.get_db_prep_value is JSONField.get_db_prep_value
                 and cls.get_prep_value is f.Field.get_prep_value and field.encoder is None)
        return "json" if plain else None
    if cls.get_db_prep_save is not f.Field.get_db_prep_save:
        return None
    if cls.get_db_prep_value is f.UUIDField.get_db_prep_value:
        return "uuid" if cls.get_prep_value is f.UUIDField.get_prep_value else None
    if cls.get_db_prep_value is f.DateTimeField.get_db_prep_value:
        return "datetime" if cls.get_prep_value is f.DateTimeField.get_prep_value else None
    if cls.get_db_prep_value not in (f.Field.get_db_prep_value, f.IntegerField.get_db_prep_value):
        return None
    return {
        f.CharField.get_prep_value: "str",
        f.TextField.get_prep_value: "str",
        f.IntegerField.get_prep_value: "int",
        f.BooleanField.get_prep_value: "bool",
    }.get(cls.get_prep_value)


_PLAIN_TYPES = {"str": str, "int": int, "bool": bool, "uuid": uuid.UUID, "datetime": datetime.datetime}


@cache
def _json_plan(model: type[Model], auto_pk: bool, using: str) -> tuple[str, tuple]:
    """The INSERT, and per column: (column, attname, field, kind, the type a value must have for
    kind to apply). Keyed by the model, not by its fields: hashing 45 fields on every call was
    a visible part of the AReq's time."""
    pk = model._meta.pk
    fields = tuple(f for f in model._meta.concrete_fields if not (auto_pk and f is pk))
    plan = tuple((fd.column, fd.attname, fd, kind, _PLAIN_TYPES.get(kind)) for fd in fields for kind in [_plain_kind(fd)])
    return _insert_json_sql(model, fields, pk.column if auto_pk else None, using), plan


def _insert_json(objs: Sequence[Model], using: str) -> tuple[str, list, Sequence[Model]]:
    """PostgreSQL: the same INSERT with the group's rows as one JSON document, which PostgreSQL
    turns into rows of the table's own types (jsonb_populate_recordset). One parameter however
    many columns: psycopg caches a statement's parse only up to 50 parameters, and the AReq's write
    has 59. A value of its field's plain type (see _plain_kind) goes into the document as it is;
    any other goes through its field's get_db_prep_save as bulk_create would send it; a value
    JSON cannot carry as such (bytes) raises TypeError, and the caller uses the VALUES form."""
    model = type(objs[0])
    connection = connections[using]
    auto_pk = model._meta.pk.db_returning and objs[0].pk is None
    statement, plan = _json_plan(model, auto_pk, using)
    use_tz = settings.USE_TZ
    rows = []
    for obj in objs:
        _ready_to_insert(obj, model, auto_pk)
        row = {}
        for column, attname, field, kind, plain_type in plan:
            if kind is None:
                row[column] = _json_scalar(field.get_db_prep_save(field.pre_save(obj, True), connection))
                continue
            value = getattr(obj, attname)  # the field's pre_save (a plain kind has no other)
            if value is None and kind != "json":
                row[column] = None
            elif type(value) is plain_type:
                if kind == "uuid":
                    value = str(value)
                elif kind == "datetime":
                    if use_tz and value.tzinfo is None:
                        value = field.get_db_prep_save(value, connection)  # warns and makes it aware, as the ORM does
                    value = value.isoformat()
                row[column] = value
            elif kind == "json" and type(value) in (dict, list):
                row[column] = value
            else:
                row[column] = _json_scalar(field.get_db_prep_save(value, connection))
        rows.append(row)
    document = json.dumps(rows, ensure_ascii=False)
    return statement, [document], (objs if auto_pk else ())


@cache
def _jsonb():
    from psycopg.types.json import Jsonb

    return Jsonb


def _insert_one_by_one(cursor, group: Sequence[Model], params: list, using: str) -> None:
    model = type(group[0])
    fields = tuple(f for f in model._meta.concrete_fields if f is not model._meta.pk)
    sql = _insert_sql(model, fields, 1, None, using)
    for i, obj in enumerate(group):
        cursor.execute(sql, params[i * len(fields):(i + 1) * len(fields)])
        obj.pk = cursor.lastrowid


def _done(objs: Sequence[Model], using: str) -> None:
    for obj in objs:
        obj._state.adding, obj._state.db = False, using


def insert_together(groups: Sequence[Sequence[Model]], *, using: str = "default") -> None:
    """INSERT new objects, a group per model, all or none, in as few round trips as the database
    allows: on PostgreSQL one statement (the groups before the last as data-modifying WITH
    clauses, which run exactly once), atomic by itself, so outside a transaction it needs no
    BEGIN and COMMIT; elsewhere one INSERT per group inside a transaction. Only the last group
    may leave its primary keys to the database (they come back with RETURNING). An integrity
    error leaves nothing written, and the caller's transaction usable (a savepoint inside one)."""
    groups = [list(g) for g in groups if g]
    if not groups:
        return
    connection = connections[using]
    if connection.vendor == "postgresql":
        try:
            statements = [_insert_json(group, using) for group in groups]
        except TypeError:
            statements = [_insert(group, using) for group in groups]
    else:
        statements = [_insert(group, using) for group in groups]
    if any(returned for _, _, returned in statements[:-1]):
        raise ValueError("only the last group may leave its primary keys to the database")
    if connection.vendor == "postgresql":
        *heads, (last_sql, last_params, returned) = statements
        sql = last_sql
        params = []
        if heads:
            sql = "WITH " + ", ".join(f"_w{i} AS ({s})" for i, (s, _, _) in enumerate(heads)) + " " + last_sql
            for _, p, _ in heads:
                params.extend(p)
        params.extend(last_params)
        # In autocommit the statement is its own transaction; inside an atomic block a failure
        # would abort the caller's transaction, so it gets a savepoint there.
        with transaction.atomic(using=using) if connection.in_atomic_block else nullcontext():
            with cursor(using=using) as cur:
                cur.execute(sql, params)
                ids = [row[0] for row in cur.fetchall()] if returned else []
        for obj, pk in zip(returned, ids):
            obj.pk = pk
    else:
        with transaction.atomic(using=using):
            with connection.cursor() as cur:
                for group, (sql, params, returned) in zip(groups, statements):
                    if returned and not connection.features.can_return_rows_from_bulk_insert:
                        _insert_one_by_one(cur, group, params, using)  # SQLite before 3.35
                        continue
                    cur.execute(sql, params)
                    if returned:
                        for obj, (pk,) in zip(returned, cur.fetchall()):
                            obj.pk = pk
    for group in groups:
        _done(group, using)
