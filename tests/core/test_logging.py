"""No PAN, OTP or secret ever reaches a log line, whatever shape the caller logs it in."""

import io
import logging
import logging.config

import pytest
from django.conf import settings

from apps.core.logging import ScrubbingFilter, scrub, sensitive

PAN = "4111111111111111"


@pytest.fixture
def log_output():
    """A logger wired exactly like production: the handler from settings.LOGGING with its filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("tests.scrub")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "message, args",
    [
        ("card %s", (PAN,)),
        ("card %(pan)s", ({"pan": PAN},)),
        ("payload %s", ({"acctNumber": PAN, "otp": "482913"},)),
        (f"inline {PAN} here", ()),
        ("spaced 4111 1111 1111 1111", ()),
        ("dashed 4111-1111-1111-1111", ()),
        ('json {"acctNumber": "%s"}', (PAN,)),
        ("kv pan=%s", (PAN,)),
        ("kv otp=%s", ("482913",)),
        ('json {"otp": "%s"}', ("48291377",)),
        ("auth Bearer %s", ("ik_abcdef123456_" + "x" * 40,)),
        ("repr %r", ({"password": "hunter2hunter2"},)),
    ],
)
def test_sensitive_values_are_scrubbed(log_output, message, args):
    logger, stream = log_output
    logger.info(message, *args)
    out = stream.getvalue()
    for secret in (PAN, "4111 1111 1111 1111", "4111-1111-1111-1111", "482913", "48291377", "x" * 40, "hunter2hunter2"):
        assert secret not in out


def test_the_last_four_survive_for_support(log_output):
    logger, stream = log_output
    logger.info("card %s", PAN)
    assert "…1111" in stream.getvalue()


def test_an_exception_message_and_traceback_are_scrubbed(log_output):
    logger, stream = log_output
    try:
        raise ValueError(f"bad card {PAN}")
    except ValueError:
        logger.exception("failed")
    out = stream.getvalue()
    assert "ValueError" in out and "Traceback" in out
    assert PAN not in out


def test_values_declared_sensitive_are_scrubbed_whatever_their_shape(log_output):
    logger, stream = log_output
    with sensitive("739104", "1234567890123"):  # an OTP, and a PAN-like value failing Luhn
        logger.info("sending 739104 to customer; number 1234567890123")
    logger.info("after the block 739104 is just a number")
    lines = stream.getvalue().splitlines()
    assert "739104" not in lines[0] and "1234567890123" not in lines[0]
    assert "739104" in lines[1]


def test_ordinary_numbers_stay_readable():
    assert scrub("status code=500 after 1234 ms, purchaseAmount=10000") == "status code=500 after 1234 ms, purchaseAmount=10000"


def test_every_configured_handler_carries_the_filter():
    handlers = settings.LOGGING["handlers"]
    assert handlers
    for name, handler in handlers.items():
        assert "scrub" in handler.get("filters", []), name
    assert settings.LOGGING["filters"]["scrub"]["()"] == "apps.core.logging.ScrubbingFilter"


@pytest.mark.django_db
def test_a_rejected_card_enrollment_logs_no_pan(api, cardholder, capfd):
    # The real handler from settings writes to stderr: capture what actually leaves the process.
    logging.config.dictConfig(settings.LOGGING)
    api.post("/api/v1/cards", {"card_id": "c", "cardholder": str(cardholder.pk), "pan": PAN, "expiry_month": 1, "expiry_year": 2001})
    api.post("/api/v1/cards", {"card_id": "c", "cardholder": str(cardholder.pk), "pan": PAN, "expiry_month": 1, "expiry_year": 2099, "x": 1})
    logging.getLogger("django.request").warning("echo %s", {"pan": PAN})
    out, err = capfd.readouterr()
    assert "Bad Request" in err
    assert PAN not in out + err


def test_decimal_fractions_are_not_taken_for_pans():
    # 0013224999881239 passes Luhn, but here it is the fraction of a duration.
    assert scrub("succeeded in 0.0013224999881239s") == "succeeded in 0.0013224999881239s"
    assert "4111111111111111" not in scrub("card.4111111111111111")
