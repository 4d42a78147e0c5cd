"""Run as a script (not collected by pytest): N parallel AReqs, then N parallel challenge starts,
through the app's own views, on the file-based SQLite database named by DATABASE_URL.

Prints one JSON line: the status codes of the AReqs and of the challenge starts, and how many
responses were not what a cardholder should get. Used by test_sqlite_concurrency.py."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issuer_portal.settings_test")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from apps.threeds.simulator.messages import browser_creq  # noqa: E402
from tests.concurrency import run_parallel  # noqa: E402
from tests.threeds.builders import areq  # noqa: E402
from tests.threeds.harness import b64url_encode, make_bank  # noqa: E402


def main(n: int) -> None:
    call_command("migrate", verbosity=0)
    bank = make_bank()
    # One card and phone each: the per-card and per-number SMS limits stay out of the picture.
    pans = [bank.pan] + [_another_card(bank.issuer) for _ in range(n - 1)]
    connection.close()
    messages = [areq(pan=pans[i], threeDSRequestorChallengeInd="04") for i in range(n)]
    ares: list = [None] * n

    def send_areq(i):
        response = Client(raise_request_exception=False).post("/3ds/v2/areq", messages[i], content_type="application/json")
        if response.status_code == 200:
            ares[i] = response.json()
        return response.status_code

    areq_codes = run_parallel(n, send_areq)

    def start_challenge(i):
        if not ares[i] or ares[i].get("transStatus") != "C":
            return f"no challenge: {ares[i]}"
        creq = browser_creq(messages[i], ares[i]["acsTransID"])
        response = Client(raise_request_exception=False).post("/3ds/v2/challenge", {"creq": b64url_encode(creq)})
        ok = response.status_code == 200 and b"pageToken" in response.content
        return response.status_code if ok else f"{response.status_code}: {response.content[:200]!r}"

    start_codes = run_parallel(n, start_challenge)
    print(json.dumps({"areq": areq_codes, "challenge": start_codes, "journal_mode": journal_mode()}))


def _another_card(issuer) -> str:
    from tests.factories import CardholderFactory, make_card, make_phone, new_pan
    from tests.threeds.harness import new_jp_mobile

    cardholder = CardholderFactory(issuer=issuer, locale="en")
    make_phone(cardholder, new_jp_mobile())
    pan = new_pan()
    make_card(cardholder=cardholder, pan=pan)
    return pan


def journal_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 14)
