"""Analysts, their clients, and transactions written straight into the tables (for filters and
pagination); tests that need real data run the real 3DS flow (test_secrets.py, test_timeline.py)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import ANALYST
from apps.threeds.models import Challenge, Transaction
from tests.factories import client_for, make_staff
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

__all__ = ["client_for", "make_staff", "make_tx"]


@pytest.fixture
def analyst(issuer):
    return make_staff(issuer, ANALYST)


@pytest.fixture
def analyst_client(analyst):
    return client_for(analyst)


def make_tx(issuer, *, created_at=None, challenge: dict | None = None, **fields) -> Transaction:
    """A transaction as the AReq flow leaves it (no PAN: last 4 and a fingerprint), `created_at`
    set afterwards (auto_now_add would override it), with an optional challenge."""
    values = {
        "three_ds_server_trans_id": uuid.uuid4(), "ds_trans_id": uuid.uuid4(), "message_version": "2.2.0",
        "device_channel": "02", "message_category": "01", "pan_last4": "1234", "pan_fingerprint": "f" * 64,
        "network": "visa", "merchant_name": "Tokyo Books", "purchase_amount": 1500, "purchase_currency": "392",
        "purchase_exponent": 0, "ares_trans_status": "Y", "trans_status": "Y", "eci": "05", "risk_score": 10,
        "risk_rules": [{"rule": "base", "weight": 10}],
    }
    if challenge is not None:
        values.update(ares_trans_status="C")
    values.update(fields)
    tx = Transaction.objects.create(issuer=issuer, **values)
    if created_at is not None:
        Transaction.objects.filter(pk=tx.pk).update(created_at=created_at)
        tx.created_at = created_at
    if challenge is not None:
        now = timezone.now()
        Challenge.objects.create(
            transaction=tx, first_creq_deadline=now + timedelta(seconds=30), deadline=now + timedelta(minutes=10),
            **{"method": Challenge.SMS_OTP, "state": Challenge.SUCCEEDED, **challenge},
        )
    return tx


def export_rows(text: str) -> list[dict]:
    """The rows of a complete export: its last line is the trailer that counts them."""
    import csv
    import io

    from apps.analyst.services import TRAILER_PREFIX

    records = list(csv.reader(io.StringIO(text)))
    assert records and records[-1] == [f"{TRAILER_PREFIX}{len(records) - 2} rows"], f"no trailer: {records[-1:]}"
    header, rows = records[0], records[1:-1]
    return [dict(zip(header, row)) for row in rows]
