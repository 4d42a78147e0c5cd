import uuid

import pytest
from django.utils import timezone

from apps.threeds.models import RiskPolicy, Transaction


def make_tx(issuer, *, days_ago: float = 1, **fields) -> Transaction:
    """A transaction as the AReq flow leaves it after a risk decision, `days_ago` in the past."""
    values = {
        "three_ds_server_trans_id": uuid.uuid4(), "ds_trans_id": uuid.uuid4(), "message_version": "2.2.0",
        "device_channel": "02", "message_category": "01", "pan_last4": "1234", "pan_fingerprint": "f" * 64,
        "merchant_name": "Tokyo Books", "acquirer_merchant_id": "M-1", "purchase_amount": 1500, "purchase_currency": "392",
        "purchase_exponent": 0, "ares_trans_status": "Y", "trans_status": "Y", "risk_score": 10,
        "risk_rules": [{"rule": "base", "weight": 10}],
        "risk_facts": {"recent_count": 0, "merchant_known": True, "browser_mismatches": []},
    }
    values.update(fields)
    tx = Transaction.objects.create(issuer=issuer, **values)
    created_at = timezone.now() - timezone.timedelta(days=days_ago)
    Transaction.objects.filter(pk=tx.pk).update(created_at=created_at)
    tx.created_at = created_at
    return tx


@pytest.fixture
def risk_policy(issuer):
    """The defaults (base 10, threshold 50, amount weight 60, new merchant 30, velocity 4 → +30,
    10 → decline) with a JPY threshold of ¥30,000."""
    return RiskPolicy.objects.create(issuer=issuer, amount_thresholds={"392": "30000"})
