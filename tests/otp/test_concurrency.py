"""Attempts and single use hold under concurrency (PostgreSQL, real parallel connections)."""

import pytest

from apps.otp.models import OtpSession
from apps.otp.services import otp_session_start, otp_verify
from tests.concurrency import run_parallel
from tests.otp.conftest import DETAILS
from tests.support.fixtures import postgres_only  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session_and_code(card, phone, policy, sms_file):
    # transaction=True: on_commit callbacks run for real, so the SMS is written at commit.
    session = otp_session_start(card=card, phone=phone, locale="en", transaction_details=DETAILS)
    return session, sms_file.last_code()


def test_fifty_parallel_wrong_guesses_consume_exactly_the_allowed_attempts(session_and_code):
    session, code = session_and_code
    wrong = "000000" if code != "000000" else "111111"
    results = run_parallel(50, lambda i: otp_verify(session_id=session.pk, code=wrong).outcome)
    assert results.count("wrong") == 2
    assert results.count("locked") == 1
    assert results.count("closed") == 47
    session.refresh_from_db()
    assert session.attempts_used == 3 and session.state == OtpSession.LOCKED
    assert otp_verify(session_id=session.pk, code=code).outcome == "closed"


def test_two_parallel_correct_submissions_succeed_once(session_and_code):
    session, code = session_and_code
    results = run_parallel(2, lambda i: otp_verify(session_id=session.pk, code=code).outcome)
    assert sorted(results) == ["closed", "verified"]


def test_parallel_right_and_wrong_guesses_never_exceed_the_maximum(session_and_code):
    session, code = session_and_code
    wrong = "000000" if code != "000000" else "111111"
    results = run_parallel(20, lambda i: otp_verify(session_id=session.pk, code=code if i == 7 else wrong).outcome)
    session.refresh_from_db()
    assert session.attempts_used <= 3
    assert results.count("verified") <= 1
    if results.count("verified") == 0:
        assert session.state == OtpSession.LOCKED


def test_parallel_sessions_cannot_overrun_the_card_limit(card, phone, policy, sms_file):
    from apps.otp.services import OtpRefused

    def start(i):
        try:
            otp_session_start(card=card, phone=phone, locale="en", transaction_details=DETAILS)
            return "sent"
        except OtpRefused as exc:
            return exc.code

    results = run_parallel(12, start)
    assert results.count("sent") == 5
    assert len(sms_file.messages()) == 5
