"""The EMV codes live in one module (apps/threeds/emv.py): its tables say what the SPEC says (§3.1
results and Erro codes, §3.4 timeouts, §3.6 ECI), and no other module of apps/ defines a code of
its own (read with `ast`, so a second table cannot come back under another name)."""

import ast
import re
from pathlib import Path

import pytest

from apps.core.pan import AMEX, CARTES_BANCAIRES, DISCOVER, JCB, MASTERCARD, VISA
from apps.threeds import emv
from apps.threeds.messages import erro
from apps.threeds.results import eci_for

APPS = Path(__file__).resolve().parents[2] / "apps"


# ---------------------------------------------------------------- SPEC §3.1: the ARes table


@pytest.mark.parametrize(
    "name, code",
    [
        ("REASON_NO_CARD_RECORD", "08"),  # PAN not enrolled with this service
        ("REASON_LOST_STOLEN", "10"),  # card lost_stolen
        ("REASON_TRANSACTION_NOT_PERMITTED", "12"),  # card suspended or closed
        ("REASON_CARD_EXPIRED", "05"),
        ("REASON_FREQUENCY_LIMIT", "04"),  # too many authentications for the card (velocity)
        ("REASON_NO_METHOD", "13"),  # challenge needed, no method
        ("REASON_3RI_NOT_SUPPORTED", "21"),  # challenge needed on 3RI
        ("REASON_ACS_TECHNICAL", "22"),  # internal failure after a valid AReq
        ("REASON_TIMEOUT", "14"),  # §3.4: first CReq or whole challenge too late
        ("REASON_TOO_MANY_ATTEMPTS", "19"),  # §3.5: max verification attempts exceeded
    ],
)
def test_reason_codes_are_the_specs(name, code):
    assert getattr(emv, name) == code
    assert emv.REASON_DESCRIPTIONS[code]


def test_each_reason_code_has_one_name():
    names = {name: value for name, value in vars(emv).items() if name.startswith("REASON_") and isinstance(value, str)}
    assert len(set(names.values())) == len(names), names
    assert set(names.values()) == set(emv.REASON_DESCRIPTIONS)


def test_challenge_cancel_values_are_the_specs():
    # §3.2 cancel by the cardholder: 01; §3.4 whole challenge too long: 04; no first CReq in time: 05.
    assert (emv.CANCEL_BY_CARDHOLDER, emv.CANCEL_TIMEOUT_OTHER, emv.CANCEL_TIMEOUT_FIRST_CREQ) == ("01", "04", "05")
    assert {"01", "04", "05"} <= set(emv.CHALLENGE_CANCEL_VALUES)


# ---------------------------------------------------------------- SPEC §3.1: Erro codes

SPEC_ERRORS = {
    "101": "ERROR_MESSAGE_INVALID",
    "102": "ERROR_VERSION_NOT_SUPPORTED",
    "201": "ERROR_REQUIRED_ELEMENT_MISSING",
    "203": "ERROR_FORMAT_INVALID",
    "301": "ERROR_TRANSACTION_ID_NOT_RECOGNISED",
    "302": "ERROR_DECRYPTION_FAILURE",
    "303": "ERROR_ACCESS_DENIED",
    "402": "ERROR_TIMEOUT",
    "403": "ERROR_TRANSIENT_FAILURE",
    "404": "ERROR_PERMANENT_FAILURE",
}


def test_erro_codes_are_the_specs_and_each_has_its_description():
    assert {getattr(emv, name): code for code, name in SPEC_ERRORS.items()} == {code: code for code in SPEC_ERRORS}
    assert set(emv.ERROR_DESCRIPTIONS) == set(SPEC_ERRORS)
    assert emv.ERROR_DESCRIPTIONS["403"] == "Transient system failure"
    assert emv.ERROR_DESCRIPTIONS["404"] == "Permanent system failure"


