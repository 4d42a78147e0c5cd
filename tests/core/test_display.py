"""Values in words (SPEC §5.6) in English and Japanese, and the compiled catalogs are current."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import translation

from apps.core import display
from apps.threeds import emv

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["N — Not authenticated / declined", "13 — Cardholder not enrolled in service", "Japan", "Euro", "¥1,500", "€1,234.56"]),
        ("ja", ["N — 認証不可／拒否", "13 — カード会員がサービス未登録", "日本", "ユーロ", "￥1,500", "€1,234.56"]),
    ],
)
def test_values_in_words(language, expected):
    with translation.override(language):
        got = [
            emv.trans_status_text("N"),
            emv.reason_text("13"),
            display.country_name("392"),
            display.currency_name("978"),
            display.amount(1500, "392", 0),
            display.amount(123456, "978", 2),
        ]
    assert got == expected


def test_unknown_codes_stay_visible_never_guessed():
    assert emv.trans_status_text("Z") == "Z"
    assert emv.reason_text("99") == "99"
    assert display.country_name("000") == "000"
    assert display.amount(1, "000", 2) == "0.01 (000)"
    assert display.amount(None, "978", 2) == "—"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext not installed")
def test_every_catalog_is_compiled_from_its_current_po(tmp_path):
    catalogs = [p for p in ROOT.glob("**/locale/*/LC_MESSAGES/django.po") if ".venv" not in p.parts]
    assert catalogs
    for po in catalogs:
        fresh = tmp_path / "fresh.mo"
        subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(po)], check=True)
        assert po.with_suffix(".mo").read_bytes() == fresh.read_bytes(), f"{po}: run compilemessages"


@pytest.mark.skipif(shutil.which("msgattrib") is None, reason="GNU gettext not installed")
def test_every_staff_string_has_its_japanese():
    for po in (p for p in ROOT.glob("**/locale/ja/LC_MESSAGES/django.po") if ".venv" not in p.parts):
        untranslated = subprocess.run(["msgattrib", "--untranslated", "--no-obsolete", str(po)], capture_output=True, text=True, check=True).stdout
        fuzzy = subprocess.run(["msgattrib", "--only-fuzzy", "--no-obsolete", str(po)], capture_output=True, text=True, check=True).stdout
        # The header entry (msgid "") is the only one allowed: it is untranslated and fuzzy by nature.
        assert untranslated.count("\nmsgid ") + untranslated.startswith("msgid ") <= 1, f"{po}:\n{untranslated}"
        assert fuzzy.count("msgid ") <= 1, f"{po}:\n{fuzzy}"
