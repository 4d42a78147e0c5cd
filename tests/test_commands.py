"""Management commands: bootstrap_issuer, seed_demo, import_cards."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.audit.models import AuditEvent
from apps.cards import services as card_services
from apps.cards.management.commands import import_cards
from apps.cards.models import Card, Cardholder, Phone
from apps.demo.management.commands import seed_demo
from apps.issuers.models import ApiKey, Issuer
from apps.issuers.services import api_key_authenticate
from tests.factories import IssuerFactory, grant, new_pan
from tests.support.fixtures import in_process_tasks  # noqa: F401 (fixture)
from tests.threeds.conftest import PAN, enrolled  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# ---------------------------------------------------------------- bootstrap_issuer


def test_bootstrap_prints_one_json_line_whose_secrets_work():
    out, _ = run("bootstrap_issuer", "--issuer-id", "NEWBANK001", "--name", "New Bank")

    lines = out.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == {"issuer_id", "api_key", "webhook_secret"}
    issuer = Issuer.objects.get(issuer_id="NEWBANK001")
    assert data["issuer_id"] == "NEWBANK001"
    assert api_key_authenticate(raw_key=data["api_key"]).issuer == issuer
    assert issuer.get_webhook_secret() == data["webhook_secret"]


def test_bootstrap_stores_every_option():
    run(
        "bootstrap_issuer", "--issuer-id", "FRBANK0001", "--name", "Banque", "--country", "fr",
        "--notification-base-url", "https://bank.example/3ds", "--deliver-otp-url", "https://bank.example/otp",
        "--otp-delivery", "issuer", "--rp-id", "bank.example",
        "--origin", "https://bank.example", "--origin", "https://app.bank.example",
    )

    issuer = Issuer.objects.get(issuer_id="FRBANK0001")
    assert issuer.country == "FR"
    assert issuer.otp_policies.get(product=None).delivery_mode == "issuer"
    assert issuer.deliver_otp_url == "https://bank.example/otp"
    assert issuer.notification_base_url == "https://bank.example/3ds"
    assert issuer.webauthn_rp_id == "bank.example"
    assert issuer.webauthn_origins == ["https://bank.example", "https://app.bank.example"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--issuer-id", "SHORT"], "--issuer-id"),
        (["--issuer-id", "BAD-ID!!!!"], "--issuer-id"),
        (["--issuer-id", "NEWBANK001", "--otp-delivery", "issuer"], "--deliver-otp-url"),
        (["--issuer-id", "NEWBANK001", "--deliver-otp-url", "not a url"], "--deliver-otp-url"),
        (["--issuer-id", "NEWBANK001", "--notification-base-url", "ftp//x"], "--notification-base-url"),
        (["--issuer-id", "NEWBANK001", "--origin", "https://bank.example"], "--rp-id"),
        (["--issuer-id", "NEWBANK001", "--rp-id", "bank.example", "--origin", "bank.example"], "--origin"),
        (["--issuer-id", "NEWBANK001", "--country", "JPN"], "--country"),
    ],
)
def test_bootstrap_rejects_bad_input_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("bootstrap_issuer", "--name", "New Bank", *args)

    assert not Issuer.objects.exists()
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_bootstrap_rejects_a_duplicate_issuer():
    IssuerFactory(issuer_id="DUPBANK001")

    with pytest.raises(CommandError, match="already exists"):
        run("bootstrap_issuer", "--issuer-id", "DUPBANK001", "--name", "Again")

    assert Issuer.objects.count() == 1
    assert not ApiKey.objects.exists()


def test_bootstrap_is_one_transaction(monkeypatch):
    from apps.issuers.management.commands import bootstrap_issuer

    def fail(**kwargs):
        raise RuntimeError("key store down")

    monkeypatch.setattr(bootstrap_issuer, "api_key_create", fail)

    with pytest.raises(RuntimeError):
        run("bootstrap_issuer", "--issuer-id", "NEWBANK001", "--name", "New Bank")
    assert not Issuer.objects.exists()


def test_bootstrap_runs_as_a_real_process(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "issuer_portal.settings_test",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "--noinput").returncode == 0
    done = manage("bootstrap_issuer", "--issuer-id", "PROCBANK01", "--name", "Process Bank")

    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    data = json.loads(line)
    assert data["issuer_id"] == "PROCBANK01"
    assert data["api_key"].startswith("ik_") and data["webhook_secret"].startswith("whsec_")

    again = manage("bootstrap_issuer", "--issuer-id", "PROCBANK01", "--name", "Process Bank")
    assert again.returncode != 0
    assert again.stdout == ""
    assert "already exists" in again.stderr


# ---------------------------------------------------------------- seed_demo


def test_seed_demo_twice_neither_fails_nor_duplicates():
    first, _ = run("seed_demo")
    counts = (Issuer.objects.count(), Cardholder.objects.count(), Phone.objects.count(), Card.objects.count(), User.objects.count())
    out, _ = run("seed_demo", "--password", "demo-pass-123")

    assert (Issuer.objects.count(), Cardholder.objects.count(), Phone.objects.count(), Card.objects.count(), User.objects.count()) == counts
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    assert Cardholder.objects.filter(issuer=issuer).count() == len(seed_demo.CARDHOLDERS)
    assert Card.objects.filter(issuer=issuer).count() == len(seed_demo.CARDS)
    # The key printed by both runs is the same, and the only live demo key.
    live = issuer.api_keys.filter(name="demo", revoked_at__isnull=True)
    assert live.count() == 1
    api_key = printed(out, "API key")
    assert api_key == printed(first, "API key")
    assert api_key_authenticate(raw_key=api_key).pk == live.get().pk


def printed(out: str, label: str) -> str:
    return next(line.split()[-1] for line in out.splitlines() if line.strip().startswith(label + ":"))


def test_seed_demo_keeps_the_password_and_the_api_key_across_runs():
    first, _ = run("seed_demo")
    password, api_key = printed(first, "Password"), printed(first, "API key")
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    key_row = api_key_authenticate(raw_key=api_key)

    second, _ = run("seed_demo")

    assert (printed(second, "Password"), printed(second, "API key")) == (password, api_key)
    assert User.objects.get(username="demo-operator").check_password(password)
    # The working key was never revoked, nor replaced.
    assert api_key_authenticate(raw_key=api_key).pk == key_row.pk
    assert not issuer.api_keys.filter(revoked_at__isnull=False).exists()
    assert AuditEvent.objects.filter(kind="api_key.created").count() == 1


def test_seed_demo_replaces_only_the_random_demo_keys_of_earlier_versions():
    from apps.issuers.services import api_key_create

    run("seed_demo")
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    _, old = api_key_create(issuer=issuer, name="demo", created_by="an earlier seed_demo")
    _, other = api_key_create(issuer=issuer, name="integration", created_by="staff")

    out, _ = run("seed_demo")

    assert api_key_authenticate(raw_key=old) is None
    assert api_key_authenticate(raw_key=other) is not None
    assert api_key_authenticate(raw_key=printed(out, "API key")) is not None


def test_seed_demo_values_are_the_readmes_with_the_development_key(settings):
    settings.SECRET_KEY = settings_module().DEV_SECRET_KEY
    out, _ = run("seed_demo")

    readme = (settings.BASE_DIR / "README.md").read_text()
    assert f"`{printed(out, 'Password')}`" in readme
    assert f"`{printed(out, 'API key')}`" in readme


def settings_module():
    import issuer_portal.settings

    return issuer_portal.settings


def test_seed_demo_builds_the_demo_issuer():
    out, _ = run("seed_demo")

    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    assert (issuer.name, issuer.country) == ("Demo Bank", "JP")
    assert {c.locale for c in Cardholder.objects.filter(issuer=issuer)} == {"en", "ja", "fr"}
    for cardholder in Cardholder.objects.filter(issuer=issuer).exclude(external_id="demo-0007"):
        assert cardholder.phones.filter(is_primary=True, verified=True).count() == 1
    # The decline example: no phone, no device.
    assert not Cardholder.objects.get(issuer=issuer, external_id="demo-0007").phones.exists()
    assert Card.objects.filter(issuer=issuer, status=Card.SUSPENDED).count() == 1
    assert Card.objects.filter(issuer=issuer, network="cartes_bancaires").exclude(co_badge="").exists()
    assert {"visa", "mastercard", "cartes_bancaires"} <= set(Card.objects.values_list("network", flat=True))
    assert f"{settings.PUBLIC_BASE_URL}/admin/" in out


def test_seed_demo_sets_limits_a_demo_does_not_trip_within_the_spec_bounds():
    from apps.otp.models import BOUNDS, OtpPolicy, OtpPolicyVersion
    from apps.threeds.models import RiskPolicy

    run("seed_demo")
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    policy = OtpPolicy.objects.get(issuer=issuer, product=None)
    for name, value in seed_demo.DEMO_OTP_LIMITS.items():
        _, low, high = BOUNDS[name]
        assert getattr(policy, name) == value and low <= value <= high
    # Dozens of simulations an hour on one card: neither the SMS limit nor the velocity decline.
    assert policy.max_sends_per_card_hour >= 36
    risk = RiskPolicy.objects.get(issuer=issuer)
    assert risk.velocity_max_per_hour >= 36 and risk.velocity_warn_per_hour >= 36
    versions = OtpPolicyVersion.objects.filter(policy=policy).count()

    run("seed_demo")  # nothing changes: no new version
    assert OtpPolicyVersion.objects.filter(policy=policy).count() == versions


def test_seed_demo_follows_the_port(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8123"
    out, _ = run("seed_demo")

    assert "http://127.0.0.1:8123/admin/" in out and ":8000" not in out
    assert "http://localhost:8123/demo/app/" in out
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    assert issuer.webauthn_rp_id == "localhost" and "http://localhost:8123" in issuer.webauthn_origins

    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8124"
    run("seed_demo")
    issuer.refresh_from_db()
    assert {"http://localhost:8123", "http://localhost:8124"} <= set(issuer.webauthn_origins)


def test_seed_demo_installs_test_signing_keys_once_and_keeps_an_operators():
    from apps.threeds.models import AcsSigningKey

    AcsSigningKey.objects.exclude(network="visa").delete()
    operators = AcsSigningKey.objects.get(network="visa", active=True)
    out, _ = run("seed_demo")
    assert "test signing keys installed for cartes_bancaires, mastercard" in out
    assert {"visa", "mastercard", "cartes_bancaires"} <= set(AcsSigningKey.objects.filter(active=True).values_list("network", flat=True))
    assert AcsSigningKey.objects.get(network="visa", active=True) == operators
    out, _ = run("seed_demo")
    assert "test signing keys" not in out and AcsSigningKey.objects.count() == 3


def test_seed_demo_users_log_in_with_the_printed_password():
    out, _ = run("seed_demo")

    password = printed(out, "Password")
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    for username, role in [("demo-issuer-admin", ISSUER_ADMIN), ("demo-operator", OPERATOR), ("demo-analyst", ANALYST)]:
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser and user.issuer == issuer
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.check_password(password)


def test_seed_demo_prints_no_pan():
    out, err = run("seed_demo")
    out2, err2 = run("seed_demo")

    for _, _, pan, _ in seed_demo.CARDS:
        for text in (out, err, out2, err2):
            assert pan not in text
        assert pan[-4:] in out


# ---------------------------------------------------------------- import_cards

EXPIRY_YEAR = str(timezone.now().year + 2)


def write_csv(path, rows, header=import_cards.COLUMNS):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def row(external_id, card_id, pan, *, name="Ann Lee", locale="en", phone="", month="12", year=EXPIRY_YEAR, product=""):
    return [external_id, name, locale, phone, card_id, pan, month, year, product]


@pytest.fixture
def importer(db):
    issuer = IssuerFactory(issuer_id="IMPBANK001")
    # The BINs of the PANs below: new_pan() (4111 + sequence), new_pan("5555"), the Gold product.
    for start, end in (("411100", "411109"), ("555500", "555509"), ("499999", "499999")):
        grant(issuer, start, end)
    card_services.card_product_create(
        issuer=issuer, name="Gold", network="visa", bin_ranges=[{"start": "499999", "end": "499999"}], actor="tests"
    )
    return issuer


def test_import_enrolls_every_row(importer, tmp_path):
    gold_pan = new_pan("499999")
    path = write_csv(tmp_path / "cards.csv", [
        row("c-1", "k-1", new_pan(), phone="+819012345678", locale="ja"),
        row("c-1", "k-2", gold_pan, phone="+819012345678", product="Gold"),
        row("c-2", "k-3", new_pan("5555"), phone="+33612345678", locale="fr"),
    ])

    out, err = run("import_cards", path, "--issuer-id", "IMPBANK001")

    assert out.strip() == "imported 3, failed 0"
    assert Cardholder.objects.filter(issuer=importer).count() == 2
    c1 = Cardholder.objects.get(issuer=importer, external_id="c-1")
    assert c1.locale == "ja"
    assert c1.cards.count() == 2
    (phone,) = c1.phones.all()
    assert phone.is_primary and phone.verified
    assert Card.objects.get(card_id="k-2").product.name == "Gold"
    assert Card.objects.get(card_id="k-3").network == "mastercard"


def test_import_reuses_an_existing_cardholder_and_keeps_its_primary_phone(importer, tmp_path):
    cardholder = card_services.cardholder_create(issuer=importer, external_id="c-1", name="Ann", locale="en", actor="tests")
    card_services.phone_create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True, actor="tests")
    path = write_csv(tmp_path / "cards.csv", [row("c-1", "k-1", new_pan(), phone="+818012345678")])

    run("import_cards", path, "--issuer-id", "IMPBANK001")

    assert Cardholder.objects.filter(issuer=importer).count() == 1
    assert cardholder.phones.get(is_primary=True).number == "+819012345678"
    assert cardholder.phones.count() == 2
    assert cardholder.cards.count() == 1


@pytest.fixture
def bad_file(importer, tmp_path):
    """A good row, then one bad row of each kind; returns the path and every PAN in it."""
    taken = new_pan()
    good = new_pan()
    bad_luhn = good[:-1] + str((int(good[-1]) + 1) % 10)
    pans = [taken, good, bad_luhn, new_pan(), new_pan(), new_pan(), new_pan()]
    rows = [
        row("c-1", "k-1", taken),                                          # line 2: ok
        row("c-new", "k-2", bad_luhn, phone="+819012345678"),              # line 3: bad Luhn
        row("c-3", "k-3", pans[3], year=str(timezone.now().year - 1)),     # line 4: expired
        row("c-4", "k-4", pans[4], phone="+8190"),                         # line 5: bad phone
        row("c-5", "k-5", pans[5], product="Platinum"),                    # line 6: unknown product
        row("c-6", "k-6", taken),                                          # line 7: duplicate PAN
        row("c-7", pans[6], pans[6])[:-2],                                 # line 8: missing columns
        row("c-8", "k-8", good),                                           # line 9: ok
    ]
    return write_csv(tmp_path / "cards.csv", rows), pans


def test_import_reports_row_errors_and_leaves_no_partial_row(bad_file, importer, monkeypatch):
    path, _ = bad_file
    monkeypatch.setattr(import_cards, "BATCH_SIZE", 3)  # failed rows sit between good rows of a batch
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_cards", path, "--issuer-id", "IMPBANK001", stdout=out, stderr=err)

    assert excinfo.value.returncode == 1
    assert out.getvalue().strip() == "imported 2, failed 6"
    err = err.getvalue()
    for expected in [
        "line 3: pan: Fails the Luhn check.",
        "line 4: expiry_year: The card has expired.",
        "line 5: phone: Not a valid phone number.",
        "line 6: product: No card product named 'Platinum'.",
        "line 7: pan: Already enrolled.",
        "line 8: expiry_year: Missing column.",
    ]:
        assert expected in err
    assert set(Cardholder.objects.filter(issuer=importer).values_list("external_id", flat=True)) == {"c-1", "c-8"}
    assert set(Card.objects.filter(issuer=importer).values_list("card_id", flat=True)) == {"k-1", "k-8"}
    assert not Phone.objects.exists()
    assert not AuditEvent.objects.filter(data__external_id="c-new").exists()


def test_import_writes_a_report_without_any_pan(bad_file, tmp_path):
    path, pans = bad_file
    report = tmp_path / "report.csv"
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_cards", path, "--issuer-id", "IMPBANK001", "--report", str(report), stdout=out, stderr=err)

    with open(report, newline="") as f:
        lines = list(csv.DictReader(f))
    assert [(r["line"], r["card_id"], r["field"]) for r in lines][:3] == [("3", "k-2", "pan"), ("4", "k-3", "expiry_year"), ("5", "k-4", "phone")]
    assert {r["line"] for r in lines} == {"3", "4", "5", "6", "7", "8"}
    everything = out.getvalue() + err.getvalue() + report.read_text()
    for pan in pans:
        assert pan not in everything
    # Line 8 put the PAN in the card_id column: redacted too.
    assert next(r for r in lines if r["line"] == "8")["card_id"] == "[REDACTED]"


def test_import_dry_run_checks_rows_and_writes_nothing(bad_file, importer):
    path, _ = bad_file

    with pytest.raises(CommandError, match="6 of 8 rows failed"):
        run("import_cards", path, "--issuer-id", "IMPBANK001", "--dry-run")

    assert not Cardholder.objects.filter(issuer=importer).exists()
    assert not Card.objects.exists()


def test_import_dry_run_sees_earlier_rows(importer, tmp_path):
    pan = new_pan()
    path = write_csv(tmp_path / "cards.csv", [row("c-1", "k-1", pan), row("c-2", "k-2", pan)])
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_cards", path, "--issuer-id", "IMPBANK001", "--dry-run", stdout=out, stderr=err)

    assert out.getvalue().startswith("imported 1, failed 1")
    assert "line 3: pan: Already enrolled." in err.getvalue()
    assert not Card.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        ["external_id", "name", "locale", "card_id", "pan", "expiry_month"],  # expiry_year missing
        [*import_cards.COLUMNS, "cvv"],
        ["external_id", "name", "name", "locale", "card_id", "pan", "expiry_month", "expiry_year"],
    ],
)
def test_import_refuses_a_wrong_header_before_any_write(importer, tmp_path, header):
    path = write_csv(tmp_path / "cards.csv", [row("c-1", "k-1", new_pan())], header=header)
    report = tmp_path / "report.csv"

    with pytest.raises(CommandError, match="Wrong header"):
        run("import_cards", path, "--issuer-id", "IMPBANK001", "--report", str(report))

    assert not Cardholder.objects.exists()
    assert not report.exists()


def test_import_accepts_a_header_without_the_optional_columns(importer, tmp_path):
    header = ["external_id", "name", "locale", "card_id", "pan", "expiry_month", "expiry_year"]
    path = write_csv(tmp_path / "cards.csv", [["c-1", "Ann", "en", "k-1", new_pan(), "1", EXPIRY_YEAR]], header=header)

    out, _ = run("import_cards", path, "--issuer-id", "IMPBANK001")

    assert out.strip() == "imported 1, failed 0"


def test_import_refuses_an_unknown_issuer(tmp_path):
    path = write_csv(tmp_path / "cards.csv", [])

    with pytest.raises(CommandError, match="No issuer"):
        run("import_cards", path, "--issuer-id", "NOSUCHBANK")


def test_seed_demo_enrolls_the_card_simulate_3ds_uses_by_default():
    from apps.threeds.management.commands.simulate_3ds import demo_pan

    run("seed_demo")
    issuer = Issuer.objects.get(issuer_id="DEMOBANK01")
    from apps.core.crypto import pan_fingerprint

    card = Card.objects.get(issuer=issuer, pan_fingerprint=pan_fingerprint(demo_pan()), status=Card.ACTIVE)
    assert card.cardholder.phones.filter(verified=True).exists()


# ---------------------------------------------------------------- run_schedule


def scheduler_log_lines(text: str) -> list[str]:
    """The lines the scheduler and Celery's task tracer logged (the console handler: stderr)."""
    return [line.split(" ", 4)[-1] for line in text.splitlines() if " celery.app.trace " in line or " apps.core.management." in line]


