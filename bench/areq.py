"""Frictionless AReq → ARes under gunicorn on PostgreSQL, against a bare Django view doing one INSERT
(bench/ceiling_app) on the same stack, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/issuer_portal_bench_areq \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python bench/areq.py [--workers 2,3,4] [--seconds 15] [--rounds 2] [--connections 8]
                                   [--latency-seconds 30] [--notifications] [--profile]

The database named by DATABASE_URL is dropped and created again (it is the benchmark's own).

1. Setup: product migrations and the ceiling's table; an issuer, one cardholder, --cards enrolled
   cards (the AReqs rotate over them; 20,000 by default, so that a card sees a few AReqs an hour as
   in life rather than dozens), a risk policy under which an ordinary purchase is frictionless
   (new-merchant weight 0, velocity limits out of reach). --notifications also gives the issuer a
   notification URL, so each ARes also writes a webhook delivery row and publishes a Celery task
   (to Redis; no worker consumes it here).
2. Max throughput, after one uncounted product phase (--warmup-seconds) that brings the cards into
   PostgreSQL's buffers: for each worker count, ROUNDS × (ceiling, then product), each under gunicorn
   sync workers, loaded by wrk (closed loop, --connections, a Lua script giving every request
   unique threeDSServerTransID / dsTransID and the next PAN). Requests/s of each phase.
3. Latency at half the product's best rate: a fixed-rate open-loop generator (Python processes,
   latency measured from the scheduled send time, so queueing is counted), product then ceiling at
   the same rate; p50/p95/p99.
4. Checks: every product answer counted in the database (all ARes Y, one transaction and two audit
   events per AReq), no non-2xx.
--server-side-binding: one more product phase per round with DB_SERVER_SIDE_BINDING=1.
--profile: one more product phase with py-spy sampling the gunicorn workers; prints the inclusive
share of the hottest frames (where the AReq's time goes).

The product runs the production settings module with DEBUG=0 and benchmark keys (as
bench/sms_delivery.py does). The load generator runs on the same 2 cores as everything else.
"""

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
PATH = "/3ds/v2/areq"

BENCH_ENV = dict(
    DJANGO_SETTINGS_MODULE="issuer_portal.settings",
    DEBUG="0",
    SECRET_KEY="bench-secret-key-0123456789abcdef0123456789abcdef",
    DATA_ENCRYPTION_KEYS="b1:YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI=",
    PAN_FINGERPRINT_KEY="bench-fingerprint-key",
    AUTHENTICATION_VALUE_KEYS="bav1:YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI=",
    # The benchmark's DS is a local server (SPEC §4: production names its DS endpoints, and
    # outbound HTTP never reaches private addresses there).
    DS_URL_ALLOWLIST="http://127.0.0.1:*/",
    OUTBOUND_ALLOW_PRIVATE="1",
)
os.environ.update(BENCH_ENV)


