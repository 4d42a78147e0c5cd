"""`manage.py import_cards FILE.csv --issuer-id ID`: bulk enrollment from the issuer's CSV file.

A row is one cardholder (created, or reused by external_id), an optional phone and one card, and
it is imported whole or not at all. The file is streamed twice: once to check the header and
count the rows for the progress bar, once to import. No PAN ever reaches the output or the report.

`--update`: a row whose card_id the issuer already has updates that card's status and expiry
instead of failing — only when the row's PAN is the card's enrolled PAN (by fingerprint) and its
external_id the card's cardholder; other rows enrol as usual. So the same file can be imported
again after the issuer's system changed some cards.

Errors name a row by its line in the file, the header being line 1 (a row with a line break
inside a quoted value is named by its first line). The progress bar, with rate and time left, is
drawn only when stderr is a terminal: a log or a pipe gets the errors and the summary alone.
"""

import contextlib
import csv
import time
from datetime import timedelta
from itertools import islice

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.cards import selectors, services
from apps.cards.apis import CardholderInput
from apps.cards.models import Card, CardProduct, card_id_validator
from apps.core.exceptions import ApplicationError
from apps.core.logging import scrub, sensitive
from apps.issuers.models import Issuer

COLUMNS = ("external_id", "name", "locale", "phone", "card_id", "pan", "expiry_month", "expiry_year", "product")
# Optional too: a card's status (active by default), what an update mode re-import mostly changes.
STATUS_COLUMN = "status"
ALL_COLUMNS = (*COLUMNS, STATUS_COLUMN)
OPTIONAL_COLUMNS = {"phone", "product", STATUS_COLUMN}
STATUSES = tuple(value for value, _ in Card.STATUS_CHOICES)
# `line`: the row's line in the file, the header being line 1 (what an editor or `sed -n Np` shows).
REPORT_COLUMNS = ("line", "card_id", "field", "message")
LINE_NOTE = "Rows are named by their line in the file; the header is line 1."
ACTOR = "import_cards"
# Rows per commit: far fewer commits than rows, while each row keeps its own savepoint.
BATCH_SIZE = 500
PROGRESS_INTERVAL = 0.1  # seconds between redraws of the progress bar
# Service error fields → the CSV column to fix.
_COLUMN_FOR_FIELD = {"number": "phone"}