def test_run_schedule_logs_nothing_when_no_task_did_anything(capfd):
    run("run_schedule", "--once")

    assert scheduler_log_lines(capfd.readouterr().err) == []


def test_run_schedule_logs_a_task_that_did_something(capfd, client, enrolled, in_process_tasks):  # noqa: F811
    from datetime import timedelta

    from apps.threeds.models import Challenge
    from tests.threeds.builders import areq

    ares = client.post("/3ds/v2/areq", areq(pan=PAN, threeDSRequestorChallengeInd="04"), content_type="application/json").json()
    Challenge.objects.filter(pk=ares["acsTransID"]).update(first_creq_deadline=timezone.now() - timedelta(seconds=1))
    capfd.readouterr()

    run("run_schedule", "--once")

    assert scheduler_log_lines(capfd.readouterr().err) == ["challenge-timeouts: 1"]


# ---------------------------------------------------------------- manage.py as the README runs it

PRODUCTION_KEYS = ("SECRET_KEY", "DATA_ENCRYPTION_KEYS", "PAN_FINGERPRINT_KEY", "AUTHENTICATION_VALUE_KEYS")


def manage_py(*args, python=sys.executable, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE", *PRODUCTION_KEYS)}
    env.update(env_changes)
    return subprocess.run([python, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)


def test_manage_py_without_debug_says_in_one_line_what_to_set():
    done = manage_py("check")

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert all(name in line for name in PRODUCTION_KEYS) and "DEBUG=1" in line


def test_manage_py_help_without_debug_lists_every_command():
    for args in (["--help"], ["seed_demo", "--help"]):
        done = manage_py(*args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    listing = manage_py("--help")
    assert "seed_demo" in listing.stdout and "simulate_3ds" in listing.stdout and "run_schedule" in listing.stdout
    assert "DEBUG=1" in listing.stderr


def test_manage_py_runs_with_the_venvs_python_when_started_by_another():
    system_python = "/usr/bin/python3"
    if not os.path.exists(system_python) or subprocess.run([system_python, "-c", "import django"], capture_output=True).returncode == 0:
        pytest.skip("needs a Python without Django")
    if not (settings.BASE_DIR / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv")

    done = manage_py("check", python=system_python, DEBUG="1", DJANGO_SETTINGS_MODULE="issuer_portal.settings_test")

    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
