"""import_cards (issue 14 item 6): the update mode, the progress bar only on a terminal (with rate
and time left), and rows named by their line in the file (the header is line 1)."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.cards.management.commands import import_cards
from apps.cards.models import Card
from tests.factories import IssuerFactory, grant, new_pan

pytestmark = pytest.mark.django_db

NEXT_YEAR = str(timezone.now().year + 2)
LATER_YEAR = str(timezone.now().year + 5)
HEADER = [*import_cards.COLUMNS, "status"]


class Terminal(io.StringIO):
    """stderr as a terminal reports itself (what `isatty()` answers on a tty)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def issuer(db):
    issuer = IssuerFactory(issuer_id="UPDBANK001")
    grant(issuer, "411100", "411109")
    return issuer


def write(path, rows, header=HEADER) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def row(external_id, card_id, pan, *, month="12", year=NEXT_YEAR, status="", name="Ann Lee"):
    return [external_id, name, "en", "", card_id, pan, month, year, "", status]


def run(*args, stderr=None):
    out, err = io.StringIO(), stderr or io.StringIO()
    try:
        call_command("import_cards", *args, "--issuer-id", "UPDBANK001", stdout=out, stderr=err)
        failure = None
    except CommandError as exc:
        failure = exc
    return out.getvalue(), err.getvalue(), failure


@pytest.fixture
def imported(issuer, tmp_path):
    """Two cards imported from a file; returns their PANs."""
    pans = [new_pan(), new_pan()]
    path = write(tmp_path / "first.csv", [row("c-1", "k-1", pans[0]), row("c-2", "k-2", pans[1])])
    out, _, failure = run(path)
    assert failure is None and out.strip() == "imported 2, failed 0"
    return pans


# ---------------------------------------------------------------- --update


def test_without_update_a_reimport_fails_every_row_as_before(imported, tmp_path):
    path = write(tmp_path / "again.csv", [row("c-1", "k-1", imported[0]), row("c-2", "k-2", imported[1])])
    out, _, failure = run(path)
    assert out.startswith("imported 0, failed 2") and failure.returncode == 1


def test_update_changes_status_and_expiry_of_the_same_cards(imported, tmp_path):
    path = write(tmp_path / "again.csv", [
        row("c-1", "k-1", imported[0], status="suspended"),
        row("c-2", "k-2", imported[1], month="06", year=LATER_YEAR),
    ])
    out, err, failure = run(path, "--update")
    assert failure is None, err
    assert out.strip() == "created 0, updated 2, unchanged 0, failed 0"
    assert Card.objects.get(card_id="k-1").status == "suspended"
    k2 = Card.objects.get(card_id="k-2")
    assert (k2.expiry_month, k2.expiry_year, k2.status) == (6, int(LATER_YEAR), "active")
    assert AuditEvent.objects.filter(kind="card.updated", actor="import_cards").count() == 2


def test_update_of_an_unchanged_file_changes_nothing_and_enrols_new_rows(imported, tmp_path):
    extra = new_pan()
    path = write(tmp_path / "again.csv", [
        row("c-1", "k-1", imported[0]), row("c-2", "k-2", imported[1]), row("c-3", "k-3", extra, status="lost_stolen"),
    ])
    out, _, failure = run(path, "--update")
    assert failure is None
    assert out.strip() == "created 1, updated 0, unchanged 2, failed 0"
    assert Card.objects.get(card_id="k-3").status == "lost_stolen"
    assert not AuditEvent.objects.filter(kind="card.updated", data__card_id="k-1").exists()


def test_update_refuses_a_row_whose_pan_is_not_the_cards(imported, tmp_path):
    other = new_pan()
    path = write(tmp_path / "again.csv", [row("c-1", "k-1", other, status="closed")])
    out, err, failure = run(path, "--update")
    assert out.startswith("created 0, updated 0, unchanged 0, failed 1") and failure.returncode == 1
    assert "line 2: pan: Not the PAN enrolled for this card_id; the row is refused." in err
    assert Card.objects.get(card_id="k-1").status == "active"
    assert other not in out + err and imported[0] not in out + err


