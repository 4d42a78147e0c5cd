"""SQL built once per model from the models' metadata, for the few hot paths where compiling the
same statement with the ORM on every call is most of their time (the AReq, measured in
docs/BENCHMARKS.md; the delivery engine's claim and record). Documented APIs only:

- tables and columns from `Model._meta` (`db_table`, `concrete_fields`, `field.column`), quoted
  by `connection.ops.quote_name`: the statements follow the models and their migrations;
- values written as the ORM writes them: `field.pre_save(obj, add=True)` (defaults were applied
  when the instance was made; `auto_now_add` here), then `field.get_db_prep_save(value,
  connection)`; a field left to its `db_default` (or a `GeneratedField`) is left out of the
  INSERT so the database fills it, and it reads back from the database on first access;
- values read as the ORM reads them: the backend's and the field's converters
  (`connection.ops.get_db_converters`, `Col.get_db_converters`) and `Model.from_db`.

What this module cannot write (a field with its own SQL placeholder, a composite primary key, a
model with a parent table) is listed by `unwritable_fields`; each caller turns that into a
system check on the models it writes, so it fails at start-up, never at run time.

On PostgreSQL `write` is one statement (the groups before the last as data-modifying WITH
clauses, which run exactly once): atomic by itself, so in autocommit no BEGIN or COMMIT round trip.
Elsewhere (SQLite) one INSERT per group inside a transaction. Statements go through Django's
cursor like any other: query logging, error mapping, CONN_HEALTH_CHECKS and, when
DB_SERVER_SIDE_BINDING is on, psycopg's server-side binding and automatic preparation.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from functools import cache
from weakref import WeakKeyDictionary

from django.db import connections, models, transaction
from django.db.models.expressions import DatabaseDefault


def unwritable_fields(model: type[models.Model]) -> list[str]:
    """Why each part of `model` cannot be written by `write`, as sentences; empty when it can."""
    meta = model._meta
    problems = []
    if meta.parents:
        problems.append(f"{meta.label} has a parent model (multi-table inheritance writes two tables)")
    if not isinstance(meta.pk, models.Field) or not meta.pk.concrete:
        problems.append(f"{meta.label} has a composite primary key")
    for field in meta.concrete_fields:
        if isinstance(field, models.BinaryField) and all(
            connections[alias].ops.binary_placeholder_sql(None) == "%s" for alias in connections
        ):
            continue  # its placeholder is a plain one on these databases (PostgreSQL, SQLite)
        if hasattr(field, "get_placeholder"):
            # The ORM wraps such a value in the field's own SQL (e.g. a geometry constructor).
            problems.append(f"{meta.label}.{field.name} ({type(field).__name__}) has its own SQL placeholder")
    return problems


class InsertPlan:
    """One model's INSERT, worked out once from its metadata."""

    def __init__(self, model: type[models.Model]):
        problems = unwritable_fields(model)
        if problems:
            raise TypeError("; ".join(problems))  # each caller's system check says so at start-up
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
                    raise TypeError(f"{plan.model._meta.label}.{field.name}: an expression is not written by apps.core.model_sql")
                params.append(field.get_db_prep_save(value, connection))
        statements.append(_Statement(sql, params, objs, leave_pk, plan))
    return statements


def write(groups: Sequence[Sequence[models.Model]], *, using: str = "default", savepoint: bool = True) -> None:
    """INSERT new objects, a group per model, all or none, in as few round trips as the database
    allows (see the module's docstring). Only the last group may leave its primary keys to the
    database (they come back with RETURNING). An integrity error leaves nothing written and the
    caller's transaction usable (a savepoint inside one), unless `savepoint` is False: then, as
    with Model.save(), an error inside a transaction is the caller's to roll back (one round trip
    less each way, on PostgreSQL)."""
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
        with transaction.atomic(using=using) if savepoint and connection.in_atomic_block else nullcontext():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                if last.returns_pk:
                    for obj, (pk,) in zip(last.objs, cursor.fetchall(), strict=True):
                        obj.pk = pk
    else:
        # Several INSERTs are made atomic together; one alone is atomic by itself and needs a
        # savepoint only to keep the caller's transaction usable after an error.
        several = len(statements) > 1 or any(s.returns_pk and not connection.features.can_return_rows_from_bulk_insert
                                             and len(s.objs) > 1 for s in statements)
        if several or (savepoint and connection.in_atomic_block):
            scope = transaction.atomic(using=using, savepoint=savepoint)
        else:
            scope = nullcontext()
        with scope, connection.cursor() as cursor:
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


# ---------------------------------------------------------------- the update


_update_sqls: dict = {}


