"""Transactions made by the real 3-D Secure flow over HTTP (tasks in this process), for the tests
that look for what must never show (PAN, OTP, authentication value) and for the timeline."""

import re
from dataclasses import dataclass, field

from apps.otp.services import otp_policy_create_default, otp_policy_save
from apps.threeds.models import Transaction
from apps.threeds.simulator.messages import wrong_code as wrong

CODE_LENGTH = 8  # 8-digit codes: a 6-digit run (e.g. the microseconds of a time) can never be one


def eight_digit_codes(issuer, *, delivery_mode: str = "provider") -> None:
    version = otp_policy_create_default(issuer=issuer, delivery_mode=delivery_mode)
    policy = version.policy
    policy.code_length = CODE_LENGTH
    otp_policy_save(policy=policy, actor="tests")


def code_in(text: str) -> str:
    return re.search(r"(?<!\d)\d{%d}(?!\d)" % CODE_LENGTH, text).group(0)


@dataclass
class Secrets:
    """What a finished transaction must never show anyone."""

    pan: str
    codes: list[str] = field(default_factory=list)
    authentication_value: str = ""

    def found_in(self, text: str) -> list[str]:
        spaced = " ".join(self.pan[i:i + 4] for i in range(0, len(self.pan), 4))
        found = [s for s in (self.pan, spaced) if s in text]
        found += [c for c in self.codes if re.search(r"(?<!\d)%s(?!\d)" % c, text)]
        if self.authentication_value and self.authentication_value in text:
            found.append("authentication value")
        return found


def finished(acs_trans_id) -> Transaction:
    return Transaction.objects.get(pk=acs_trans_id)
