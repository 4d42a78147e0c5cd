"""The README's run command works on its embedded default, as far as a test can drive it."""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import PROJECT_ROOT


def test_the_readme_gives_the_two_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert re.search(r"^make run\b", readme, re.M)
    assert re.search(r"^make test\b", readme, re.M)
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_make_run_serves_the_demo_on_the_embedded_default(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "REQUIRE_REAL_SERVICES")}
    # Its own SQLite file, so the developer's db.sqlite3 is left alone.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'run.sqlite3'}"
    log = open(tmp_path / "run.log", "w+")
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("make run did not serve /healthz:\n" + (tmp_path / "run.log").read_text()[-3000:])
        assert _get(f"http://127.0.0.1:{port}/admin/login/")[0] == 200
        assert _get(f"http://127.0.0.1:{port}/api/docs/")[0] == 200
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/admin/" in output
        assert "admin" in output.lower() and "password" in output.lower()
        assert "4111111111111111" not in output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()