def update(model: type[models.Model], values: dict, *, using: str = "default", **where) -> int:
    """UPDATE model SET values WHERE every `where` field equals its value; the rows it changed.
    What QuerySet.filter(**where).update(**values) does for plain values (no expressions, no
    lookups), without compiling the statement each time: it is built once per model and set of
    names. Values go through `get_db_prep_save` as the ORM's update does."""
    connection = connections[using]
    sql, params = _update_sql(model, values, where, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _update_sql(model, values: dict, where: dict, connection) -> tuple[str, list]:
    """update()'s statement and parameters (the statement built once per model and names)."""
    meta = model._meta

    def field(name):
        return meta.pk if name == "pk" else meta.get_field(name)

    key = (model, tuple(values), tuple(where), connection.alias)
    if key not in _update_sqls:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(field(name).column)} = %s" for name in values)
        conditions = " AND ".join(f"{quote(field(name).column)} = %s" for name in where)
        _update_sqls[key] = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {conditions}"
    params = []
    for name, value in values.items():
        if hasattr(value, "resolve_expression") or isinstance(value, models.Model):
            raise TypeError(f"{meta.label}.{name}: model_sql.update writes plain values only")
        params.append(field(name).get_db_prep_save(value, connection))
    for name, value in where.items():
        params.append(field(name).get_db_prep_value(value, connection, prepared=False))
    return _update_sqls[key], params


def _typed_placeholder(field, connection) -> str:
    db_type = field.db_type(connection)
    if db_type is None or db_type.split("(")[0].strip().lower() in ("varchar", "text", "char", "character", "character varying"):
        return "%s"
    return f"%s::{db_type}"


def update_then_insert(updates: Sequence[tuple], inserts: Sequence[models.Model] = (), *, using: str = "default") -> int:
    """Several update()s, given as (model, values, where) — and, only if the LAST one changed a
    row, INSERT the new objects `inserts` (one model). Returns the last UPDATE's row count. On
    PostgreSQL one statement: the UPDATEs as data-modifying WITH clauses (each runs exactly once),
    the INSERT as `INSERT … SELECT … FROM` the last UPDATE's RETURNING; atomic by itself.
    Elsewhere the same statements one by one in a transaction. The inserted objects' primary
    keys are not read back."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            for model, values, where in updates[:-1]:
                update(model, values, using=using, **where)
            model, values, where = updates[-1]
            changed = update(model, values, using=using, **where)
            if changed and inserts:
                write([list(inserts)], using=using)
        return changed
    parts, params = [], []
    for i, (model, values, where) in enumerate(updates):
        sql, p = _update_sql(model, values, where, connection)
        if i == len(updates) - 1:
            sql += " RETURNING 1"
        parts.append(f"_u{i} AS ({sql})")
        params.extend(p)
    last = f"_u{len(updates) - 1}"
    if inserts:
        plan = plan_for(type(inserts[0]))
        rows = []
        for obj in inserts:
            if type(obj) is not plan.model or not obj._state.adding or any(plan.shape(obj)):
                raise ValueError("update_then_insert inserts new objects of one model, none left to a db_default")
            plan.prepare(obj, "update_then_insert")
            _, fields = plan.sql(((False,) * len(plan.db_defaults),), with_pk=obj.pk is not None, returning=False,
                                 connection=connection)
            values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
            rows.append((fields, values))
        quote = connection.ops.quote_name
        fields = rows[0][0]
        # In INSERT … SELECT (unlike VALUES) PostgreSQL types an untyped parameter as text, which
        # only character columns accept: every other one is cast to the field's own db_type.
        placeholders = ", ".join(_typed_placeholder(field, connection) for field in fields)
        selects = " UNION ALL ".join(f"SELECT {placeholders} FROM {last}" for _ in rows)
        parts.append(f"_i AS (INSERT INTO {quote(plan.table)} ({', '.join(quote(f.column) for f in fields)}) {selects})")
        for _, values in rows:
            params.extend(values)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT COUNT(*) FROM {last}", params)
        changed = cursor.fetchone()[0]
    if changed:
        for obj in inserts:
            obj._state.adding, obj._state.db = False, using
    return changed


# ---------------------------------------------------------------- the read


_select_sqls: dict = {}


def select(model: type[models.Model], *, using: str = "default", **where) -> list[models.Model]:
    """The rows of model where every `where` field equals its value, loaded as the ORM loads them:
    QuerySet.filter(**where) for plain equalities, built once per model and set of names."""
    connection = connections[using]
    meta = model._meta
    key = (model, tuple(where), connection.alias)
    if key not in _select_sqls:
        quote = connection.ops.quote_name
        conditions = " AND ".join(f"t.{quote(meta.get_field(name).column)} = %s" for name in where)
        _select_sqls[key] = f"SELECT {columns(model, 't', quote)} FROM {quote(meta.db_table)} t WHERE {conditions}"
    params = [meta.get_field(name).get_db_prep_value(value, connection, prepared=False) for name, value in where.items()]
    with connection.cursor() as cursor:
        cursor.execute(_select_sqls[key], params)
        rows = cursor.fetchall()
    return [load(model, row, connection, using) for row in rows]


def columns(model: type[models.Model], alias: str, quote) -> str:
    """The model's concrete columns in field order, qualified by `alias` (a row `load` reads)."""
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


# Per connection (the backend's converters are methods of its connection's `ops`), per model:
# each column's expression and the converters the ORM would apply to it.
_converters: WeakKeyDictionary = WeakKeyDictionary()


def load(model: type[models.Model], row: Sequence, connection, using: str) -> models.Model:
    """An instance from a row of `columns(model, ...)`, as the ORM would load it."""
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
