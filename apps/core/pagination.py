"""Keyset (cursor) pagination, newest first, on (created_at, pk): the one paging mechanism of the
analysts' list and the issuer API's lists.

A page starts strictly after the last row of the one before, so rows arriving meanwhile, or many
rows sharing a time, never make a page skip or repeat one; a deep page costs what the first costs
(the cursor is an index bound, never an OFFSET, and nothing is counted). DRF's CursorPagination
keys on the time alone and falls back to an offset when a whole page shares a time.

The cursor is opaque to clients: base64url (unpadded) of the JSON `[created_at ISO 8601, pk,
backwards]`. Forward (older rows) starts after the last row of a page; backwards (newer rows)
ends before its first. A cursor that does not decode is `InvalidCursor`; the API answers it 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

NEWEST_FIRST = ("-created_at", "-pk")
OLDEST_FIRST = ("created_at", "pk")


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    """A position in a list: the key of a row, and which side of it the wanted page lies."""

    created_at: datetime
    pk: uuid.UUID
    backwards: bool = False

    @classmethod
    def after(cls, row) -> Cursor:
        return cls(row.created_at, row.pk, False)

    @classmethod
    def before(cls, row) -> Cursor:
        return cls(row.created_at, row.pk, True)

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), str(self.pk), self.backwards], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            created_at, pk, backwards = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            when = datetime.fromisoformat(created_at)
            if when.tzinfo is None or not isinstance(backwards, bool):
                raise ValueError("naive time or no direction")
            return cls(when, uuid.UUID(pk), backwards)
        except (ValueError, TypeError, binascii.Error, AttributeError) as exc:  # UnicodeDecodeError is a ValueError
            raise InvalidCursor("Invalid cursor.") from exc


def keyset_filter(queryset: QuerySet, cursor: Cursor) -> QuerySet:
    """The rows on the cursor's side of its row, not yet ordered."""
    c, pk = cursor.created_at, cursor.pk
    # The plain range on created_at is redundant with the OR, and is what lets the index scan
    # start at the cursor instead of filtering every newer row (an OFFSET in disguise).
    if cursor.backwards:
        return queryset.filter(created_at__gte=c).filter(Q(created_at__gt=c) | Q(created_at=c, pk__gt=pk))
    return queryset.filter(created_at__lte=c).filter(Q(created_at__lt=c) | Q(created_at=c, pk__lt=pk))


def page_queryset(queryset: QuerySet, *, cursor: Cursor | None, size: int) -> QuerySet:
    """One page plus one row (to know whether there is more), in the order it is read."""
    if cursor is None:
        return queryset.order_by(*NEWEST_FIRST)[: size + 1]
    ordering = OLDEST_FIRST if cursor.backwards else NEWEST_FIRST
    return keyset_filter(queryset, cursor).order_by(*ordering)[: size + 1]


@dataclass
class Page:
    rows: list
    next_cursor: Cursor | None  # older rows
    previous_cursor: Cursor | None  # newer rows


def page_from_rows(rows: list, *, cursor: Cursor | None, size: int) -> Page:
    """The page out of what `page_queryset` read (size + 1 rows at most), newest first."""
    more = len(rows) > size
    rows = rows[:size]
    if cursor is not None and cursor.backwards:
        rows.reverse()
        return Page(rows, Cursor.after(rows[-1]) if rows else None, Cursor.before(rows[0]) if more else None)
    previous = Cursor.before(rows[0]) if cursor is not None and rows else None
    return Page(rows, Cursor.after(rows[-1]) if more else None, previous)


def keyset_page(queryset: QuerySet, *, cursor: Cursor | None, size: int) -> Page:
    return page_from_rows(list(page_queryset(queryset, cursor=cursor, size=size)), cursor=cursor, size=size)


class KeysetPagination:
    """For an issuer API list: validated `limit` and `cursor` in, `{next, previous, results}` out,
    with `next`/`previous` as full links. A bad cursor is a 400 on the `cursor` parameter."""

    page_size = 50
    max_page_size = 200

    def paginate(self, queryset: QuerySet, request, *, limit: int | None, cursor: str | None) -> list:
        self.request = request
        try:
            position = Cursor.decode(cursor) if cursor else None
        except InvalidCursor:
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from None
        self.page = keyset_page(queryset, cursor=position, size=limit or self.page_size)
        return self.page.rows

    def get_paginated_response(self, data) -> Response:
        return Response({"next": self._link(self.page.next_cursor), "previous": self._link(self.page.previous_cursor), "results": data})

    def _link(self, cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor.encode())
