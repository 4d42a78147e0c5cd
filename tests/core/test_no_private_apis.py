"""No private Django or psycopg attribute in apps/ (issue 12): code built on them breaks on a routine
upgrade or model change, silently. Documented underscored names (`_meta`, `_state`,
`_default_manager`, `_base_manager`) are allowed; the project's own private helpers (`self._x`,
module functions) are not Django's and are not looked at."""

import re
from pathlib import Path

import psycopg
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models.options import Options
from django.db.models.query import QuerySet

APPS = Path(__file__).resolve().parents[2] / "apps"

# Named on purpose: what the hand-built SQL layer used, and the kind of thing to never need.
KNOWN = [
    r"_prepare_cursor", r"health_check_done", r"\._query\b", r"_prepare_related_fields_for_save", r"_plain_kind",
    r"LoggedQuery", r"\bcursor\.cursor\b", r"\bconnection\.connection\b", r"_meta\._", r"\._cursor\(", r"_nodb_cursor",
    r"_do_insert", r"_do_update", r"_save_table", r"_batched_insert", r"_result_cache", r"_prefetched_objects_cache",
    r"fields_cache", r"\._?pgconn\b", r"_set_autocommit", r"wrap_database_errors", r"\bpsycopg\._", r"\bpsycopg_pool\._",
    r"from django\.db\.models\.sql\b", r"\.query\.(where|get_compiler|sql_with_params|add_q)\b",
]

DOCUMENTED = {"_meta", "_state", "_default_manager", "_base_manager"}

# Every underscored attribute of the classes the database code touches: using one is using a private API.
CLASSES = [BaseDatabaseWrapper, CursorWrapper, Options, QuerySet, models.Model, models.Field, models.ForeignKey,
           models.Manager, psycopg.Connection, psycopg.Cursor, psycopg.ClientCursor]


def private_names() -> set[str]:
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQL

        classes = [*CLASSES, PostgreSQL]
    except ImportError:
        classes = CLASSES
    return {n for c in classes for n in dir(c) if n.startswith("_") and not n.startswith("__")} - DOCUMENTED


def sources():
    for path in sorted(APPS.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.lstrip().startswith("#"):
                yield f"{path.relative_to(APPS.parent)}:{number}", line


def test_no_known_private_api_in_apps():
    found = [(where, pattern) for where, line in sources() for pattern in KNOWN if re.search(pattern, line)]
    assert found == []


def test_no_private_attribute_of_djangos_or_psycopgs_database_classes_in_apps():
    names = private_names()
    assert "_prepare_cursor" in names and "_prepare_related_fields_for_save" in names  # the list is not empty
    attribute = re.compile(r"(\w+)\.(_[A-Za-z]\w*)\b")
    found = [(where, m.group(0)) for where, line in sources() for m in attribute.finditer(line)
             if m.group(2) in names and m.group(1) not in ("self", "cls")]
    assert found == []
