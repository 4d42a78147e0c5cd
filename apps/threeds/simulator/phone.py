"""The cardholder's phone: where the simulation reads the one-time code, like a person would."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Protocol

from apps.threeds.simulator.errors import Unexpected

# A code is a run of 6 to 8 digits not part of a longer number (amounts are grouped: 1,500).
CODE = re.compile(r"(?<![\d.,])(\d{6,8})(?![\d.,]\d|\d)")
# "+81 ••• •••• 5678": the country code and the last four digits of the number the code went to.
MASKED_PHONE = re.compile(r"\+(\d{1,3})[\s\u2022*.\-]+(\d{4})\b")


def find_code(text: str) -> str | None:
    match = CODE.search(text or "")
    return match.group(1) if match else None


def code_in(body: str) -> str:
    code = find_code(body)
    if code is None:
        raise Unexpected("no code in the SMS body")
    return code


def masked_number(e164: str) -> str:
    return f"{e164[:3]} ••• •••• {e164[-4:]}" if len(e164) > 7 else "•••"


def phone_hint(text: str) -> tuple[str, str] | None:
    """(country code, last 4 digits) of the masked number a challenge shows, if it shows one."""
    match = MASKED_PHONE.search(text or "")
    return (match.group(1), match.group(2)) if match else None


class Inbox(Protocol):
    def bodies(self, to: str) -> list[str]:
        """The bodies of the SMS sent to this number, oldest first."""


class SmsFile:
    """The `file` SMS backend's JSON lines ({"to": ..., "body": ...}). With `from_end`, only the
    lines written after this object was made (a server that already sent other SMS)."""

    def __init__(self, path, *, from_end: bool = False):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if from_end and self.path.exists() else 0
        self.seen = 0

    def messages(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            raw = fh.read()
        lines = []
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line being written: read again on the next poll
            if isinstance(item, dict):
                lines.append(item)
        return lines

    def bodies(self, to: str) -> list[str]:
        return [str(m.get("body", "")) for m in self.messages() if m.get("to") == to]

    def next_code(self, *, phone_hint: tuple[str, str] | None, timeout: float) -> tuple[str, str]:
        """(code, masked destination) of the next SMS not read yet to the phone (country code,
        last 4), when the full number is not known (the page shows it masked)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.messages()
            for index in range(self.seen, len(lines)):
                to = str(lines[index].get("to", ""))
                if phone_hint and not (to.startswith("+" + phone_hint[0]) and to.endswith(phone_hint[1])):
                    continue
                code = find_code(str(lines[index].get("body", "")))
                if code:
                    self.seen = index + 1
                    return code, masked_number(to)
            if time.monotonic() >= deadline:
                whom = f"+{phone_hint[0]} … {phone_hint[1]}" if phone_hint else "the cardholder"
                raise Unexpected(
                    f"No SMS to {whom} appeared in {self.path} within {timeout:.0f} s. Is the server running with "
                    f"SMS_BACKEND=file and SMS_FILE_PATH={self.path} (and a Celery worker, if it has a broker)?"
                )
            time.sleep(0.2)


class ProviderInbox:
    """The SMS a provider fake accepted: anything with `accepted(to=...)` returning messages
    with a `body` (tests/fakes/twilio_server.py, when a real worker sent through the real
    twilio client)."""

    def __init__(self, server):
        self.server = server

    def bodies(self, to: str) -> list[str]:
        return [m.body for m in self.server.accepted(to=to)]


def wait_code(inbox: Inbox, to: str, *, nth: int = 1, timeout: float = 20.0) -> str:
    """The code of the nth SMS to `to` (1 = the first), waiting until it arrives."""
    deadline = time.monotonic() + timeout
    while True:
        bodies = inbox.bodies(to)
        if len(bodies) >= nth:
            return code_in(bodies[nth - 1])
        if time.monotonic() > deadline:
            raise Unexpected(f"SMS #{nth} to {to} did not arrive within {timeout:.0f}s (got {len(bodies)})")
        time.sleep(0.05)
