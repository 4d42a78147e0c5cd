"""The per-number daily limit holds when several cardholders share one number and their first
codes are sent at the same moment (issue 11 item 3): the lock is on what is counted, the number."""

import pytest
from django.db import connection

from apps.cards.models import Phone
from apps.otp.models import OtpCode, OtpNumberLock
from apps.otp.services import OtpRefused, otp_session_start
from tests.concurrency import run_parallel
from tests.factories import CardholderFactory, make_card
from tests.otp.conftest import DETAILS

SHARED = "+819011112222"


def _cardholders_sharing_one_number(issuer, n):
    pairs = []
    for _ in range(n):
        holder = CardholderFactory(issuer=issuer)
        phone = Phone.objects.create(cardholder=holder, number=SHARED, is_primary=True, verified=True)
        pairs.append((make_card(cardholder=holder), phone))
    return pairs


@pytest.mark.django_db(transaction=True)
def test_parallel_first_sends_from_different_cardholders_never_overrun_the_number_limit(issuer, set_policy, sms_file):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (SQLite serialises writes anyway)")
    set_policy(max_sends_per_phone_day=4)
    pairs = _cardholders_sharing_one_number(issuer, 12)

    def start(i):
        card, phone = pairs[i]
        try:
            otp_session_start(card=card, phone=phone, locale="en", transaction_details=DETAILS)
            return "sent"
        except OtpRefused as exc:
            return exc.code

    results = run_parallel(len(pairs), start)
    assert results.count("sent") == 4, results
    assert results.count("phone_daily_limit") == 8
    assert OtpCode.objects.filter(phone_e164=SHARED).count() == 4
    assert len(sms_file.messages()) == 4


@pytest.mark.django_db
def test_the_lock_row_never_holds_the_number(issuer, set_policy, sms_file):
    set_policy(max_sends_per_phone_day=2)
    pairs = _cardholders_sharing_one_number(issuer, 3)
    for card, phone in pairs[:2]:
        otp_session_start(card=card, phone=phone, locale="en", transaction_details=DETAILS)
    with pytest.raises(OtpRefused) as exc:
        otp_session_start(card=pairs[2][0], phone=pairs[2][1], locale="en", transaction_details=DETAILS)
    assert exc.value.code == "phone_daily_limit"
    (key,) = OtpNumberLock.objects.values_list("key", flat=True)
    assert len(key) == 64 and "8190" not in key and "11112222" not in key