# ---------------------------------------------------------------- helpers


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.startswith("issuer_portal_bench"):
        sys.exit(f"refusing to drop {name}: the benchmark database's name starts with issuer_portal_bench")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def analyze(url: str) -> None:
    """What autovacuum keeps up on a live database: fresh planner statistics, and the visibility
    map (an index-only scan, like the AReq's velocity count, needs it to skip the table). This
    machine's PostgreSQL runs with autovacuum off; without this the AReq's queries were planned
    with an empty table's statistics for the whole run, and every index entry of a card's history
    sent the velocity count to the table (a cost that grew with the run)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def areq_body(pan: str, *, server_id: str, ds_id: str) -> dict:
    """A browser AReq (about 1.5 KB), valid and low-risk."""
    from tests.threeds.builders import areq

    message = areq(pan=pan, threeDSServerTransID=server_id, dsTransID=ds_id)
    message["dsURL"] = "http://127.0.0.1:9/ds/rreq"
    message["browserUserAgent"] = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    )
    message["browserAcceptHeader"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    return message


class Server:
    """gunicorn with sync workers on a free port."""

    def __init__(self, name: str, app: str, env: dict, workers: int, log_dir: Path, root: Path = ROOT):
        self.name, self.app, self.env, self.workers, self.root = name, app, env, workers, root
        self.port = free_port()
        self.log = open(log_dir / f"gunicorn-{name}.log", "ab")
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(
            [GUNICORN, self.app, "-k", "sync", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
             "--backlog", "2048", "--timeout", "60", "--log-level", "warning"],
            cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited: see {self.log.name}")
            try:
                conn = HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                time.sleep(0.2)
        return self

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False).stdout
        return [int(x) for x in out.split()]

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# ---------------------------------------------------------------- neighbours' load

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, process title, CPU ticks so far), from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), title or stat[stat.index("(") + 1:stat.rindex(")")], int(fields[11]) + int(fields[12]))
    return table


def ancestor_among(table: dict, pid: int, ancestors) -> int | None:
    """The first of `ancestors` met walking up from `pid` (itself included) in a cpu_table, or None."""
    p, hops = pid, 0
    while p > 1 and hops < 50:
        if p in ancestors:
            return p
        p, hops = table.get(p, (0,))[0], hops + 1
    return None


class CpuWatch:
    """CPU used during a phase by everything that is not this benchmark: neither this process and
    its children (gunicorn, wrk, the open-loop senders) nor the PostgreSQL backends of its
    database. In % of one core; 200% is both cores. Also the 1-minute load average at the start."""

    def __init__(self, database: str):
        self.database = database

    def __enter__(self):
        self.load = os.getloadavg()[0]
        self.start, self.t0 = cpu_table(), time.time()
        return self

    def stop(self) -> dict:
        end, seconds = cpu_table(), time.time() - self.t0
        me = os.getpid()
        ours = {pid for pid in end if ancestor_among(end, pid, {me}) is not None}
        used = {"bench": 0, "bench_postgres": 0, "neighbours": 0}
        busiest = Counter()
        for pid, (_, title, ticks) in end.items():
            delta = ticks - self.start.get(pid, (0, "", 0))[2]
            if delta <= 0:
                continue
            if pid in ours:
                used["bench"] += delta
            elif title.startswith("postgres:") and f" {self.database} " in f"{title} ":
                used["bench_postgres"] += delta
            else:
                used["neighbours"] += delta
                busiest[title[:60]] += delta
        percent = {k: round(100 * v / CLK_TCK / seconds) for k, v in used.items()}
        return {"load_1min_at_start": round(self.load, 2), "cpu_percent": percent,
                "busiest_neighbours": [(t, round(100 * v / CLK_TCK / seconds)) for t, v in busiest.most_common(3)]}

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------- wrk (max throughput)

LUA = r"""
local pans = {%(pans)s}
local template = %(template)s
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  prefix = args[1]
end
request = function()
  counter = counter + 1
  local pan = pans[(counter * 7919 + tid * 104729) %% #pans + 1]
  local sid = string.format("%%s-%%04x-4000-8000-%%012x", prefix, tid, counter)
  local did = string.format("%%s-%%04x-4000-9000-%%012x", prefix, tid, counter)
  local body = template:gsub("SERVERTRANSID", sid, 1):gsub("DSTRANSID", did, 1):gsub("ACCTNUMBER", pan, 1)
  return wrk.format("POST", "%(path)s", {["Content-Type"] = "application/json"}, body)
end
"""


def lua_script(pans: list[str], directory: Path) -> Path:
    template = json.dumps(areq_body("ACCTNUMBER", server_id="SERVERTRANSID", ds_id="DSTRANSID"))
    path = directory / "areq.lua"
    path.write_text(LUA % {"pans": ",".join(f'"{p}"' for p in pans), "template": "[==[" + template + "]==]", "path": PATH})
    return path


def wrk(port: int, script: Path, *, seconds: float, connections: int, threads: int = 2) -> dict:
    prefix = f"{random.getrandbits(32):08x}"
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{PATH}", "--", prefix],
        capture_output=True, text=True, check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(map(int, m.groups())) if m else 0
    for q in ("50", "99"):
        m = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            result[f"closed_loop_p{q}_ms"] = round(value, 2)
    return result


# ---------------------------------------------------------------- open-loop latency


def _open_loop_worker(args) -> tuple[list[float], list[float], int, int]:
    port, rate, seconds, start_at, offset, pans, template = args
    interval = 1.0 / rate
    n = int(seconds * rate)
    latencies, service, errors, late = [], [], 0, 0
    conn = None
    for i in range(n):
        scheduled = start_at + offset + i * interval
        delay = scheduled - time.time()
        if delay > 0:
            time.sleep(delay)
        else:
            late += 1
        body = (
            template.replace("SERVERTRANSID", str(uuid.uuid4()), 1)
            .replace("DSTRANSID", str(uuid.uuid4()), 1)
            .replace("ACCTNUMBER", pans[i % len(pans)], 1)
            .encode()
        )
        sent = time.time()
        try:
            if conn is None:
                conn = HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            ok = response.status == 200 and b'"transStatus": "Y"' in data
            if response.getheader("Connection", "").lower() == "close" or response.will_close:
                conn.close()
                conn = None
        except OSError:
            ok = False
            conn = None
        done = time.time()
        if not ok:
            errors += 1
        latencies.append((done - scheduled) * 1000)
        service.append((done - sent) * 1000)
    return latencies, service, errors, late


def open_loop(port: int, pans: list[str], *, rate: float, seconds: float, streams: int = 8) -> dict:
    """`streams` independent fixed-rate senders (one process each), each at rate/streams and
    phase-shifted, so requests leave at `rate` whatever the answers do; latency is counted from each
    request's scheduled time (a late answer delays the sender's next request, and that wait counts)."""
    template = json.dumps(areq_body("ACCTNUMBER", server_id="SERVERTRANSID", ds_id="DSTRANSID"))
    start_at = time.time() + 1.0
    per_stream = rate / streams
    jobs = [(port, per_stream, seconds, start_at, k / rate, pans[k::streams] or pans, template) for k in range(streams)]
    with multiprocessing.get_context("fork").Pool(streams) as pool:
        results = pool.map(_open_loop_worker, jobs)
    latencies = [x for r in results for x in r[0]]
    service = [x for r in results for x in r[1]]
    return {
        "rate": round(rate, 1),
        "n": len(latencies),
        "errors": sum(r[2] for r in results),
        "late_sends": sum(r[3] for r in results),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.mean(latencies), 2),
        "service_p50_ms": round(percentile(service, 50), 2),
        "service_p99_ms": round(percentile(service, 99), 2),
    }


# ---------------------------------------------------------------- profile


def profile(server: Server, script: Path, *, seconds: float, connections: int, py_spy: str, out_dir: Path) -> list[tuple[str, float]]:
    raw = out_dir / "areq-profile.txt"
    pids = server.worker_pids()
    spies = [
        subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "250", "--duration", str(int(seconds)),
                          "--format", "raw", "--output", f"{raw}.{pid}", "--nonblocking"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in pids
    ]
    time.sleep(1)
    wrk(server.port, script, seconds=seconds - 2, connections=connections)
    for spy in spies:
        spy.wait(timeout=60)
    inclusive, total = Counter(), 0
    for pid in pids:
        path = Path(f"{raw}.{pid}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            # Only samples inside a request (idle workers sit in select/accept).
            if not any("handle_request" in f for f in frames):
                continue
            total += n
            for frame in set(frames):
                inclusive[re.sub(r"\s*\(/.*?/(site-packages|main)/", " (", frame)] += n
    return [(frame, round(100 * n / total, 1)) for frame, n in inclusive.most_common(70)], total


# ---------------------------------------------------------------- statements (in process)


def _statement_label(sql: str) -> str:
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        return verb
    depth, top = 0, []  # the statement's own FROM, not a subquery's
    for token in sql.replace("(", " ( ").replace(")", " ) ").split():
        depth += token == "("
        depth -= token == ")"
        if depth == 0:
            top.append(token)
    keyword = {"SELECT": "FROM", "INSERT": "INTO", "DELETE": "FROM", "UPDATE": "UPDATE"}.get(verb)
    if keyword in top and top.index(keyword) + 1 < len(top):
        return f"{verb} {top[top.index(keyword) + 1].strip(chr(34))}"
    return verb


def statements(pans: list[str], n: int) -> dict:
    """n AReqs through the Django test client in this process (no gunicorn, no concurrency, the
    production settings): wall time per AReq, and each SQL statement with its time from the
    driver's execute to its return (round trip and server time, not the ORM's compilation; BEGIN
    is sent by psycopg inside the first statement of a transaction, so it is counted there)."""
    from django.db import connection
    from django.test import Client

    client = Client()

    def post(pan):
        body = json.dumps(areq_body(pan, server_id=str(uuid.uuid4()), ds_id=str(uuid.uuid4())))
        started = time.perf_counter()
        response = client.post(PATH, body, content_type="application/json")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200 and response.json()["transStatus"] == "Y", response.content
        return elapsed

    for i in range(20):
        post(pans[i % len(pans)])
    walls, per_statement, counts, captured = [], {}, [], []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            captured.append((sql, (time.perf_counter() - started) * 1000))

    commit = connection._commit

    def timed_commit():  # COMMIT is not a cursor statement: time it where Django sends it
        started = time.perf_counter()
        try:
            return commit()
        finally:
            captured.append(("COMMIT", (time.perf_counter() - started) * 1000))

    for i in range(n):
        captured.clear()
        connection._commit = timed_commit
        try:
            with connection.execute_wrapper(timed):
                walls.append(post(pans[(i * 7) % len(pans)]))
        finally:
            del connection._commit
        counts.append(len(captured))
        for position, (sql, ms) in enumerate(captured):
            per_statement.setdefault((position, _statement_label(sql)), []).append(ms)
    plain, cpu = [], []
    for i in range(n):
        started = time.process_time()
        plain.append(post(pans[(i * 11) % len(pans)]))
        cpu.append((time.process_time() - started) * 1000)
    return {
        "areqs": n,
        "statements_per_areq": sorted(set(counts)),
        "wall_ms_median": round(statistics.median(plain), 2),
        "wall_ms_p90": round(percentile(plain, 90), 2),
        "python_cpu_ms_median": round(statistics.median(cpu), 2),  # this process only: not PostgreSQL's
        "timed_wall_ms_median": round(statistics.median(walls), 2),
        "statements": [
            {"position": pos, "statement": label, "ms_median": round(statistics.median(times), 3), "ms_mean": round(statistics.mean(times), 3)}
            for (pos, label), times in sorted(per_statement.items())
        ],
    }


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="2,3,4", help="gunicorn sync worker counts to try")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--cards", type=int, default=20000, help="enrolled cards the AReqs rotate over (each card a few AReqs an hour, as in life)")
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--latency-rate", type=float, default=0, help="default: half the product's best median rate")
    parser.add_argument("--notifications", action="store_true", help="issuer with a 3DS notification URL")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--warmup-seconds", type=float, default=12,
                        help="one product phase before the rounds, not counted: brings the cards and their indexes "
                             "into PostgreSQL's buffers (with many cards the first round otherwise reads them from disk)")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="first, N AReqs in process: wall time and each SQL statement's time")
    parser.add_argument("--statements-only", action="store_true", help="stop after --statements")
    parser.add_argument("--compare-root", type=Path, default=None, metavar="DIR",
                        help="another checkout of the product (e.g. a git worktree of an older commit, same migrations "
                             "or fewer): its phases ('areq_compare') run in every round and in the latency part too")
    parser.add_argument("--server-side-binding", action="store_true",
                        help="one more product phase per round ('areq_ssb') with DB_SERVER_SIDE_BINDING=1: Django's "
                             "server-side binding, psycopg preparing each statement after its 5th run")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy")
    args = parser.parse_args()
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must name PostgreSQL and Redis")
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install -y wrk)")
    database_url = os.environ["DATABASE_URL"]
    fresh_database(database_url)
    database_name = database_url.rsplit("/", 1)[1]

    work = Path(tempfile.mkdtemp(prefix="bench-areq-"))
    ceiling_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.ceiling_app.settings"}
    product_env = {**os.environ}
    subprocess.run([PYTHON, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=product_env, check=True)
    subprocess.run([PYTHON, "-m", "django", "migrate", "--verbosity", "0"], cwd=ROOT, env=ceiling_env, check=True)

    import django

    django.setup()
    import redis
    from django.db import connection

    from apps.audit.models import AuditEvent
    from apps.cards.services import card_create, cardholder_create
    from apps.issuers.services import issuer_create
    from apps.threeds.models import RiskPolicy, Transaction
    from tests.factories import ensure_grant, luhn_complete

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    issuer, _ = issuer_create(
        issuer_id="BENCHAREQ1", name="Bench Bank", notification_base_url="http://127.0.0.1:9/hooks" if args.notifications else ""
    )
    RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0, velocity_max_per_hour=32000, velocity_warn_per_hour=32000)
    holder = cardholder_create(issuer=issuer, external_id="bench-1", name="Bench Holder", locale="en", actor="bench")
    pans = []
    for i in range(args.cards):
        pan = luhn_complete(f"411111{i:09d}")
        if i % 10000 == 0:
            ensure_grant(issuer, pan)  # cards are enrolled inside the issuer's BIN grants (SPEC §2)
        card_create(issuer=issuer, card_id=f"bench-{i}", cardholder=holder, pan=pan, expiry_month=12,
                    expiry_year=time.gmtime().tm_year + 3, actor="bench")
        pans.append(pan)
    random.shuffle(pans)
    script = lua_script(pans, work)
    connection.close()
    analyze(database_url)

    if args.statements:
        with CpuWatch(database_name) as watch:
            result = statements(pans, args.statements)
        result["machine"] = watch.stop()
        print(json.dumps({"statements": result}, indent=1), flush=True)
        connection.close()
        if args.statements_only:
            return

    results = {
        "machine": f"{os.cpu_count()} cores, {os.uname().release}",
        "worker_class": "sync",
        "connections": args.connections,
        "seconds": args.seconds,
        "notifications": args.notifications,
        "body_bytes": len(json.dumps(areq_body(pans[0], server_id=str(uuid.uuid4()), ds_id=str(uuid.uuid4())))),
        "throughput": {},
    }

    # ---- 1. max throughput, alternating ceiling and product
    if args.warmup_seconds:
        with Server("warm-up", "issuer_portal.wsgi:application", product_env, 2, work) as server:
            wrk(server.port, script, seconds=args.warmup_seconds, connections=args.connections)
    phases = [("ceiling", "bench.ceiling_app.wsgi:application", ceiling_env, ROOT),
              ("areq", "issuer_portal.wsgi:application", product_env, ROOT)]
    if args.server_side_binding:
        phases.append(("areq_ssb", "issuer_portal.wsgi:application", {**product_env, "DB_SERVER_SIDE_BINDING": "1"}, ROOT))
    if args.compare_root:
        results["compare_root"] = str(args.compare_root)
        phases.append(("areq_compare", "issuer_portal.wsgi:application", product_env, args.compare_root.resolve()))
    for workers in [int(w) for w in args.workers.split(",")]:
        rows = {name: [] for name, *_ in phases}
        for _ in range(args.rounds):
            for name, app, env, root in phases:
                analyze(database_url)
                with Server(name, app, env, workers, work, root) as server:
                    wrk(server.port, script, seconds=3, connections=args.connections)  # warm up
                    with CpuWatch(database_name) as watch:
                        row = wrk(server.port, script, seconds=args.seconds, connections=args.connections)
                    row["machine"] = watch.stop()
                    rows[name].append(row)
        summary = {name: {"rps": [r["rps"] for r in runs], "median_rps": statistics.median(r["rps"] for r in runs),
                          "non_2xx": sum(r["non_2xx"] for r in runs), "socket_errors": sum(r["socket_errors"] for r in runs),
                          "closed_loop_p50_ms": [r.get("closed_loop_p50_ms") for r in runs],
                          "closed_loop_p99_ms": [r.get("closed_loop_p99_ms") for r in runs],
                          "load_at_start": [r["machine"]["load_1min_at_start"] for r in runs],
                          "neighbours_cpu_percent": [r["machine"]["cpu_percent"]["neighbours"] for r in runs],
                          "machine": [r["machine"] for r in runs]}
                   for name, runs in rows.items()}
        summary["areq_vs_ceiling"] = round(summary["areq"]["median_rps"] / summary["ceiling"]["median_rps"], 3)
        # Each round's product phase right after its ceiling phase: the ratio least hurt by noise.
        summary["areq_vs_ceiling_per_round"] = [round(a["rps"] / c["rps"], 3) for c, a in zip(rows["ceiling"], rows["areq"], strict=True)]
        for other in ("areq_ssb", "areq_compare"):
            if other in rows:
                summary[f"{other}_vs_ceiling"] = round(summary[other]["median_rps"] / summary["ceiling"]["median_rps"], 3)
                summary[f"{other}_vs_ceiling_per_round"] = [
                    round(a["rps"] / c["rps"], 3) for c, a in zip(rows["ceiling"], rows[other], strict=True)
                ]
        results["throughput"][workers] = summary
        print(json.dumps({workers: summary}), flush=True)

    best = max(results["throughput"], key=lambda w: results["throughput"][w]["areq"]["median_rps"])
    results["chosen_workers"] = best
    results["load_before_latency"] = os.getloadavg()
    rate = args.latency_rate or results["throughput"][best]["areq"]["median_rps"] / 2

    # ---- 2. latency at half the product's max rate (same rate for the ceiling)
    for name, app, env, root in [phases[1], *phases[2:], phases[0]]:
        analyze(database_url)
        with Server(name, app, env, best, work, root) as server:
            wrk(server.port, script, seconds=3, connections=args.connections)
            # The ceiling's view also answers '"transStatus": "Y"', so both are checked alike.
            with CpuWatch(database_name) as watch:
                results[f"latency_{name}"] = open_loop(server.port, pans, rate=rate, seconds=args.latency_seconds)
            results[f"latency_{name}"]["machine"] = watch.stop()
        print(json.dumps({f"latency_{name}": results[f"latency_{name}"]}), flush=True)

    # ---- 3. what the product wrote
    from django.db.models import Count

    statuses = dict(Transaction.objects.filter(issuer=issuer).values_list("trans_status").annotate(n=Count("pk")))
    n_tx = sum(statuses.values())
    results["check"] = {
        "transactions": n_tx,
        "by_trans_status": statuses,
        "audit_events_per_transaction": round(AuditEvent.objects.filter(issuer=issuer, kind__startswith="threeds.").count() / max(n_tx, 1), 3),
    }
    if args.notifications:
        from apps.webhooks.models import WebhookDelivery

        results["check"]["webhook_deliveries"] = WebhookDelivery.objects.filter(issuer=issuer).count()
    connection.close()

    # ---- 4. profile
    if args.profile:
        analyze(database_url)
        with Server("areq-profile", "issuer_portal.wsgi:application", product_env, best, work) as server:
            wrk(server.port, script, seconds=3, connections=args.connections)
            top, samples = profile(server, script, seconds=args.seconds + 2, connections=args.connections, py_spy=args.py_spy, out_dir=work)
        results["profile_samples"] = samples
        results["profile_inclusive_percent"] = top

    print(json.dumps(results, indent=2))
    print(f"(logs and profile in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