class Command(BaseCommand):
    help = (
        "Enroll cardholders, phones and cards from a CSV file with the header "
        + ",".join(COLUMNS)
        + " (phone and product optional; an optional status column: " + ", ".join(STATUSES) + "). "
        + "Errors name the row by its line in the file, the header being line 1. "
        + "With --update, a row whose card_id exists updates that card's status and expiry."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8.")
        parser.add_argument("--issuer-id", required=True)
        parser.add_argument("--report", help="Write the per-row errors to this CSV file (row,card_id,field,message).")
        parser.add_argument("--dry-run", action="store_true", help="Check every row as a real import would; write nothing.")
        parser.add_argument(
            "--update", action="store_true",
            help="A row whose card_id the issuer has updates the card's status and expiry (its PAN must be the card's "
                 "enrolled PAN and its external_id the card's cardholder) instead of failing; other rows enrol.",
        )

    def handle(self, *args, **options):
        issuer = Issuer.objects.filter(issuer_id=options["issuer_id"]).first()
        if issuer is None:
            raise CommandError(f"No issuer {options['issuer_id']}.")
        dry_run = options["dry_run"]
        try:
            source = open(options["file"], newline="", encoding="utf-8-sig")  # -sig: spreadsheets add a BOM
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.")

        with contextlib.ExitStack() as stack:
            stack.enter_context(source)
            total = _check_header_and_count(source)
            source.seek(0)
            reader = csv.DictReader(source)
            reader.fieldnames = [name.strip() for name in reader.fieldnames]
            report = _open_report(stack, options["report"])
            # A dry run is one transaction rolled back at the end, so rows see the rows before
            # them (a PAN twice in the file) exactly as in a real import.
            if dry_run:
                stack.enter_context(transaction.atomic())
            counts = self._import(issuer, reader, total, report, update=options["update"])
            if dry_run:
                transaction.set_rollback(True)

        failed = counts["failed"]
        imported = sum(counts.values()) - failed
        suffix = " (dry run: nothing was written)" if dry_run else ""
        if options["update"]:
            self.stdout.write(f"created {counts['created']}, updated {counts['updated']}, "
                              f"unchanged {counts['unchanged']}, failed {failed}{suffix}")
        else:
            self.stdout.write(f"imported {imported}, failed {failed}{suffix}")
        if failed:
            raise CommandError(f"{failed} of {imported + failed} rows failed (lines of the file, header is line 1).",
                               returncode=1)

    def _import(self, issuer: Issuer, reader: csv.DictReader, total: int, report, *, update: bool) -> dict:
        products = {product.name: product for product in CardProduct.objects.filter(issuer=issuer)}
        progress = _Progress(self.stderr, total) if self.stderr.isatty() else None
        counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        self._noted = False
        rows = _numbered(reader)
        while batch := list(islice(rows, BATCH_SIZE)):
            with transaction.atomic():
                for line, row in batch:
                    pan = (row.get("pan") or "").strip()
                    with sensitive(pan):
                        outcome, errors = _import_row(issuer, row, reader.fieldnames, products, update=update)
                        if errors:
                            self._report(progress, report, line, row.get("card_id") or "", errors)
                    counts[outcome] += 1
                    if progress is not None:
                        progress.update(sum(counts.values()))
        if progress is not None:
            progress.finish(sum(counts.values()))
        return counts

    def _report(self, progress: "_Progress | None", report, line: int, card_id: str, errors: list[tuple[str, str]]) -> None:
        """Runs inside sensitive(pan): scrub() takes the row's PAN out of anything it wrote."""
        if progress is not None:
            progress.clear()
        if not self._noted:
            self.stderr.write(LINE_NOTE)
            self._noted = True
        card_id = scrub(card_id)
        for field, message in errors:
            message = scrub(message)
            self.stderr.write(f"line {line}: {field}: {message}" if field else f"line {line}: {message}")
            if report is not None:
                report.writerow([line, card_id, field, message])


def _check_header_and_count(source) -> int:
    """The number of data rows; CommandError, before anything is written, for a wrong header
    or a file that is not readable CSV."""
    reader = csv.reader(source)
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise CommandError(f"The file is empty; expected the header {','.join(COLUMNS)}.")
        problems = []
        if missing := [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown := [c for c in header if c not in ALL_COLUMNS]:
            problems.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if len(set(header)) != len(header):
            problems.append("a column appears twice")
        if problems:
            raise CommandError(f"Wrong header: {'; '.join(problems)}. Expected {','.join(COLUMNS)}.")
        return sum(1 for row in reader if row)  # DictReader skips blank lines too
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CommandError(f"Line {reader.line_num}: not a readable UTF-8 CSV file ({exc}).")


def _open_report(stack: contextlib.ExitStack, path: str | None):
    if not path:
        return None
    try:
        handle = stack.enter_context(open(path, "w", newline="", encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"Cannot write the report {path}: {exc.strerror}.")
    writer = csv.writer(handle)
    writer.writerow(REPORT_COLUMNS)
    return writer


def _numbered(reader: csv.DictReader):
    """(first line of the row in the file, row). line_num is the row's last line; a quoted value
    may hold line breaks."""
    for row in reader:
        breaks = sum(value.count("\n") for value in row.values() if isinstance(value, str))
        yield reader.line_num - breaks, row


def _import_row(issuer: Issuer, row: dict, columns: list[str], products: dict, *, update: bool) -> tuple[str, list[tuple[str, str]]]:
    """Import one row in its own savepoint: (created | updated | unchanged | failed, its errors)."""
    errors, values = _check_row(row, columns, products)
    if errors:
        return "failed", errors
    try:
        with transaction.atomic():
            existing = selectors.card_find_by_card_id(issuer=issuer, card_id=values["card_id"]) if update else None
            if existing is None:
                _enroll(issuer, values, products.get(values["product"]))
                outcome = "created"
            else:
                outcome = _update(existing, values)
    except ApplicationError as exc:
        fields = [(_COLUMN_FOR_FIELD.get(f, f), m) for f, messages in exc.fields.items() for m in messages]
        return "failed", fields or [("", exc.message)]
    return outcome, []


def _update(card: Card, values: dict) -> str:
    """The row's status and expiry onto the card of its card_id, if it is the same card."""
    if not selectors.card_pan_matches(card=card, pan=values["pan"]):
        raise ApplicationError("Not this card.", code="pan_mismatch",
                               fields={"pan": ["Not the PAN enrolled for this card_id; the row is refused."]})
    if card.cardholder.external_id != values["external_id"]:
        raise ApplicationError("Not this cardholder.", code="cardholder_mismatch",
                               fields={"external_id": ["This card_id belongs to another cardholder; the row is refused."]})
    wanted = {"expiry_month": values["expiry_month"], "expiry_year": values["expiry_year"]}
    if values[STATUS_COLUMN]:
        wanted["status"] = values[STATUS_COLUMN]
    changes = {field: value for field, value in wanted.items() if getattr(card, field) != value}
    if not changes:
        return "unchanged"
    services.card_update(card=card, actor=ACTOR, **changes)
    return "updated"


def _check_row(row: dict, columns: list[str], products: dict) -> tuple[list[tuple[str, str]], dict]:
    """What the services do not check themselves: shape of the row, text fields, numbers, product."""
    if None in row:  # DictReader puts surplus values under the key None
        return [("", "More values than columns in the header.")], {}
    if missing := [c for c in columns if row[c] is None]:
        return [(c, "Missing column.") for c in missing], {}
    values = {c: (row.get(c) or "").strip() for c in ALL_COLUMNS}
    errors = []

    cardholder = {"external_id": values["external_id"], "name": values["name"]}
    if values["locale"]:  # blank: the API's default locale
        cardholder["locale"] = values["locale"]
    serializer = CardholderInput(data=cardholder)
    if not serializer.is_valid():
        errors += [(field, str(m)) for field, messages in serializer.errors.items() for m in messages]
    else:
        values.update(serializer.validated_data)

    try:
        card_id_validator(values["card_id"])
    except ValidationError as exc:
        errors += [("card_id", m) for m in exc.messages]
    for column in ("expiry_month", "expiry_year"):
        try:
            values[column] = int(values[column])
        except ValueError:
            errors.append((column, "Must be a whole number."))
    if values[STATUS_COLUMN] and values[STATUS_COLUMN] not in STATUSES:
        errors.append((STATUS_COLUMN, f"{values[STATUS_COLUMN]!r} is not a card status; allowed: {', '.join(STATUSES)}."))
    if values["product"] and values["product"] not in products:
        errors.append(("product", f"No card product named {values['product']!r}."))
    return errors, values


def _enroll(issuer: Issuer, values: dict, product: CardProduct | None) -> None:
    cardholder = selectors.cardholder_list(issuer=issuer, external_id=values["external_id"]).first()
    if cardholder is None:
        cardholder = services.cardholder_create(
            issuer=issuer, external_id=values["external_id"], name=values["name"], locale=values["locale"], actor=ACTOR
        )
    if values["phone"]:
        number = services.parse_phone_number(values["phone"])
        # Another card of the same cardholder repeats the phone: already there, nothing to do.
        if not cardholder.phones.filter(number=number).exists():
            # The issuer vouches for the numbers it sends; primary only if there is none yet.
            services.phone_create(cardholder=cardholder, number=values["phone"], is_primary=None, verified=True, actor=ACTOR)
    card = services.card_create(
        issuer=issuer,
        card_id=values["card_id"],
        cardholder=cardholder,
        pan=values["pan"],
        expiry_month=values["expiry_month"],
        expiry_year=values["expiry_year"],
        product=product,
        actor=ACTOR,
    )
    if values[STATUS_COLUMN] and values[STATUS_COLUMN] != card.status:
        services.card_update(card=card, actor=ACTOR, status=values[STATUS_COLUMN])


class _Progress:
    """`[#####     ] 120/1000 rows, 350 rows/s, 0:00:03 left` on one line of a terminal's stderr,
    redrawn at most every PROGRESS_INTERVAL."""

    WIDTH = 30

    def __init__(self, out, total: int, *, clock=time.monotonic):
        self.out, self.total, self.clock = out, total, clock
        self.started = clock()
        self.last_draw = 0.0
        self.shown = ""

    def update(self, done: int, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last_draw < PROGRESS_INTERVAL:
            return
        self.last_draw = now
        self.shown = self.line(done, elapsed=now - self.started)
        self._write("\r" + self.shown)

    def line(self, done: int, *, elapsed: float) -> str:
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        bar = f"[{'#' * filled}{' ' * (self.WIDTH - filled)}] {done}/{self.total} rows"
        if done <= 0 or elapsed <= 0:
            return bar
        rate = done / elapsed
        left = timedelta(seconds=round(max(self.total - done, 0) / rate))
        return f"{bar}, {rate:,.0f} rows/s, {left} left"

    def clear(self) -> None:
        """Blank the bar so that a message can take the line."""
        if self.shown:
            self._write("\r" + " " * len(self.shown) + "\r")
            self.shown = ""

    def finish(self, done: int) -> None:
        self.update(done, force=True)
        self._write("\n")

    def _write(self, text: str) -> None:
        self.out.write(text, style_func=str, ending="")  # plain: not in the error colour of stderr
        self.out.flush()
