"""Test settings: explicit test-only keys, DEBUG off, everything else from the environment."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-1234567890abcdef")
os.environ.setdefault(
    "DATA_ENCRYPTION_KEYS",
    # Two keys: the first encrypts, the second only decrypts (exercises rotation).
    "t2:dGVzdC1rZXktdHdvLXRlc3Qta2V5LXR3by0zMmJ5dGU=,t1:dGVzdC1rZXktb25lLXRlc3Qta2V5LW9uZS0zMmJ5dGU=",
)
os.environ.setdefault("PAN_FINGERPRINT_KEY", "test-pan-fingerprint-key")
os.environ.setdefault("AUTHENTICATION_VALUE_KEYS", "tav1:dGVzdC1hdXRoZW50aWNhdGlvbi12YWx1ZS1rZXktMzI=")
os.environ.setdefault("DEBUG", "0")
# The tests' DS and webhook receivers are local servers; the outbound guard's own tests turn
# OUTBOUND_ALLOW_PRIVATE off.
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE", "1")
os.environ.setdefault("DS_URL_ALLOWLIST", "https://ds.example/,http://127.0.0.1:*/")

from .settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins only
REST_FRAMEWORK = {**REST_FRAMEWORK, "TEST_REQUEST_DEFAULT_FORMAT": "json"}  # noqa: F405

# Several test runs may share this machine's PostgreSQL and Redis (developers, helpers, CI): each
# run gets its own test database and its own broker key prefix. The worker subprocess inherits
# these variables, so it lands on the same database and queues as the run that started it.
# Under pytest-xdist (`make test` runs two processes) every process is a run of its own: its
# database, its broker prefix, its Celery worker, its throttle keys.
_RUN = os.environ.setdefault("TEST_RUN_ID", str(os.getpid())) + os.environ.get("PYTEST_XDIST_WORKER", "")
DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_{DATABASES['default']['NAME']}_{_RUN}"  # noqa: F405
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = None  # in memory
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": f"test{_RUN}:"}  # noqa: F405
# The throttles' cache: this run's own key prefix (CACHE_URL may name a Redis that other runs and
# the broker share); tests/conftest.py empties it before every test.
CACHES["default"]["KEY_PREFIX"] = f"test{_RUN}"  # noqa: F405
# The contract tests send thousands of requests with one key; the rate tests set their own.
API_KEY_RATE = DEVICE_RATE = "100000/min"