def test_update_refuses_a_row_that_moves_the_card_to_another_cardholder(imported, tmp_path):
    path = write(tmp_path / "again.csv", [row("c-2", "k-1", imported[0], status="closed")])
    _, err, failure = run(path, "--update")
    assert failure is not None and "line 2: external_id: This card_id belongs to another cardholder" in err
    assert Card.objects.get(card_id="k-1").status == "active"


def test_update_refuses_an_expiry_in_the_past_and_keeps_the_card(imported, tmp_path):
    path = write(tmp_path / "again.csv", [row("c-1", "k-1", imported[0], year=str(timezone.now().year - 1))])
    _, err, failure = run(path, "--update")
    assert failure is not None and "line 2: expiry_year: The card has expired." in err
    assert Card.objects.get(card_id="k-1").expiry_year == int(NEXT_YEAR)


def test_an_unknown_status_lists_the_statuses(issuer, tmp_path):
    path = write(tmp_path / "cards.csv", [row("c-1", "k-1", new_pan(), status="frozen")])
    _, err, failure = run(path)
    assert failure is not None
    assert "line 2: status: 'frozen' is not a card status; allowed: active, suspended, lost_stolen, closed." in err


def test_update_dry_run_writes_nothing(imported, tmp_path):
    path = write(tmp_path / "again.csv", [row("c-1", "k-1", imported[0], status="closed")])
    out, _, failure = run(path, "--update", "--dry-run")
    assert failure is None and out.strip() == "created 0, updated 1, unchanged 0, failed 0 (dry run: nothing was written)"
    assert Card.objects.get(card_id="k-1").status == "active"


# ---------------------------------------------------------------- line numbers


def test_errors_say_lines_count_from_the_header_and_a_multiline_row_by_its_first_line(issuer, tmp_path):
    path = write(tmp_path / "cards.csv", [
        row("c-1", "k-1", new_pan()),                                # line 2
        row("c-2", "k 2", new_pan(), name="Ann\nLee\nthe third"),     # lines 3-5: line breaks in a quoted name; bad card_id
        row("c-3", "k 3", new_pan()),                                # line 6: bad card_id
    ])
    report = tmp_path / "report.csv"
    out, err, failure = run(path, "--report", str(report))
    assert failure is not None and "(lines of the file, header is line 1)" in str(failure)
    assert "Rows are named by their line in the file; the header is line 1." in err
    assert "line 3: card_id:" in err and "line 6: card_id:" in err
    with open(report, newline="") as f:
        lines = list(csv.DictReader(f))
    assert [(r["line"], r["card_id"], r["field"]) for r in lines] == [("3", "k 2", "card_id"), ("6", "k 3", "card_id")]


# ---------------------------------------------------------------- the progress bar


def test_no_progress_bar_when_stderr_is_not_a_terminal(issuer, tmp_path):
    path = write(tmp_path / "cards.csv", [row("c-1", "k-1", new_pan())])
    _, err, failure = run(path)
    assert failure is None and "rows" not in err and "\r" not in err


def test_a_terminal_gets_the_bar_with_rate_and_time_left(issuer, tmp_path):
    path = write(tmp_path / "cards.csv", [row(f"c-{i}", f"k-{i}", new_pan()) for i in range(3)])
    _, err, failure = run(path, stderr=Terminal())
    assert failure is None
    final = err.rstrip("\n").split("\r")[-1]
    assert final.startswith("[" + "#" * 30 + "] 3/3 rows, ") and final.endswith(" left")
    assert " rows/s, " in final


def test_the_rate_and_time_left_are_computed_from_the_rows_done():
    progress = import_cards._Progress(io.StringIO(), 1000, clock=lambda: 0.0)
    assert progress.line(250, elapsed=5.0) == "[#######                       ] 250/1000 rows, 50 rows/s, 0:00:15 left"
    assert progress.line(0, elapsed=0.0) == "[                              ] 0/1000 rows"
