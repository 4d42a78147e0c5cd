"""Full app-channel challenge cycles per second: gunicorn (the product) + a real Celery worker on
Redis + PostgreSQL + a local DS, all on this machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/issuer_portal_bench_areq \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python bench/challenge_cycle.py [--workers 3] [--concurrency 8,16] [--seconds 30] [--celery-concurrency 2]

The database named by DATABASE_URL is dropped and created again (it is the benchmark's own); Redis
db of CELERY_BROKER_URL is flushed.

One cycle, for one cardholder (each cycle has its own card and phone, so no send limit is hit):
1. AReq (app channel, challenge mandated)            → ARes C
   (the SDK's ephemeral key in the AReq; acsSignedContent verified against the test root the
   bench installed with the generate-test path, the session key derived: SPEC §3.3)
2. first CReq (JWE, sdkCounterStoA 000)               → CRes acsUiType 01; the OTP goes out through
   the real path: SMS delivery row, Celery task `sms.send` on the worker, the `file` SMS backend
3. the code is read from the SMS file (a thread tails it; the cycle waits for its phone number)
4. CReq with challengeDataEntry = the code (001)      → final CRes transStatus Y
5. the RReq: row written with the result, Celery task `rreq_send`, POST to the local DS
   (tests/threeds/ds_server.FakeDS, which answers RRes "01" and checks every RReq); the cycle ends
   when the DS has received it.
--concurrency cardholders run cycles at the same time (closed loop). Cycles/s = cycles completed
in the measured window / its length (after a warm-up). Per-step times are reported too.

--rate 10,50 instead: open loop, a new challenge (cycle) started every 1/rate seconds whatever the
server's pace, each in its own thread — the issue's "CReq latency p95 with JWE at 50 challenges/s".
Steps are reported for the cycles started in the measured window; `start_lag` says how late the
driver itself started them (the client's own ECDH and JWE share the machine's 2 cores).
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.areq import (  # noqa: E402
    BENCH_ENV,
    CLK_TCK,
    GUNICORN,
    PYTHON,
    ancestor_among,
    cpu_table,
    free_port,
    fresh_database,
    percentile,
)

os.environ.update(BENCH_ENV)


class SmsInbox:
    """Tails the file SMS backend's JSON lines; hands each code to whoever waits for its number."""

    def __init__(self, path: Path):
        self.path = path
        self.codes: dict[str, list[tuple[str, float]]] = {}
        self.lines = 0
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.path.exists() and not self.stopping:
            time.sleep(0.01)
        with open(self.path, encoding="utf-8") as fh:
            buffer = ""
            while not self.stopping:
                chunk = fh.read()
                if not chunk:
                    time.sleep(0.002)
                    continue
                buffer += chunk
                *complete, buffer = buffer.split("\n")
                now = time.monotonic()
                with self.cond:
                    for line in complete:
                        if not line.strip():
                            continue
                        sms = json.loads(line)
                        code = re.search(r"\b\d{6,8}\b", sms["body"]).group(0)
                        self.codes.setdefault(sms["to"], []).append((code, now))
                        self.lines += 1
                    self.cond.notify_all()

    def wait(self, to: str, timeout: float = 30) -> tuple[str, float]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while to not in self.codes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no SMS for {to}")
                self.cond.wait(left)
            return self.codes[to][-1]

    def stop(self):
        self.stopping = True


JOSE = "application/jose; charset=UTF-8"
TRUST_ROOTS: list = []  # the test root of the bench's visa signing key (installed in main)


def post(port: int, path: str, message, *, session_key: bytes | None = None, acs_trans_id: str = "") -> dict:
    """A JSON message, or with `session_key` a CReq sealed as the SDK does and its CRes opened."""
    from apps.threeds import app_crypto

    if session_key is None:
        body, content_type = json.dumps(message).encode(), "application/json"
    else:
        body = app_crypto.creq_encrypt(message, session_key=session_key, acs_trans_id=acs_trans_id,
                                       enc=app_crypto.A128CBC_HS256).encode()
        content_type = JOSE
    conn = HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        if response.getheader("Content-Type", "").startswith("application/jose"):
            return app_crypto.cres_decrypt(body, session_key=session_key, acs_trans_id=acs_trans_id)
        return json.loads(body)
    finally:
        conn.close()


