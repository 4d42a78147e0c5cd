"""Fixtures shared by test modules of several areas. A module uses one by importing it
(`from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)`); the autouse
ones (`role_groups`, `postgres_only`) then apply to every test of that module only."""

import os
import re
from pathlib import Path

import pytest
from django.db import connection

from apps.threeds.simulator.phone import SmsFile

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")


@pytest.fixture(autouse=True)
def role_groups(db):
    """The staff role groups (analyst, issuer admin, operator…) with their permissions."""
    from apps.accounts.roles import sync_role_groups

    sync_role_groups()


@pytest.fixture(autouse=True)
def postgres_only():
    """Concurrency needs a database that serves concurrent connections."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL")


@pytest.fixture
def in_process_tasks():
    """Run tasks inline in this process even when a broker is configured (CI), so a test can
    read what they did with its own settings."""
    from issuer_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


class SmsInbox(SmsFile):
    """The `file` SMS backend's lines, as the simulator reads them, plus the last code sent."""

    def last_code(self, length: int = 6) -> str:
        body = self.messages()[-1]["body"]
        return re.search(r"\b\d{%d}\b" % length, body).group(0)


@pytest.fixture
def sms_file(settings, tmp_path, in_process_tasks):
    """Every SMS the service sends lands in this JSON-lines file (the `file` provider)."""
    settings.SMS_BACKEND = "file"
    settings.SMS_FALLBACK_BACKEND = ""
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    return SmsInbox(tmp_path / "sms.jsonl")


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium (Playwright) for the module's browser tests."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop registered on this thread between calls, which
    # Django's async-safety check takes for async code; this thread's ORM use (fixtures, flush)
    # never overlaps a browser call.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
