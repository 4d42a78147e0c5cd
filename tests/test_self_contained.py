"""`make test` on a fresh clone needs nothing outside the repository: no file of the project or
its tests may point outside it — the workspace's `../shared/` directory, or an absolute path of
the machine it was written on. What the tests read from outside is vendored under tests/ (e.g.
tests/fakes/reference/twilio/, with its licence and the script that cut it).

Prose (*.md) is left out: the docs may cite the workspace's specification or show a command as
it was run; nothing executes them."""

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve()

SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis",
                "staticfiles", "media", ".mypy_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".md", ".pyc", ".sqlite3", ".png", ".jpg", ".ico", ".woff", ".woff2", ".gz"}

OUTSIDE = [
    re.compile(r"\.\./+shared\b"),  # "../shared/…"
    re.compile(r"""["']\.\.["']\s*[,/]\s*["']shared["']"""),  # Path(…) / ".." / "shared", join("..", "shared")
    re.compile(r"(?<![\w.~-])/work/"),  # an absolute path of this workspace
    re.compile(r"(?<![\w.])/(?:home|Users|root)/[\w.-]+/"),  # someone's home directory
]


def outside_references(text: str) -> list[str]:
    return [match.group(0) for pattern in OUTSIDE for match in pattern.finditer(text)]


def project_files():
    for path in PROJECT_ROOT.rglob("*"):
        relative = path.relative_to(PROJECT_ROOT)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in SKIPPED_SUFFIXES or path.resolve() == THIS_FILE:
            continue
        try:
            yield relative, path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary


def test_detector_catches_every_form_it_guards_against():
    for line in [
        'SPEC_PATH = PROJECT_ROOT / ".." / "shared" / "reference" / "twilio.json"',
        "open('../shared/reference/twilio/twilio_api_v2010.json')",
        'os.path.join(ROOT, "..", "shared", "x")',
        "PYTHON = /work/main/.venv/bin/python",
        'DATA = "/home/alice/data/"',
    ]:
        assert outside_references(line), line
    for line in ["path('api/v1/', include('apps.cards.urls'))", "Path(__file__).parent / 'reference'", "sharedsecret ../shared_x"]:
        assert not outside_references(line), line


def test_nothing_in_the_project_points_outside_the_repository():
    scanned, found = 0, []
    for relative, text in project_files():
        scanned += 1
        for number, line in enumerate(text.splitlines(), 1):
            for reference in outside_references(line):
                found.append(f"{relative}:{number}: {reference!r}")
    assert scanned > 100, f"only {scanned} files scanned from {PROJECT_ROOT}"
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_the_twilio_description_is_vendored_with_its_licence():
    from tests.fakes.twilio_server import SPEC_PATH

    assert SPEC_PATH.is_relative_to(PROJECT_ROOT / "tests") and SPEC_PATH.exists()
    assert (SPEC_PATH.parent / "LICENSE").read_text().startswith("MIT License")
    assert (SPEC_PATH.parent / "trim_twilio.py").exists()
