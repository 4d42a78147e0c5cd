"""A logging filter, installed on every handler, that keeps PANs, OTPs and secrets out of logs.

Three nets, because no single one is enough:
1. any run of 13–19 digits (spaces or dashes allowed between them) that passes Luhn;
2. values of sensitive keys (`pan`, `acctNumber`, `otp`, `password`, `Bearer …`) in
   key=value, JSON and repr forms;
3. values the code has declared sensitive for the current context with `sensitive(...)`,
   e.g. the PAN of the AReq being processed or the OTP being sent, whatever their shape.
"""

import contextlib
import contextvars
import logging
import re

from apps.core.pan import luhn_valid

_sensitive_values: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "sensitive_values", default=frozenset()
)

REDACTED = "[REDACTED]"

# Not after "<digit>.": the fraction of a decimal number (a duration, an amount) is no PAN.
_DIGIT_RUN = re.compile(r"(?<![0-9])(?<![0-9]\.)[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
_ALWAYS_KEYS = r"pan|acct_?number|card_?number|password|passwd|secret|api_?key|webhook_secret|auth_?token|device_token|enrollment_token|authentication_?value|cryptogram"
_KEY_VALUE = re.compile(
    r"""(?P<key>\b(?:%s)\b["']?\s*[:=]\s*)(?P<q>["']?)(?P<value>[^"',\s}\]&]+)""" % _ALWAYS_KEYS,
    re.IGNORECASE,
)
# OTP keys: only numeric values, so "status code=500" style lines stay readable.
_OTP_VALUE = re.compile(
    r"""(?P<key>\b(?:otp|code|otp_code|challenge_?data_?entry)\b["']?\s*[:=]\s*)(?P<q>["']?)(?P<value>[0-9]{4,10})\b""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Device|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


@contextlib.contextmanager
def sensitive(*values: str | None):
    """Declare values that must never be logged while this block runs."""
    extra = {v for v in values if v and len(v) >= 4}
    token = _sensitive_values.set(_sensitive_values.get() | extra)
    try:
        yield
    finally:
        _sensitive_values.reset(token)


def _mask_digit_run(match: re.Match) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if luhn_valid(digits):
        return f"[PAN …{digits[-4:]}]"
    return match.group(0)


def scrub(text: str) -> str:
    if not text:
        return text
    for value in sorted(_sensitive_values.get(), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('q')}{REDACTED}", text)
    text = _OTP_VALUE.sub(lambda m: f"{m.group('key')}{m.group('q')}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _DIGIT_RUN.sub(_mask_digit_run, text)


class ScrubbingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
            # The formatter would re-render the traceback from exc_info, unscrubbed.
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
            record.exc_text = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
