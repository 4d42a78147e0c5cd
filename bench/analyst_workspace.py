"""The analyst workspace measured from outside, on the database bench/analyst_data.py made: the
list (first and deep pages, filters), the transaction page (which now writes its access record),
the dashboard, and the CSV exports — streamed throughput (to choose ANALYST_STREAM_MAX_ROWS) and a
background export job's time and peak memory on every row of one issuer and on 1,000,000 rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/issuer_portal_bench_analyst \\
    .venv/bin/python bench/analyst_workspace.py [--requests 40] [--workers 2] [--skip-pages] [--skip-export]

gunicorn (sync workers, the README's production setup) serves the pages on a free port; an analyst
of the largest issuer is created (its session made directly, so no login throttle applies) and
each page is requested --requests times in turn, one at a time, from this process (urllib). The
export job runs in a child process of its own, so its peak RSS (ru_maxrss) is the job's alone.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.analyst_data import BENCH_ENV, DEFAULT_URL  # noqa: E402
from bench.areq import GUNICORN, free_port  # noqa: E402

ISSUER = "BENCHBANK1"


def setup_django(database_url: str):
    os.environ.update(BENCH_ENV, DATABASE_URL=database_url)
    import django

    django.setup()


def analyst_session() -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    from apps.accounts.models import User
    from apps.accounts.roles import ANALYST
    from apps.issuers.models import Issuer

    user, _ = User.objects.get_or_create(username="bench-analyst", defaults={
        "is_staff": True, "issuer": Issuer.objects.get(issuer_id=ISSUER)})
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=ANALYST))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def seed_labels(count: int = 2000) -> None:
    """Analysts' labels on a sample of the largest issuer's transactions (30 % fraud), once."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analyst_transactionlabel")
        if cursor.fetchone()[0]:
            return
        cursor.execute("""
            INSERT INTO analyst_transactionlabel (transaction_id, issuer_id, label, note, transaction_created_at, created_at, updated_at)
            SELECT t.acs_trans_id, t.issuer_id, CASE WHEN get_byte(uuid_send(t.acs_trans_id), 0) < 77 THEN 'fraud' ELSE 'genuine' END,
                   'bench', t.created_at, now(), now()
            FROM threeds_transaction t JOIN issuers_issuer i ON i.id = t.issuer_id
            WHERE i.issuer_id = %s ORDER BY random() LIMIT %s""", [ISSUER, count])
        cursor.execute("ANALYZE analyst_transactionlabel")


def get(url: str, cookie: str, tail: list | None = None) -> tuple[int, float, int]:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        size, last = 0, b""
        while chunk := response.read(1 << 16):
            size += len(chunk)
            last = (last + chunk)[-200:]
        if tail is not None:
            tail.append(last.decode("utf-8", "replace").strip().splitlines()[-1])
        return response.status, (time.perf_counter() - start) * 1000, size


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def pages(args, base: str, cookie: str):
    from apps.analyst.selectors import Scope, TransactionFilters, transaction_page
    from apps.issuers.models import Issuer
    from apps.threeds.models import Transaction

    issuer = Issuer.objects.get(issuer_id=ISSUER)
    # A deep page: follow the cursor 20 pages down, as an analyst paging back would.
    page = transaction_page(scope=Scope(issuer), filters=TransactionFilters(), cursor=None)
    for _ in range(20):
        page = transaction_page(scope=Scope(issuer), filters=TransactionFilters(), cursor=page.next_cursor)
    deep = page.next_cursor.encode()
    ids = list(Transaction.objects.filter(issuer=issuer).order_by("-created_at").values_list("acs_trans_id", flat=True)[:5000:100])
    card_ids = list(Transaction.objects.filter(issuer=issuer, card__isnull=False).values_list("card__card_id", flat=True)[:1])
    targets = [
        ("list, first page", lambda i: "/analyst/"),
        ("list, 21st page (cursor)", lambda i: f"/analyst/?cursor={deep}"),
        ("list, status N", lambda i: "/analyst/?trans_status=N"),
        ("list, last4", lambda i: "/analyst/?last4=4242"),
        ("list, label fraud", lambda i: "/analyst/?label=fraud"),
        ("transaction page (+ access record)", lambda i: f"/analyst/transactions/{ids[i % len(ids)]}/"),
        ("dashboard, 7 days", lambda i: "/analyst/dashboard/"),
    ]
    if card_ids:
        targets.insert(5, ("list, card_id", lambda i: f"/analyst/?card_id={card_ids[0]}"))
    results = []
    for name, path in targets:
        get(base + path(0), cookie)  # warm the worker
        times = []
        for i in range(args.requests):
            status, ms, _ = get(base + path(i), cookie)
            assert status == 200, (name, status)
            times.append(ms)
        results.append((name, statistics.median(times), pct(times, 0.95), max(times)))
        print(f"{name:40s} p50 {results[-1][1]:7.1f} ms   p95 {results[-1][2]:7.1f} ms   max {results[-1][3]:7.1f} ms", flush=True)
    return results


