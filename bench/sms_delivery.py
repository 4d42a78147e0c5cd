"""SMS delivery through real Celery workers on Redis, against an empty task in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/issuer_portal_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/8 \
    .venv/bin/python bench/sms_delivery.py [--count 2000] [--rate 50] [--seconds 20] [--rounds 2] \
        [--pool threads] [--concurrency 4] [--validate-openapi] [--http10]

Every phase runs one worker node on the `sms` queue with the production task settings (prefetch
1, acks_late, CELERY_DB_REUSE_MAX) and the pool given on the command line; the empty task and
the SMS always run on the same broker with the same worker command line:
1. throughput, ROUNDS times: COUNT empty tasks, then COUNT SMS deliveries, published while no
   worker runs; then a worker drains them. Rate = completions / (last - first completion).
2. latency: empty tasks, then deliveries, created at RATE per second for SECONDS; enqueue
   (commit) to the moment the task ran / the local Twilio server received the request.
Each delivery is the real path: row + encrypted body, on_commit publish, task claims a try,
decrypts, the real `twilio` client posts to the local Twilio server (tests/fakes/twilio_server.py),
the attempt and delivery rows are updated and an audit event written.

Alongside, the CPU time each process used per message (from /proc): the worker, PostgreSQL's
backends, Redis, this process (load generator and fake Twilio server) and the whole machine. On
a shared machine the last one shows how much of it other people's work took during the run.

The local Twilio server runs in this process, on the same 2 cores as the worker, PostgreSQL and
Redis. By default it answers over HTTP/1.1 keep-alive, as Twilio's API does, and skips checking
each request against Twilio's OpenAPI description (the tests do that; here it would take the
cores about 1.3 ms of CPU per message). `--validate-openapi` and `--http10` put both back.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Production settings module, with benchmark keys (DEBUG off refuses the development ones).
os.environ.update(
    DJANGO_SETTINGS_MODULE="issuer_portal.settings",
    DEBUG="0",
    SECRET_KEY="bench-secret-key-0123456789abcdef0123456789abcdef",
    DATA_ENCRYPTION_KEYS="b1:YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI=",
    PAN_FINGERPRINT_KEY="bench-fingerprint-key",
    AUTHENTICATION_VALUE_KEYS="bav1:YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI=",
    LOG_LEVEL="WARNING",
    OUTBOUND_ALLOW_PRIVATE="1",  # the fake Twilio listens on 127.0.0.1
)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(values) -> dict:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "mean": round(statistics.mean(values), 1),
    }


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


class Worker:
    """One worker node on the `sms` queue; the same command line for the empty task and the SMS."""

    def __init__(self, app, env: dict, pool: str, concurrency: int):
        self.app, self.env, self.pool, self.concurrency = app, env, pool, concurrency

    def start(self) -> "Worker":
        self.node = f"bench-{os.getpid()}-{time.monotonic_ns()}@localhost"
        self.log = open(ROOT / "bench" / "worker.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "issuer_portal", "worker", "-Q", "sms",
             "--pool", self.pool, "-c", str(self.concurrency),
             "-n", self.node, "-I", "bench.tasks", "--without-gossip", "--without-mingle", "-l", "WARNING"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the node answers a ping: a fixed sleep is too short on a loaded machine, and a
        late start would count as latency."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"worker exited with {self.process.returncode}: see bench/worker.log")
            if self.app.control.ping(destination=[self.node], timeout=0.5):
                time.sleep(1)  # the pool's children finish starting (prefork forks after the ping)
                return
        sys.exit("worker did not answer a ping: see bench/worker.log")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


# ---- CPU accounting from /proc: where each message's CPU time goes, by process.

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(path: str) -> list[str] | None:
    try:
        with open(path) as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu(path: str) -> float:
    fields = _stat(path)  # fields[11], fields[12]: utime, stime (after pid and comm)
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(f"/proc/{entry}/stat")):
            parents[int(entry)] = int(fields[1])
    found, frontier = {root}, {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _machine_busy() -> float:
    with open("/proc/stat") as fh:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, fh.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def cpu_snapshot(worker_pid: int, cursor, db_name: str, redis_client) -> dict[str, dict]:
    """CPU seconds used so far, per process (or thread), grouped: the worker (node and pool),
    the PostgreSQL backends serving it, autovacuum on this database, Redis, this process's load
    generator (main thread) and fake Twilio server (its other threads), and the whole machine
    (other people's work included)."""
    cursor.execute(
        "SELECT pid, backend_type = 'autovacuum worker' FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [db_name],
    )
    backends = cursor.fetchall()
    main_thread = _cpu(f"/proc/self/task/{os.getpid()}/stat")
    return {
        "worker": {pid: _cpu(f"/proc/{pid}/stat") for pid in _descendants(worker_pid)},
        "postgres (worker's backends)": {pid: _cpu(f"/proc/{pid}/stat") for pid, vacuum in backends if not vacuum},
        "postgres (autovacuum, this database)": {pid: _cpu(f"/proc/{pid}/stat") for pid, vacuum in backends if vacuum},
        "redis": {0: _cpu(f"/proc/{redis_client.info('server')['process_id']}/stat")},
        "load generator": {0: main_thread},
        "fake twilio": {0: _cpu("/proc/self/stat") - main_thread},
        "machine, all processes": {0: _machine_busy()},
    }


def cpu_per_message(before: dict, after: dict, n: int) -> dict:
    """ms of CPU per message. A process that started meanwhile counts from zero; one that ended
    meanwhile (an autovacuum worker) is lost."""
    return {
        group: round(sum(seconds - before[group].get(key, 0.0) for key, seconds in now.items()) * 1000 / n, 2)
        for group, now in after.items()
    }


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: how busy the shared cores were."""
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def render(results: dict) -> str:
    """The figures docs/BENCHMARKS.md reports, as text."""
    lines = [f"{results['started_utc']} UTC, load average {results['load_average']['start']} at start, "
             f"{results['load_average']['end']} at end",
             f"{results['worker']}; fake Twilio {results['fake_twilio']}"]
    for i, rnd in enumerate(results["throughput"], 1):
        e, s = rnd["empty_task"], rnd["sms"]
        lines.append(
            f"round {i}: empty {e['per_s']}/s, SMS {s['per_s']}/s, ratio {rnd['sms_vs_empty']}, load {rnd['load_average']}"
            f" (sent once: {s['sent_once']}, all accepted: {s['all_accepted']}, DB connections opened: {s['db_connections_opened']})"
        )
        lines.append(f"  CPU ms per empty task: {e['cpu_ms_per_message']}")
        lines.append(f"  CPU ms per SMS:        {s['cpu_ms_per_message']}")
    for name, lat in results["latency_ms"].items():
        lines.append(f"latency at {results['rate']}/s, {name}: p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} ms (n={lat['n']})")
    lines.append(f"SMS offered: {results['sms_offered_per_s']}/s")
    return "\n".join(lines)


def db_sessions(cursor, name: str) -> int:
    """PostgreSQL connections opened to the database so far: shows whether workers reuse theirs."""
    cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [name])
    return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    # The sms queue waits on PostgreSQL and the provider: a few threads in one process cost less
    # CPU per message than as many prefork processes (docs/BENCHMARKS.md).
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads"])
    parser.add_argument("--concurrency", "-c", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (empty task, then SMS)")
    parser.add_argument("--validate-openapi", action="store_true", help="the fake checks every request (costs CPU)")
    parser.add_argument("--http10", action="store_true", help="the fake closes the connection after each answer")
    args = parser.parse_args()
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        if not os.environ.get(name):
            sys.exit(f"{name} must name PostgreSQL and Redis")
    ensure_database(os.environ["DATABASE_URL"])

    from tests.fakes import twilio_server
    from tests.fakes.twilio_server import FakeTwilio

    if not args.http10:
        # Every answer carries a Content-Length, so the handler can keep the connection open.
        twilio_server._Handler.protocol_version = "HTTP/1.1"
        # It writes the headers and the body separately: on a kept-alive connection Nagle's
        # algorithm would hold the body until the client's delayed ACK, 40 ms per message.
        twilio_server._Handler.disable_nagle_algorithm = True
    fake = FakeTwilio()
    if not args.validate_openapi:
        fake.openapi = None
    fake.start()
    os.environ.update(fake.env())

    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import connection, transaction

    from apps.sms.models import SmsDelivery
    from apps.sms.services import sms_delivery_create
    from bench.tasks import DONE_KEY, noop
    from issuer_portal.celery import app
    from tests.factories import IssuerFactory

    call_command("migrate", verbosity=0)
    app.control.purge()
    r = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    issuer = IssuerFactory(issuer_id=f"BENCH{int(time.time()) % 100000:05d}")
    env = {**os.environ}
    worker = Worker(app, env, args.pool, args.concurrency)
    db_name = connection.settings_dict["NAME"]
    seq = iter(range(10**9))

    def create_delivery():
        i = next(seq)
        with transaction.atomic():
            return sms_delivery_create(issuer=issuer, to=f"+8190{10_000_000 + i % 89_999_999}", body=f"{i:06d} is your code", secret=f"{i:06d}")

    results = {
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_average": {"start": load_average()},
        "machine": f"{os.cpu_count()} cores",
        "worker": f"--pool {args.pool} -c {args.concurrency}, prefetch 1, acks_late, CELERY_DB_REUSE_MAX",
        "fake_twilio": f"{'HTTP/1.0' if args.http10 else 'HTTP/1.1 keep-alive'}, "
                       f"OpenAPI checks {'on' if args.validate_openapi else 'off'}",
        "count": args.count, "rate": args.rate, "seconds": args.seconds,
    }

    def snapshot():
        with connection.cursor() as cursor:
            return cpu_snapshot(worker.process.pid, cursor, db_name, r)

    def drain(progress, total: int) -> dict:
        """Start the worker on a full queue and wait until `total` messages are done. CPU is
        counted from the first message done to the last, so the worker's start-up is left out."""
        worker.start()
        deadline = time.time() + 600
        while progress() < 1 and time.time() < deadline:
            time.sleep(0.01)
        first, before = progress(), snapshot()
        while progress() < total and time.time() < deadline:
            time.sleep(0.01)
        return cpu_per_message(before, snapshot(), max(1, total - first))

    def empty_round() -> dict:
        r.delete(DONE_KEY)
        for _ in range(args.count):
            noop.apply_async(args=[time.time()], queue="sms")
        cpu = drain(lambda: r.llen(DONE_KEY), args.count)
        worker.stop()
        done = sorted(json.loads(x)["done"] for x in r.lrange(DONE_KEY, 0, -1))
        return {"per_s": round((len(done) - 1) / (done[-1] - done[0]), 1), "cpu_ms_per_message": cpu}

    def sms_round() -> dict:
        fake.reset()
        created = [create_delivery().pk for _ in range(args.count)]
        with connection.cursor() as cursor:
            sessions_before = db_sessions(cursor, db_name)
        cpu = drain(lambda: len(fake.requests()), args.count)
        got = fake.requests()
        # Let the last attempt rows commit before the worker goes.
        deadline = time.time() + 60
        while SmsDelivery.objects.filter(pk__in=created, status=SmsDelivery.PENDING).exists() and time.time() < deadline:
            time.sleep(0.1)
        worker.stop()
        with connection.cursor() as cursor:
            connections_opened = db_sessions(cursor, db_name) - sessions_before
        arrivals = sorted(x.received_at for x in got)
        return {
            "per_s": round((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), 1),
            "cpu_ms_per_message": cpu,
            "sent_once": len({x.to for x in got}) == len(got) == args.count,
            "all_accepted": SmsDelivery.objects.filter(pk__in=created, status=SmsDelivery.QUEUED).count() == args.count,
            "db_connections_opened": connections_opened,
        }

    # ---- 1. throughput: empty task then SMS, each drained from a pre-filled queue; ROUNDS
    # times, alternating, so that a burst of someone else's work on the machine shows up as a
    # spread between rounds instead of silently skewing the ratio.
    results["throughput"] = []
    for _ in range(args.rounds):
        empty, sms = empty_round(), sms_round()
        results["throughput"].append({"empty_task": empty, "sms": sms, "sms_vs_empty": round(sms["per_s"] / empty["per_s"], 3),
                                      "load_average": load_average()})

    # ---- 2. latency at a fixed rate, worker already running
    worker.start()
    worker.wait_ready()
    n = int(args.rate * args.seconds)
    interval = 1 / args.rate

    r.delete(DONE_KEY)
    cpu_before = snapshot()
    start = time.time()
    for i in range(n):
        time.sleep(max(0.0, start + i * interval - time.time()))
        noop.apply_async(args=[time.time()], queue="sms")
    deadline = time.time() + 60
    while r.llen(DONE_KEY) < n and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # as for the SMS below
    results["latency_cpu_ms_per_message"] = {"empty_task": cpu_per_message(cpu_before, snapshot(), n)}
    empty_latency = [(d["done"] - d["sent"]) * 1000 for d in map(json.loads, r.lrange(DONE_KEY, 0, -1))]

    fake.reset()
    sent_at = {}
    cpu_before = snapshot()
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
        delivery = create_delivery()
        sent_at[delivery.to] = time.monotonic()  # after commit: the task is published
    results["sms_offered_per_s"] = round((n - 1) / (time.monotonic() - start), 1)  # the load generator kept up?
    fake.wait_for_requests(n, timeout=120)
    # The last rows are written just after the last request: give them a moment.
    time.sleep(0.5)
    results["latency_cpu_ms_per_message"]["sms"] = cpu_per_message(cpu_before, snapshot(), n)
    sms_latency = [(x.received_at - sent_at[x.to]) * 1000 for x in fake.requests() if x.to in sent_at]
    worker.stop()
    fake.stop()

    results["latency_ms"] = {"empty_task": summary(empty_latency), "sms": summary(sms_latency)}
    results["load_average"]["end"] = load_average()
    print(json.dumps(results, indent=2))
    print(render(results), file=sys.stderr)


if __name__ == "__main__":
    main()
