"""Each filter of the transaction list, alone, and how bad filter values are answered."""

from datetime import datetime, timedelta, timezone

import pytest

from apps.threeds.models import Challenge
from tests.analyst.conftest import make_tx

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def listed(client, **query) -> list:
    response = client.get("/analyst/", query)
    assert response.status_code == 200
    assert not response.context["form"].errors, response.context["form"].errors
    return [row["tx"].acs_trans_id for row in response.context["rows"]]


@pytest.fixture
def txs(issuer):
    return {
        "old_y": make_tx(issuer, created_at=DAY - timedelta(days=3), merchant_name="Alpine Books"),
        "n_sms": make_tx(issuer, created_at=DAY, trans_status="N", trans_status_reason="19", pan_last4="4242",
                         merchant_name="Tokyo Market", challenge={"method": Challenge.SMS_OTP, "state": Challenge.FAILED}),
        "y_oob": make_tx(issuer, created_at=DAY + timedelta(hours=1), merchant_name="Kyoto Coffee",
                         challenge={"method": Challenge.OOB}),
        "fell_back": make_tx(issuer, created_at=DAY + timedelta(hours=2), merchant_name="Osaka Games",
                             challenge={"method": Challenge.SMS_OTP, "fallback_reason": "oob_timeout"}),
        "running": make_tx(issuer, created_at=DAY + timedelta(hours=3), trans_status="", eci="",
                           challenge={"method": Challenge.SMS_OTP, "state": Challenge.IN_PROGRESS}),
        "eur": make_tx(issuer, created_at=DAY + timedelta(days=1), purchase_amount=12550, purchase_currency="978",
                       purchase_exponent=2, merchant_name="Paris Fashion"),
        "u": make_tx(issuer, created_at=DAY + timedelta(days=2), trans_status="U", ares_trans_status="U", eci="07"),
    }


def ids(txs, *names):
    return {txs[n].acs_trans_id for n in names}


def test_no_filter_lists_all_newest_first(analyst_client, txs):
    assert listed(analyst_client) == [t.acs_trans_id for t in sorted(txs.values(), key=lambda t: t.created_at, reverse=True)]


def test_date_range_is_inclusive_of_whole_utc_days(analyst_client, txs):
    got = set(listed(analyst_client, created_from="2026-03-10", created_to="2026-03-10"))
    assert got == ids(txs, "n_sms", "y_oob", "fell_back", "running")
    assert set(listed(analyst_client, created_from="2026-03-11")) == ids(txs, "eur", "u")
    assert set(listed(analyst_client, created_to="2026-03-07")) == ids(txs, "old_y")


@pytest.mark.parametrize("status, expected", [
    ("Y", {"old_y", "y_oob", "fell_back", "eur"}), ("N", {"n_sms"}), ("U", {"u"}), ("C", {"running"}), ("A", set()),
])
def test_trans_status(analyst_client, txs, status, expected):
    assert set(listed(analyst_client, trans_status=status)) == ids(txs, *expected)


@pytest.mark.parametrize("method, expected", [
    ("oob", {"y_oob"}), ("sms_otp", {"n_sms", "fell_back", "running"}), ("frictionless", {"old_y", "eur", "u"}),
])
def test_method(analyst_client, txs, method, expected):
    assert set(listed(analyst_client, method=method)) == ids(txs, *expected)


def test_fell_back_yes_no_and_reason(analyst_client, txs, issuer):
    other = make_tx(issuer, created_at=DAY, challenge={"method": Challenge.SMS_OTP, "fallback_reason": "cancelled_in_app"})
    assert set(listed(analyst_client, fell_back="yes")) == ids(txs, "fell_back") | {other.acs_trans_id}
    assert set(listed(analyst_client, fallback_reason="oob_timeout")) == ids(txs, "fell_back")
    assert set(listed(analyst_client, fell_back="yes", fallback_reason="cancelled_in_app")) == {other.acs_trans_id}
    assert set(listed(analyst_client, fell_back="no")) == ids(txs, "old_y", "n_sms", "y_oob", "running", "eur", "u")


def test_merchant_prefix_and_contains_ignore_case(analyst_client, txs):
    assert set(listed(analyst_client, merchant="tokyo")) == ids(txs, "n_sms", "running", "u")  # "Tokyo Books" by default
    assert set(listed(analyst_client, merchant="tokyo m")) == ids(txs, "n_sms")
    assert set(listed(analyst_client, merchant="market")) == set()
    assert set(listed(analyst_client, merchant="MARKET", merchant_match="contains")) == ids(txs, "n_sms")
    assert set(listed(analyst_client, merchant="o", merchant_match="contains")) == ids(
        txs, "old_y", "n_sms", "y_oob", "fell_back", "running", "eur", "u")


def test_merchant_search_takes_wildcards_literally(analyst_client, issuer):
    percent = make_tx(issuer, merchant_name="100% Cotton")
    make_tx(issuer, merchant_name="1000 Cotton")
    assert set(listed(analyst_client, merchant="100%")) == {percent.acs_trans_id}
    assert set(listed(analyst_client, merchant="_", merchant_match="contains")) == set()


def test_card_last4(analyst_client, txs):
    assert set(listed(analyst_client, last4="4242")) == ids(txs, "n_sms")


def test_amount_in_major_units_honours_the_exponent(analyst_client, txs):
    # 125.50 EUR is 12550 minor units (exponent 2); 1,500 JPY is 1500 (exponent 0).
    assert set(listed(analyst_client, currency="978", amount_min="125.5", amount_max="125.50")) == ids(txs, "eur")
    assert set(listed(analyst_client, currency="978", amount_min="125.51")) == set()
    assert set(listed(analyst_client, currency="392", amount_min="1500", amount_max="1500")) == ids(
        txs, "old_y", "n_sms", "y_oob", "fell_back", "running", "u")


def test_amount_in_minor_units(analyst_client, txs):
    assert set(listed(analyst_client, currency="978", amount_min="12550", amount_unit="minor")) == ids(txs, "eur")


def test_acs_and_ds_trans_id_exact(analyst_client, txs):
    target = txs["y_oob"]
    assert listed(analyst_client, acs_trans_id=str(target.acs_trans_id)) == [target.acs_trans_id]
    assert listed(analyst_client, ds_trans_id=str(target.ds_trans_id)) == [target.acs_trans_id]


def test_filters_combine(analyst_client, txs):
    assert set(listed(analyst_client, method="sms_otp", trans_status="Y", created_from="2026-03-10")) == ids(txs, "fell_back")


@pytest.mark.parametrize("query, field", [
    ({"amount_min": "10"}, "currency"),
    ({"currency": "392", "amount_min": "10.5"}, "amount_min"),
    ({"currency": "978", "amount_min": "20", "amount_max": "10"}, "amount_max"),
    ({"acs_trans_id": "not-a-uuid"}, "acs_trans_id"),
    ({"last4": "12a4"}, "last4"),
    ({"created_from": "2026-03-10", "created_to": "2026-03-09"}, "created_to"),
    ({"trans_status": "Z"}, "trans_status"),
    ({"fell_back": "no", "fallback_reason": "oob_timeout"}, "fallback_reason"),
])
def test_bad_filters_are_explained_not_guessed(analyst_client, txs, query, field):
    response = analyst_client.get("/analyst/", query)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert response.context["rows"] == []
    assert "Fix the filters" in response.content.decode()
