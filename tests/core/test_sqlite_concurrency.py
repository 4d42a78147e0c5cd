"""The embedded default (SQLite, no DATABASE_URL) under light concurrency: parallel AReqs and
challenge starts on a file database get answers, never a 500 ("database is locked" when a read
transaction upgrades to a write). Runs in a subprocess: the test database is in memory, and this
needs the real file, WAL and several connections."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("sqlite_probe.py")


@pytest.fixture
def sqlite_file_env(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", SMS_BACKEND="console", LOG_LEVEL="CRITICAL")
    return env


def test_fourteen_parallel_challenge_starts_on_sqlite_never_fail(sqlite_file_env):
    done = subprocess.run(
        [sys.executable, str(PROBE), "14"], env=sqlite_file_env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["areq"] == [200] * 14
    assert result["challenge"] == [200] * 14
    assert result["journal_mode"] == "wal"
