"""The README's run command works on its embedded default, as far as a test can drive it."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import PROJECT_ROOT


def test_the_readme_gives_the_two_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert re.search(r"^make run\b", readme, re.M)
    assert re.search(r"^make test\b", readme, re.M)
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text()


def _readme() -> str:
    return (PROJECT_ROOT / "README.md").read_text()


def test_the_readme_lists_every_demo_card_with_its_number():
    from apps.demo.management.commands import seed_demo

    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(demo-[\w-]+)` \| `(\d{13,19})` \|", _readme(), re.M)}
    assert rows == {card_id: pan for card_id, _, pan, _ in seed_demo.CARDS}


def _readme_manage_commands() -> set[str]:
    """The management commands the README's code blocks run (`python manage.py NAME …`)."""
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", _readme(), re.S))
    return set(re.findall(r"manage\.py (\w+)", blocks))


def test_every_manage_py_command_of_the_readme_runs_as_written():
    """`python manage.py NAME --help` from whichever Python the shell finds (the system's, without
    Django, re-runs itself with .venv's), with no DEBUG and no production keys: each command exists
    and answers its help without a traceback."""
    commands = _readme_manage_commands()
    assert {"bootstrap_issuer", "seed_demo", "import_cards", "acs_signing_key", "simulate_3ds", "bin_grants"} <= commands
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    drop = ("DEBUG", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DATA_ENCRYPTION_KEYS", "PAN_FINGERPRINT_KEY", "AUTHENTICATION_VALUE_KEYS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for command in sorted(commands):
        done = subprocess.run([python, "manage.py", command, "--help"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr and f"manage.py {command}" in done.stdout


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
        # Every URL it prints follows PORT; the SMS go where simulate_3ds reads them.
        assert ":8000" not in output.replace(f":{port}", "")
        assert f"http://localhost:{port}/demo/app/" in output
        assert str(PROJECT_ROOT / "var" / "sms.jsonl") in output
        assert _get(f"http://localhost:{port}/demo/app/")[0] == 200
        if "SECRET_KEY" not in env:  # the development key: the README's password and API key
            password = re.search(r"Password:\s+(\S+)", output).group(1)
            api_key = re.search(r"API key:\s+(\S+)", output).group(1)
            assert f"`{password}`" in _readme() and f"`{api_key}`" in _readme()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()