def streamed(base: str, cookie: str, days: int):
    """The streamed export's throughput: the last `days` days of the issuer (ANALYST_STREAM_MAX_ROWS raised
    for the server of this run so that it streams)."""
    from datetime import timedelta

    from django.utils import timezone

    start = (timezone.now() - timedelta(days=days)).date().isoformat()
    tail = []
    status, ms, size = get(f"{base}/analyst/transactions.csv?created_from={start}", cookie, tail)
    return status, ms, size, tail[0]


JOB_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
import django
django.setup()
from apps.analyst import services
from apps.analyst.models import ExportJob
from apps.analyst.selectors import EXPORT_HEADER, Scope, TransactionFilters, transaction_export_rows
from apps.issuers.models import Issuer
mode = {mode!r}
start = time.perf_counter()
if mode == "job":
    issuer = Issuer.objects.get(issuer_id={issuer!r})
    job = ExportJob.objects.create(issuer=issuer, actor="bench", filters={{}})
    services.export_job_run(job.pk)
    job.refresh_from_db()
    rows, status = job.rows, job.status
    size = services.export_file_path(job).stat().st_size
    services.export_file_path(job).unlink()
else:  # every row of every issuer (Scope(None)), written as the job writes them
    import csv
    path = services.export_dir() / "bench-all.csv.part"
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(EXPORT_HEADER)
        for values in transaction_export_rows(scope=Scope(None), filters=TransactionFilters()):
            writer.writerow([services.csv_cell(v) for v in values])
            rows += 1
        writer.writerow(services.export_trailer(rows))
    size = path.stat().st_size
    path.unlink()
    status = "done"
print(json.dumps({{"rows": rows, "status": status, "seconds": time.perf_counter() - start, "bytes": size,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def export_child(mode: str, env: dict) -> dict:
    code = JOB_CHILD.format(root=str(ROOT), mode=mode, issuer=ISSUER)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--stream-days", type=int, nargs="*", default=[2, 7, 14])
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    setup_django(database_url)
    from django.db import connection

    from apps.threeds.models import Transaction

    print(f"{Transaction.objects.count():,} transactions; PostgreSQL {connection.pg_version}", flush=True)
    cookie = analyst_session()
    seed_labels()
    env = {**os.environ, **BENCH_ENV, "DATABASE_URL": database_url, "ANALYST_STREAM_MAX_ROWS": "100000000",
           "ANALYST_EXPORT_DIR": "/tmp/bench-analyst-exports"}
    port = free_port()
    log = open("/tmp/bench-analyst-gunicorn.log", "ab")
    server = subprocess.Popen(
        [GUNICORN, "issuer_portal.wsgi", "-k", "sync", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
         "--timeout", "30", "--log-level", "warning"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        if not args.skip_pages:
            pages(args, base, cookie)
        if not args.skip_export:
            for days in args.stream_days:
                status, ms, size, last = streamed(base, cookie, days)
                print(f"streamed export, last {days} days: HTTP {status}, {ms / 1000:.1f} s, {size / 1e6:.1f} MB, "
                      f"last line {last!r}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not args.skip_export:
        for mode in ("job", "all"):
            result = export_child(mode, env)
            print(f"export {'job (' + ISSUER + ', every row)' if mode == 'job' else 'of every row (1 process)'}: "
                  f"{result['rows']:,} rows, {result['seconds']:.1f} s, {result['bytes'] / 1e6:.0f} MB, "
                  f"peak RSS {result['max_rss_mb']:.0f} MB ({result['status']})", flush=True)


if __name__ == "__main__":
    main()
