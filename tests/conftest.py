import pytest
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from tests.factories import TEST_BIN_RANGES, CardholderFactory, IssuerFactory, grant, make_api_key


# No timed assertions in tests: hypothesis's per-example deadline is one, and it fails on a busy
# machine (two test processes, their workers and browsers on two cores) rather than on a bug.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")


class JsonClient(APIClient):
    """Sends JSON (TEST_REQUEST_DEFAULT_FORMAT); a str body with content_type is sent raw."""


def clear_throttles() -> None:
    """Empties this run's cache: the throttles' counters (nothing else lives there). On Redis,
    only this run's keys (its KEY_PREFIX), never the whole database."""
    from django.conf import settings
    from django.core.cache import cache

    config = settings.CACHES["default"]
    if config["BACKEND"].endswith("RedisCache"):
        import redis

        client = redis.Redis.from_url(config["LOCATION"])
        try:
            keys = list(client.scan_iter(match=f"{config['KEY_PREFIX']}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Every test starts with no failed credentials counted: the suite sends many wrong keys.
    Emptied after it too, so a run leaves no keys behind in a shared Redis."""
    clear_throttles()
    yield
    clear_throttles()


@pytest.fixture(autouse=True)
def acs_signing_keys(request):
    """Every test with a database has the ACS's test signing credentials installed for every
    network (SPEC §3.3.3), as a deployed ACS has: without them an app challenge ends U / 22. A
    test of that case deletes them."""
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames)
    if not uses_db:
        return
    request.getfixturevalue("_django_db_helper")
    from tests.support.signing import signing_keys_install

    signing_keys_install()


@pytest.fixture
def issuer(db):
    """Holds the BIN grants of the well-known test card numbers (TEST_BIN_RANGES); other
    issuers get grants only as their tests make cards (tests.factories.ensure_grant)."""
    issuer = IssuerFactory()
    for start, end in TEST_BIN_RANGES:
        grant(issuer, start, end)
    return issuer


@pytest.fixture
def other_issuer(db):
    return IssuerFactory()


@pytest.fixture
def api_key(issuer):
    return make_api_key(issuer)


@pytest.fixture
def api(api_key):
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def other_api(other_issuer):
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(other_issuer)}")
    return client


@pytest.fixture
def anon_api():
    return JsonClient()


@pytest.fixture
def cardholder(issuer):
    return CardholderFactory(issuer=issuer)


# ---------------------------------------------------------------- real services

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from django.conf import settings  # noqa: E402

REQUIRE_REAL_SERVICES = os.environ.get("REQUIRE_REAL_SERVICES") == "1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session):
    """In CI the suite must not quietly fall back to SQLite or in-process tasks."""
    if not REQUIRE_REAL_SERVICES:
        return
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(f"REQUIRE_REAL_SERVICES=1 but the database engine is {engine}")
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or settings.CELERY_TASK_ALWAYS_EAGER:
        raise pytest.UsageError("REQUIRE_REAL_SERVICES=1 but no broker is configured (tasks would run in-process)")


def _database_url_for_worker() -> str:
    from django.db import connection

    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture(scope="session")
def twilio_server():
    """A fake Twilio Messages API in this process (tests/fakes/twilio_server.py). The worker's
    SMS settings point at it; tests program it and count what it received."""
    from tests.fakes.twilio_server import FakeTwilio

    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fcm_server(tmp_path_factory):
    """A fake FCM HTTP v1 API and OAuth2 token endpoint in this process
    (tests/fakes/fcm_server.py), with its own test service account. The worker pushes to it."""
    from tests.fakes.fcm_server import FakeFcm

    server = FakeFcm(tmp_path_factory.mktemp("fcm")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, twilio_server, fcm_server):
    """A real Celery worker process, on the real broker, against the test database.

    Its SMS go through the real twilio client to `twilio_server` (a primary and a fallback
    account, short backoff, 3 tries, 1 s timeout); `twilio_server.django_settings()` gives the
    same values for this process. Its pushes go to `fcm_server` (PUSH_BACKEND=fcm, 3 tries).

    Tests that use it must commit their data (`@pytest.mark.django_db(transaction=True)`)."""
    if not settings.CELERY_BROKER_URL or "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        message = "needs CELERY_BROKER_URL and a PostgreSQL DATABASE_URL"
        if REQUIRE_REAL_SERVICES:
            pytest.fail(message)
        pytest.skip(message)

    from issuer_portal.celery import app

    with django_db_blocker.unblock():
        database_url = _database_url_for_worker()
    app.control.purge()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test",
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        **twilio_server.env(),
        **fcm_server.env(),
    }
    node = f"tests-{os.getpid()}@localhost"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "issuer_portal", "worker", "-n", node,
         "-Q", "default,sms,webhooks,rreq,timeouts,push", "-c", "2", "--pool", "prefork",
         "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Celery worker exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if app.control.ping(destination=[node], timeout=1.0):
            break
    else:
        process.kill()
        pytest.fail(f"Celery worker did not answer a ping:\n{log_path.read_text()[-3000:]}")

    process.log_path = log_path
    process.node_name = node
    yield process

    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll until predicate() is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