def cycle(port: int, pan: str, phone: str, ds, inbox: SmsInbox, ds_url: str) -> dict:
    from apps.threeds import app_crypto
    from tests.threeds.builders import areq

    t = {"start": time.monotonic()}
    sdk_key = app_crypto.acs_ephem_key_new()  # the SDK's ephemeral key pair
    message = areq(pan=pan, channel="01", threeDSRequestorChallengeInd="04", dsURL=ds_url,
                   sdkEphemPubKey=app_crypto.ephem_pub_key_jwk(sdk_key))
    ares = post(port, "/3ds/v2/areq", message)
    if ares.get("transStatus") != "C":
        raise RuntimeError(f"ARes {ares.get('transStatus')}/{ares.get('transStatusReason')}")
    payload = app_crypto.acs_signed_content_verify(ares["acsSignedContent"], trust_anchors=TRUST_ROOTS)
    session = {"acs_trans_id": ares["acsTransID"], "session_key": app_crypto.sdk_session_key_derive(
        sdk_ephem_key=sdk_key, acs_ephem_pub_key=payload["acsEphemPubKey"],
        sdk_reference_number=message["sdkReferenceNumber"])}
    t["ares"] = time.monotonic()
    creq = {
        "messageType": "CReq", "messageVersion": message["messageVersion"],
        "threeDSServerTransID": message["threeDSServerTransID"], "acsTransID": ares["acsTransID"],
        "sdkTransID": message["sdkTransID"], "sdkCounterStoA": "000",
    }
    cres = post(port, "/3ds/v2/creq", creq, **session)
    if cres.get("acsUiType") != "01":
        raise RuntimeError(f"first CRes {cres}")
    t["cres1"] = time.monotonic()
    code, seen = inbox.wait(phone)
    t["sms"] = max(seen, t["cres1"])
    final = post(port, "/3ds/v2/creq", {**creq, "sdkCounterStoA": "001", "challengeDataEntry": code}, **session)
    if final.get("transStatus") != "Y":
        raise RuntimeError(f"final CRes {final}")
    t["cres2"] = time.monotonic()
    deadline = time.monotonic() + 30
    while not ds.rreqs(ares["acsTransID"]):
        if time.monotonic() > deadline:
            raise TimeoutError("no RReq")
        time.sleep(0.003)
    t["rreq"] = ds.rreqs(ares["acsTransID"])[0].at
    return t


def cpu_by_role(start: dict, end: dict, *, web_pid: int, worker_pid: int) -> dict[str, float]:
    """CPU seconds used between two /proc snapshots, by who used them: this driver (the SDK's
    crypto, the DS, the SMS tail), gunicorn, the Celery worker, PostgreSQL, Redis, anything else."""
    roles = {os.getpid(): "driver", web_pid: "gunicorn", worker_pid: "celery_worker"}

    def role(pid: int) -> str:
        title = end[pid][1]
        if (ancestor := ancestor_among(end, pid, roles)) is not None:
            return roles[ancestor]
        if title.startswith("postgres"):
            return "postgres"
        if title.startswith("redis-server"):
            return "redis"
        return "other"

    used: dict[str, float] = {}
    for pid, (_, _, ticks) in end.items():
        delta = ticks - start.get(pid, (0, "", 0))[2]
        if delta > 0:
            name = role(pid)
            used[name] = used.get(name, 0) + delta / CLK_TCK
    return used