@pytest.mark.parametrize("code", sorted(SPEC_ERRORS))
def test_an_erro_message_carries_the_description_of_its_code(code):
    body = erro(code=code, detail="x")
    assert (body["messageType"], body["errorCode"], body["errorDescription"]) == ("Erro", code, emv.ERROR_DESCRIPTIONS[code])


# ---------------------------------------------------------------- SPEC §3.6: ECI

SPEC_ECI = {
    VISA: {"Y": "05", "A": "06", "N": "07", "U": "07", "R": "07"},
    AMEX: {"Y": "05", "A": "06", "N": "07", "U": "07", "R": "07"},
    JCB: {"Y": "05", "A": "06", "N": "07", "U": "07", "R": "07"},
    DISCOVER: {"Y": "05", "A": "06", "N": "07", "U": "07", "R": "07"},
    MASTERCARD: {"Y": "02", "A": "01", "N": "00", "U": "00", "R": "00"},
}


def test_the_eci_table_is_the_specs():
    assert emv.ECI == SPEC_ECI


@pytest.mark.parametrize("network", sorted(SPEC_ECI))
@pytest.mark.parametrize("status", ["Y", "A", "N", "U", "R"])
def test_a_cartes_bancaires_card_uses_its_co_badges_table(network, status):
    assert eci_for(network=CARTES_BANCAIRES, co_badge=network, trans_status=status) == SPEC_ECI[network][status]
    assert eci_for(network=network, co_badge="", trans_status=status) == SPEC_ECI[network][status]


# ---------------------------------------------------------------- nothing else defines them

CODE_NAME = re.compile(r"^_?(REASON|CANCEL|ERROR|ECI)_?[A-Z0-9_]*$")
TWO_DIGITS = re.compile(r"^[0-9]{2}$")
ERRO_CODE = re.compile(r"^[1-4]0[0-9]$")


def _literal_strings(node) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def code_definitions(tree: ast.AST) -> list[str]:
    """What in a module looks like a definition of an EMV code or table: a REASON_/CANCEL_/
    ERROR_/ECI name bound to a literal code, a dict of texts keyed by Erro codes, or a dict
    mapping transStatus values to two-digit codes (an ECI table)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            values = _literal_strings(node.value) if node.value is not None else []
            if any(CODE_NAME.match(name) for name in names) and any(TWO_DIGITS.match(v) or ERRO_CODE.match(v) for v in values):
                found.append(f"line {node.lineno}: {names[0]}")
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            values = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            erro_keys = [k for k in keys if ERRO_CODE.match(k)]
            http_statuses = all(k[0] == "4" for k in erro_keys)  # {"403": "Forbidden", ...} is HTTP's
            if len(erro_keys) >= 2 and len(values) == len(node.values) and not http_statuses:
                found.append(f"line {node.lineno}: a table keyed by Erro codes")
            if {"Y", "A"} <= set(keys) and any(TWO_DIGITS.match(v) for v in values):
                found.append(f"line {node.lineno}: a transStatus → code table")
    return found


def test_the_check_finds_the_kinds_of_definition_it_looks_for():
    # So that the test below cannot pass by finding nothing at all.
    for sample in ('REASON_X = "13"', 'CANCEL_Y = "01"', 'T = {"101": "a", "203": "b"}', 'E = {"Y": "05", "A": "06"}'):
        assert code_definitions(ast.parse(sample)), sample
    assert not code_definitions(ast.parse('STATUS = {"403": "Forbidden", "404": "Not found"}\nNAME = "13"'))
    assert code_definitions(ast.parse((APPS / "threeds" / "emv.py").read_text()))


def test_no_module_but_emv_defines_an_emv_code():
    offenders = {}
    for path in sorted(APPS.rglob("*.py")):
        if "migrations" in path.parts or path == APPS / "threeds" / "emv.py":
            continue
        found = code_definitions(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[str(path.relative_to(APPS.parent))] = found
    assert offenders == {}, "import these codes from apps.threeds.emv instead"
