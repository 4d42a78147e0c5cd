from tests.sms.conftest import fake_twilio  # noqa: F401  (the session's fake Twilio, emptied)
