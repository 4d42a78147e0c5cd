"""Helpers of the fault tests: workers of our own on their own broker (prefix or Redis), that a
test may kill, and the web process's broker pointed elsewhere."""

import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

import redis
from django.conf import settings

from tests.conftest import PROJECT_ROOT, _database_url_for_worker


def broker_prefix() -> str:
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")


def start_worker(name: str, prefix: str, log_path, *, queues: str = "sms,timeouts", sweep: bool = False,
                 broker_url: str | None = None, **env) -> subprocess.Popen:
    """A worker on its own broker key prefix (tests/sms/isolated_worker.py). `sweep`: with an
    embedded beat, which runs the delivery sweep (and the rest of the schedule) every few seconds."""
    args = [sys.executable, "-m", "tests.sms.isolated_worker", "-n", f"{name}@localhost", "-Q", queues, "-c", "1",
            "--pool", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    if sweep:
        args += ["-B", "--scheduler", "celery.beat:PersistentScheduler", "-s", str(log_path) + ".beat"]
    worker_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test", "PYTHONUNBUFFERED": "1",
                  "DATABASE_URL": _database_url_for_worker(), "SMS_TEST_BROKER_PREFIX": prefix,
                  "DELIVERY_SWEEP_SECONDS": "2", **env}
    if broker_url:
        worker_env["CELERY_BROKER_URL"] = broker_url
    return subprocess.Popen(args, cwd=PROJECT_ROOT, env=worker_env, stdout=open(log_path, "wb"),
                            stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: SIGKILL reaches the pool too


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def delete_prefix(prefix: str, url: str | None = None) -> None:
    client = redis.Redis.from_url(url or settings.CELERY_BROKER_URL)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


@contextmanager
def web_broker(url: str, prefix: str | None = None):
    """This (the web) process publishes to `url` meanwhile. `broker_write_url` is what a publish
    uses (CELERY_BROKER_URL in the environment would override `broker_url`); app.close() drops
    the connection pool built for the old address."""
    from issuer_portal.celery import app

    app.loader.import_default_modules()  # every task registered before the app is closed
    before = (app.conf.broker_write_url, app.conf.broker_transport_options)
    app.conf.broker_write_url = url
    if prefix is not None:
        app.conf.broker_transport_options = {**before[1], "global_keyprefix": prefix}
    _drop_connections(app)
    try:
        yield app
    finally:
        app.conf.broker_write_url, app.conf.broker_transport_options = before
        _drop_connections(app)


def _drop_connections(app) -> None:
    # The connection pool and the producer pool (cached on app.amqp) both hold the old address.
    app.close()
    del app.amqp  # a cached property: built again, with new pools, on next use


@contextmanager
def silent_broker():
    """A TCP server that accepts connections and never answers: a hung broker. Yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return  # closed

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        server.close()
        for connection in accepted:
            connection.close()
