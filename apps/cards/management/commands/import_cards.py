"""`manage.py import_cards FILE.csv --issuer-id ID`: bulk enrollment from the issuer's CSV file.

A row is one cardholder (created, or reused by external_id), an optional phone and one card, and
it is imported whole or not at all. The file is streamed twice: once to check the header and
count the rows for the progress bar, once to import. No PAN ever reaches the output or the report.
"""

import contextlib
import csv
import time
from itertools import islice

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.cards import selectors, services
from apps.cards.apis import CardholderInput
from apps.cards.models import CardProduct, card_id_validator
from apps.core.exceptions import ApplicationError
from apps.core.logging import scrub, sensitive
from apps.issuers.models import Issuer

COLUMNS = ("external_id", "name", "locale", "phone", "card_id", "pan", "expiry_month", "expiry_year", "product")
OPTIONAL_COLUMNS = {"phone", "product"}
REPORT_COLUMNS = ("row", "card_id", "field", "message")
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
        + " (phone and product optional). Errors name the row by its line in the file."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8.")
        parser.add_argument("--issuer-id", required=True)
        parser.add_argument("--report", help="Write the per-row errors to this CSV file (row,card_id,field,message).")
        parser.add_argument("--dry-run", action="store_true", help="Check every row as a real import would; write nothing.")

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
            imported, failed = self._import(issuer, reader, total, report)
            if dry_run:
                transaction.set_rollback(True)

        suffix = " (dry run: nothing was written)" if dry_run else ""
        self.stdout.write(f"imported {imported}, failed {failed}{suffix}")
        if failed:
            raise CommandError(f"{failed} of {imported + failed} rows failed.", returncode=1)

    def _import(self, issuer: Issuer, reader: csv.DictReader, total: int, report) -> tuple[int, int]:
        products = {product.name: product for product in CardProduct.objects.filter(issuer=issuer)}
        progress = _Progress(self.stderr, total)
        imported = failed = 0
        rows = ((reader.line_num, row) for row in reader)
        while batch := list(islice(rows, BATCH_SIZE)):
            with transaction.atomic():
                for line, row in batch:
                    pan = (row.get("pan") or "").strip()
                    with sensitive(pan):
                        errors = _import_row(issuer, row, reader.fieldnames, products)
                        if errors:
                            failed += 1
                            self._report(progress, report, line, row.get("card_id") or "", errors)
                        else:
                            imported += 1
                    progress.update(imported + failed)
        progress.finish(imported + failed)
        return imported, failed

    def _report(self, progress: "_Progress", report, line: int, card_id: str, errors: list[tuple[str, str]]) -> None:
        """Runs inside sensitive(pan): scrub() takes the row's PAN out of anything it wrote."""
        progress.clear()
        card_id = scrub(card_id)
        for field, message in errors:
            message = scrub(message)
            self.stderr.write(f"row {line}: {field}: {message}" if field else f"row {line}: {message}")
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
        if unknown := [c for c in header if c not in COLUMNS]:
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


def _import_row(issuer: Issuer, row: dict, columns: list[str], products: dict) -> list[tuple[str, str]]:
    """Enroll one row in its own savepoint; returns its errors, empty when it was imported."""
    errors, values = _check_row(row, columns, products)
    if errors:
        return errors
    try:
        with transaction.atomic():
            _enroll(issuer, values, products.get(values["product"]))
    except ApplicationError as exc:
        fields = [(_COLUMN_FOR_FIELD.get(f, f), m) for f, messages in exc.fields.items() for m in messages]
        return fields or [("", exc.message)]
    return []


def _check_row(row: dict, columns: list[str], products: dict) -> tuple[list[tuple[str, str]], dict]:
    """What the services do not check themselves: shape of the row, text fields, numbers, product."""
    if None in row:  # DictReader puts surplus values under the key None
        return [("", "More values than columns in the header.")], {}
    if missing := [c for c in columns if row[c] is None]:
        return [(c, "Missing column.") for c in missing], {}
    values = {c: (row.get(c) or "").strip() for c in COLUMNS}
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
    services.card_create(
        issuer=issuer,
        card_id=values["card_id"],
        cardholder=cardholder,
        pan=values["pan"],
        expiry_month=values["expiry_month"],
        expiry_year=values["expiry_year"],
        product=product,
        actor=ACTOR,
    )


class _Progress:
    """`[#####     ] 120/1000 rows` on one line of stderr, redrawn at most every PROGRESS_INTERVAL."""

    WIDTH = 30

    def __init__(self, out, total: int):
        self.out, self.total = out, total
        self.last_draw = 0.0
        self.shown = ""

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < PROGRESS_INTERVAL:
            return
        self.last_draw = now
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        self.shown = f"[{'#' * filled}{' ' * (self.WIDTH - filled)}] {done}/{self.total} rows"
        self._write("\r" + self.shown)

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