def run_summary(done: list[dict], errors: list[str], in_window: list[dict], seconds: float) -> dict:
    """Cycles per second in the window and each step's p50/p95/p99 (ms)."""
    steps = {
        "areq": [d["ares"] - d["start"] for d in done],
        "first_creq": [d["cres1"] - d["ares"] for d in done],
        "sms_wait": [d["sms"] - d["cres1"] for d in done],
        "code_creq": [d["cres2"] - d["sms"] for d in done],
        # Every JWE CReq → CRes round trip, both steps pooled.
        "any_creq": [d["cres1"] - d["ares"] for d in done] + [d["cres2"] - d["sms"] for d in done],
        "rreq_wait": [d["rreq"] - d["cres2"] for d in done],
        "whole_cycle": [d["rreq"] - d["start"] for d in done],
    }
    run = {
        "cycles_per_s": round(len(in_window) / seconds, 2),
        "cycles_completed": len(done),
        "errors": len(errors),
        "first_errors": errors[:3],
        "ms": {name: {"p50": round(1000 * percentile(v, 50), 1), "p95": round(1000 * percentile(v, 95), 1),
                      "p99": round(1000 * percentile(v, 99), 1), "mean": round(1000 * statistics.mean(v), 1)}
               for name, v in steps.items() if v},
    }
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--concurrency", default="8,16", help="cardholders in flight, one run each")
    parser.add_argument("--rate", default="", help="open loop instead: challenges started per second, one run each")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--cardholders", type=int, default=0, help="default: enough for the runs")
    args = parser.parse_args()
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must name PostgreSQL and Redis")
    fresh_database(os.environ["DATABASE_URL"])
    work = Path(tempfile.mkdtemp(prefix="bench-cycle-"))
    sms_path = work / "sms.jsonl"
    os.environ.update(SMS_BACKEND="file", SMS_FILE_PATH=str(sms_path), SMS_FALLBACK_BACKEND="", PUSH_BACKEND="console")
    env = {**os.environ}
    subprocess.run([PYTHON, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    import redis
    from django.db import connection, transaction

    from apps.cards.services import card_create, cardholder_create, phone_create
    from apps.issuers.services import bin_grant_create, issuer_create
    from apps.threeds.models import RiskPolicy, RReqDelivery, Transaction
    from tests.factories import luhn_complete
    from tests.threeds.ds_server import FakeDS

    rates = [float(r) for r in args.rate.split(",")] if args.rate else []
    levels = [] if rates else [int(c) for c in args.concurrency.split(",")]
    # Enough for 40 cycles/s in every run (a cardholder's card may get 5 codes an hour: one cycle each here).
    needed = args.cardholders or int(max([40.0, *rates]) * (args.seconds + args.warmup) * max(len(levels), len(rates))) + 100
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    issuer, _ = issuer_create(issuer_id="BENCHCYCLE", name="Bench Bank", country="JP")
    # Cards are made only inside the issuer's BIN grants (the platform operator's step).
    bin_grant_create(issuer=issuer, start="411111", end="411111", actor="bench")
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
    # The ACS's signing key for the cards' network, by the generate-test path (SPEC §5.7).
    from cryptography import x509

    from apps.threeds.signing_keys import signing_key_install, test_credentials_make

    key_pem, chain_pem, root_pem = test_credentials_make("visa")
    signing_key_install(network="visa", key_pem=key_pem, chain_pem=chain_pem)
    TRUST_ROOTS.append(x509.load_pem_x509_certificate(root_pem))
    people = []
    t0 = time.monotonic()
    for i in range(needed):
        holder = cardholder_create(issuer=issuer, external_id=f"cycle-{i}", name="Bench Holder", locale="en", actor="bench")
        phone = f"+8190{10_000_000 + i:08d}"
        with transaction.atomic():
            phone_create(cardholder=holder, number=phone, is_primary=True, verified=True, actor="bench")
        pan = luhn_complete(f"411111{i:09d}")
        card_create(issuer=issuer, card_id=f"cycle-{i}", cardholder=holder, pan=pan, expiry_month=12,
                    expiry_year=time.gmtime().tm_year + 3, actor="bench")
        people.append((pan, phone))
    setup_seconds = time.monotonic() - t0
    connection.close()

    ds = FakeDS().start()
    inbox = SmsInbox(sms_path)
    port = free_port()
    logs = open(work / "servers.log", "ab")
    web = subprocess.Popen(
        [GUNICORN, "issuer_portal.wsgi:application", "-k", "sync", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
         "--backlog", "2048", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT,
    )
    node = f"bench-cycle-{os.getpid()}@localhost"
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "issuer_portal", "worker", "-Q", "default,sms,webhooks,rreq,timeouts,push",
         "-c", str(args.celery_concurrency), "--pool", "prefork", "-n", node,
         "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT,
    )
    # Up: gunicorn answers /healthz and the worker answers a ping.
    from issuer_portal.celery import app

    deadline = time.monotonic() + 90
    web_up = worker_up = False
    while time.monotonic() < deadline and not (web_up and worker_up):
        if not web_up:
            try:
                conn = HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                web_up = conn.getresponse().status == 200
                conn.close()
            except OSError:
                pass
        worker_up = worker_up or bool(app.control.ping(destination=[node], timeout=1.0))
        time.sleep(0.2)
    if not (web_up and worker_up):
        sys.exit(f"gunicorn up: {web_up}, worker up: {worker_up}; see {work / 'servers.log'}")

    results = {"machine": f"{os.cpu_count()} cores", "gunicorn_workers": args.workers,
               "celery_concurrency": args.celery_concurrency, "setup_seconds": round(setup_seconds, 1), "runs": {}}
    next_person = iter(people)
    lock = threading.Lock()
    try:
        for level in levels:
            done: list[dict] = []
            errors: list[str] = []
            stop_at = time.monotonic() + args.warmup + args.seconds

            def driver(done=done, errors=errors, stop_at=stop_at):
                while time.monotonic() < stop_at:
                    with lock:
                        person = next(next_person, None)
                    if person is None:
                        errors.append("out of cardholders")
                        return
                    try:
                        timing = cycle(port, *person, ds, inbox, ds.url)
                    except Exception as exc:  # noqa: BLE001 — counted and reported
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    with lock:
                        done.append(timing)

            window_start = time.monotonic() + args.warmup
            threads = [threading.Thread(target=driver) for _ in range(level)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            window_end = window_start + args.seconds
            in_window = [d for d in done if window_start <= d["rreq"] < window_end]
            run = run_summary(done, errors, in_window, args.seconds)
            results["runs"][level] = run
            print(json.dumps({level: run}), flush=True)
            time.sleep(3)  # let the last RReqs land before the next run
        for rate in rates:
            done, errors, lags, threads = [], [], [], []
            total = int(rate * (args.warmup + args.seconds))
            begin = time.monotonic()
            window_start, window_end = begin + args.warmup, begin + args.warmup + args.seconds

            def one(person, done=done, errors=errors):
                try:
                    timing = cycle(port, *person, ds, inbox, ds.url)
                except Exception as exc:  # noqa: BLE001 — counted and reported
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                with lock:
                    done.append(timing)

            cpu_marks: dict[str, dict] = {}
            # /proc read at the edges of the measured window, off the driver's thread.
            timers = [threading.Timer(at - time.monotonic(), lambda mark=mark: cpu_marks.__setitem__(mark, cpu_table()))
                      for mark, at in (("start", window_start), ("end", window_end))]
            for timer in timers:
                timer.start()
            for k in range(total):
                due = begin + k / rate
                if (delay := due - time.monotonic()) > 0:
                    time.sleep(delay)
                lags.append(time.monotonic() - due)
                person = next(next_person, None)
                if person is None:
                    errors.append("out of cardholders")
                    break
                thread = threading.Thread(target=one, args=(person,), daemon=True)
                thread.start()
                threads.append(thread)
            for thread in [*threads, *timers]:
                thread.join(timeout=60)
            started_in_window = [d for d in done if window_start <= d["start"] < window_end]
            run = run_summary(started_in_window, errors, started_in_window, args.seconds)
            run["target_rate"] = rate
            run["started_per_s"] = round(sum(1 for k in range(total) if args.warmup <= k / rate < args.warmup + args.seconds) / args.seconds, 2)
            run["start_lag_ms"] = {"p50": round(1000 * percentile(lags, 50), 1), "p95": round(1000 * percentile(lags, 95), 1)}
            if "end" in cpu_marks and (started := run["started_per_s"] * args.seconds):
                used = cpu_by_role(cpu_marks["start"], cpu_marks["end"], web_pid=web.pid, worker_pid=worker.pid)
                # Both cores busy = 200 %; per challenge started in the window (exact only below saturation).
                run["cpu_percent"] = {k: round(100 * v / args.seconds) for k, v in sorted(used.items())}
                run["cpu_ms_per_challenge"] = {k: round(1000 * v / started, 1) for k, v in sorted(used.items())}
            results["runs"][f"rate {rate:g}/s"] = run
            print(json.dumps({f"rate {rate:g}/s": run}), flush=True)
            time.sleep(3)
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
        for process in (web, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        inbox.stop()
        ds.stop()

    received = ds.rreqs()
    results["check"] = {
        "sms_sent": inbox.lines,
        "numbers_with_more_than_one_sms": sum(1 for v in inbox.codes.values() if len(v) > 1),
        "rreqs_received": len(received),
        "distinct_rreqs": len({(r.message or {}).get("acsTransID") for r in received}),
        "rreq_violations": ds.violations[:5],
        "transactions_y": Transaction.objects.filter(issuer=issuer, trans_status="Y").count(),
        "rreq_deliveries_by_status": {s: RReqDelivery.objects.filter(issuer=issuer, status=s).count()
                                      for s in ("pending", "sending", "succeeded", "failed")},
    }
    connection.close()
    print(json.dumps(results, indent=2))
    print(f"(logs in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
