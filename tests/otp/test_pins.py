"""OTP rules a deliberate bug once slipped past (issue 11 item 8): codes come from a CSPRNG and are
compared in constant time; the per-card daily send limit (SPEC §3.5: 10 / day) refuses the next send."""

import ast
import inspect
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.otp import services
from apps.otp.models import OtpCode, OtpRefusal, OtpSession
from apps.otp.services import OtpRefused, otp_session_start, otp_verify
from tests.otp.conftest import DETAILS

pytestmark = pytest.mark.django_db


@pytest.fixture
def start(card, phone, policy, sms_file, django_capture_on_commit_callbacks):
    def go(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return otp_session_start(card=kwargs.pop("card", card), phone=kwargs.pop("phone", phone), locale="en",
                                     transaction_details=DETAILS, **kwargs)

    return go


# ---------------------------------------------------------------- CSPRNG and constant-time comparison


def _calls(node) -> set[str]:
    """Dotted names of every call in a function's source: {"secrets.choice", "hmac.compare_digest", ...}."""
    names = set()
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        parts, f = [], call.func
        while isinstance(f, ast.Attribute):
            parts.append(f.attr)
            f = f.value
        if isinstance(f, ast.Name):
            parts.append(f.id)
        names.add(".".join(reversed(parts)))
    return names


def _function(fn) -> ast.AST:
    return ast.parse(inspect.getsource(fn).lstrip())


def test_codes_are_drawn_with_secrets_never_random():
    module = ast.parse(inspect.getsource(services))
    imported = {alias.name for n in ast.walk(module) if isinstance(n, (ast.Import, ast.ImportFrom)) for alias in n.names}
    imported |= {n.module for n in ast.walk(module) if isinstance(n, ast.ImportFrom) and n.module}
    assert "random" not in imported and "secrets" in imported
    calls = _calls(_function(services._new_code))
    assert any(name.startswith("secrets.") for name in calls), calls
    assert not any(name.startswith("random.") for name in calls)


def test_the_code_check_is_constant_time():
    tree = _function(services._verify_locked)
    assert "hmac.compare_digest" in _calls(tree)
    # No ==/!= on anything that is a code or its hash.
    for compare in (n for n in ast.walk(tree) if isinstance(n, ast.Compare)):
        if any(isinstance(op, (ast.Eq, ast.NotEq)) for op in compare.ops):
            text = ast.unparse(compare)
            assert "code" not in text.replace("codes", "") and "hash" not in text, text


def test_a_seeded_random_module_does_not_make_codes_reproducible(start, sms_file, set_policy, cardholder):
    from tests.factories import make_card

    set_policy(code_length=8)
    codes = []
    for _ in range(3):
        random.seed(1234)
        start(card=make_card(cardholder=cardholder))
        codes.append(sms_file.last_code(8))
    assert len(set(codes)) == 3, "codes repeat after random.seed(): they do not come from a CSPRNG"


def test_the_right_code_verifies_and_a_near_miss_does_not(start, sms_file):
    session = start()
    code = sms_file.last_code()
    near = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert otp_verify(session_id=session.pk, code=near).outcome == "wrong"
    assert otp_verify(session_id=session.pk, code=code).outcome == "verified"


# ---------------------------------------------------------------- per-card daily limit


def test_the_sends_past_the_card_daily_limit_are_refused(start, set_policy, sms_file):
    # The hourly limit out of the way, and every earlier send two hours old: only the daily
    # window can refuse (a daily check that looked at one hour would let the 4th through).
    set_policy(max_sends_per_card_hour=100, max_sends_per_card_day=3)
    for _ in range(3):
        start()
        OtpCode.objects.update(created_at=timezone.now() - timedelta(hours=2))
    with pytest.raises(OtpRefused) as exc:
        start()
    assert exc.value.code == "card_daily_limit"
    assert len(sms_file.messages()) == 3
    assert OtpRefusal.objects.get().reason == "card_daily_limit"
    assert OtpSession.objects.filter(state=OtpSession.CANCELLED).count() == 1


def test_the_default_card_daily_limit_is_ten(start, set_policy, sms_file, policy):
    assert policy.max_sends_per_card_day == 10  # SPEC §3.5
    set_policy(max_sends_per_card_hour=100, max_sends_per_phone_day=100)
    for _ in range(10):
        start()
        OtpCode.objects.update(created_at=timezone.now() - timedelta(hours=2))
    with pytest.raises(OtpRefused) as exc:
        start()
    assert exc.value.code == "card_daily_limit"
    assert len(sms_file.messages()) == 10


def test_sends_older_than_a_day_do_not_count(start, set_policy, sms_file):
    set_policy(max_sends_per_card_hour=100, max_sends_per_card_day=3)
    for _ in range(3):
        start()
    OtpCode.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    start()
    assert len(sms_file.messages()) == 4
