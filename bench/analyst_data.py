"""A PostgreSQL database with millions of 3-D Secure transactions for the analyst workspace, and the
EXPLAIN plans and timings of its typical queries (docs/BENCHMARKS-ANALYST.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/issuer_portal_bench_analyst \\
    .venv/bin/python bench/analyst_data.py [--rows 1000000] [--days 90] [--keep] [--explain-only]

The database named by DATABASE_URL is dropped and created again (it is the benchmark's own; its
name must start with issuer_portal_bench), migrated, and filled by INSERT … SELECT over
generate_series — about a minute for a million transactions, no Python loop per row:

- three issuers (80 % / 15 % / 5 % of the rows), transactions spread over --days up to now;
- ARes: Y 70 %, C 25 %, N 4 %, A and U the rest; challenges end Y 85 %, N 12 %, U 1 %, the
  newest still running; merchants follow a skewed distribution over ~3,000 names; amounts in JPY
  (exponent 0), EUR and USD (exponent 2);
- every challenge: OOB or SMS OTP, ~8 % of OOB ones fall back to SMS with a reason; an SMS
  delivery (10 % with a resend) and its tries (5 % retried after a transient failure) on a primary
  or fallback provider, with durations; an RReq delivery and its try; four audit events.

Then ANALYZE, and --explain runs (by default) the analyst's queries as the views build them
(apps.analyst.selectors) with EXPLAIN (ANALYZE, BUFFERS), printing each plan and its timing.
--keep skips the drop/generate step and only explains.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_ENV = dict(
    DJANGO_SETTINGS_MODULE="issuer_portal.settings",
    DEBUG="0",
    SECRET_KEY="bench-secret-key-0123456789abcdef0123456789abcdef",
    DATA_ENCRYPTION_KEYS="b1:YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI=",
    PAN_FINGERPRINT_KEY="bench-fingerprint-key",
    AUTHENTICATION_VALUE_KEYS="bav1:YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMzI=",
)
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/issuer_portal_bench_analyst"

ISSUERS = [("BENCHBANK1", "Bench Bank One"), ("BENCHBANK2", "Bench Bank Two"), ("BENCHBANK3", "Bench Bank Three")]

MERCHANT_WORDS_A = ["Tokyo", "Sakura", "Paris", "Alpine", "Blue", "Golden", "Kyoto", "Nordic", "Urban", "Green",
                    "Silver", "Osaka", "Lumiere", "Fuji", "Harbor", "Maple", "Red", "Sunny", "Royal", "Metro"]
MERCHANT_WORDS_B = ["Books", "Coffee", "Electronics", "Travel", "Fashion", "Games", "Market", "Pharmacy", "Sports",
                    "Tickets", "Hotel", "Airlines", "Music", "Garden", "Bakery"]

# Each statement is timed on its own. Random values come from random() after setseed(): the same
# data every run. Skewed choices use powers of random() (many rows for a few values).
GENERATE = [
    ("seed", "SELECT setseed(0.42)"),
    ("transactions", """
INSERT INTO threeds_transaction (
    acs_trans_id, issuer_id, card_id, three_ds_server_trans_id, ds_trans_id, sdk_trans_id, message_version,
    device_channel, message_category, pan_last4, pan_fingerprint, network, co_badge, purchase_amount,
    purchase_currency, purchase_exponent, purchase_date, merchant_name, acquirer_merchant_id, acquirer_bin, mcc,
    merchant_country_code, three_ds_requestor_challenge_ind, notification_url, ds_url, three_ds_requestor_app_url,
    areq, ares, risk_score, risk_rules, risk_facts, ares_trans_status, exemption, trans_status, trans_status_reason, eci,
    authentication_value, authentication_value_key_id, authentication_type, challenge_cancel, interaction_counter,
    three_ds_method, created_at, finished_at)
SELECT
    gen_random_uuid(), issuer_id, NULL, gen_random_uuid(), gen_random_uuid(), NULL, '2.2.0',
    '02', '01', last4, md5(last4 || issuer_id::text), 'visa', '', amount,
    currency, CASE currency WHEN '392' THEN 0 ELSE 2 END, to_char(created_at, 'YYYYMMDDHH24MISS'), merchant, 'm-' || merchant_no,
    '400551', '5942', '392', CASE WHEN ares = 'C' THEN '04' ELSE '01' END, 'https://merchant.example/3ds/notify',
    'https://ds.example/rreq', '',
    jsonb_build_object('messageType', 'AReq', 'messageVersion', '2.2.0', 'merchantName', merchant,
        'purchaseAmount', amount::text, 'purchaseCurrency', currency, 'deviceChannel', '02',
        'browserUserAgent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
        'browserAcceptHeader', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'browserIP', '192.0.2.10', 'browserLanguage', 'ja-JP', 'notificationURL', 'https://merchant.example/3ds/notify'),
    jsonb_build_object('messageType', 'ARes', 'transStatus', ares),
    score, jsonb_build_array(jsonb_build_object('rule', 'base', 'weight', 10)),
    jsonb_build_object('recent_count', 0, 'merchant_known', true, 'browser_mismatches', '[]'::jsonb, 'threshold', 50), ares, '',
    final, CASE final WHEN 'N' THEN (CASE WHEN ares = 'N' THEN '08' ELSE '19' END) WHEN 'U' THEN '22' ELSE '' END,
    CASE WHEN final IN ('Y') THEN '05' WHEN final = 'A' THEN '06' WHEN final = '' THEN '' ELSE '07' END,
    CASE WHEN final IN ('Y', 'A') THEN 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' ELSE '' END,
    CASE WHEN final IN ('Y', 'A') THEN 'bav1' ELSE '' END, CASE WHEN ares = 'C' THEN '02' ELSE '' END, '', 0,
    'completed', created_at, CASE WHEN final = '' THEN NULL ELSE created_at + interval '40 seconds' END
FROM (
    SELECT
        s.issuer_id, s.last4, s.amount, s.currency, s.created_at, s.ares, s.score,
        s.merchant, s.merchant_no,
        CASE WHEN s.ares <> 'C' THEN s.ares
             WHEN s.created_at > now() - interval '3 minutes' THEN ''
             WHEN s.r2 < 0.85 THEN 'Y' WHEN s.r2 < 0.97 THEN 'N' WHEN s.r2 < 0.98 THEN 'U' ELSE 'N' END AS final
    FROM (
        SELECT
            (SELECT id FROM issuers_issuer WHERE issuer_id = CASE WHEN r.ri < 0.80 THEN 'BENCHBANK1'
                WHEN r.ri < 0.95 THEN 'BENCHBANK2' ELSE 'BENCHBANK3' END) AS issuer_id,
            lpad((floor(random() * 10000))::int::text, 4, '0') AS last4,
            CASE WHEN r.rc < 0.80 THEN (100 + floor(power(random(), 3) * 300000))::bigint
                 ELSE (100 + floor(power(random(), 3) * 200000))::bigint END AS amount,
            CASE WHEN r.rc < 0.80 THEN '392' WHEN r.rc < 0.95 THEN '978' ELSE '840' END AS currency,
            now() - (random() * %(days)s * interval '1 day') AS created_at,
            CASE WHEN r.ra < 0.70 THEN 'Y' WHEN r.ra < 0.95 THEN 'C' WHEN r.ra < 0.99 THEN 'N'
                 WHEN r.ra < 0.995 THEN 'A' ELSE 'U' END AS ares,
            (random() * 99)::int AS score,
            r.m AS merchant_no,
            (%(words_a)s::text[])[1 + r.m %% 20] || ' ' || (%(words_b)s::text[])[1 + (r.m / 20) %% 15] || ' ' || (r.m / 300 + 1)::text AS merchant,
            random() AS r2
        FROM (
            SELECT random() AS ri, random() AS rc, random() AS ra, floor(power(random(), 2.5) * 3000)::int AS m
            FROM generate_series(1, %(rows)s)
        ) r
    ) s
) t
-- In time order, as the service writes them (the heap's correlation with created_at matters).
ORDER BY created_at
"""),
    ("challenges", """
INSERT INTO threeds_challenge (
    transaction_id, method, state, fallback_reason, otp_session_id, phone_id, locale, challenge_window_size,
    three_ds_session_data, sdk_counter_expected, acs_counter, page_token_hash, first_creq_deadline, deadline,
    oob_deadline, creq_received_at, created_at, finished_at, app_session_key_id, decoupled)
SELECT acs_trans_id,
       CASE WHEN oob AND NOT fell_back THEN 'oob' ELSE 'sms_otp' END,
       CASE trans_status WHEN 'Y' THEN 'succeeded' WHEN '' THEN 'in_progress' WHEN 'U' THEN 'timed_out' ELSE 'failed' END,
       CASE WHEN fell_back THEN (ARRAY['oob_timeout', 'cancelled_in_app', 'push_failed', 'assertion_failed',
                                       'oob_timeout', 'push_rate_limited', 'device_blocked'])[1 + floor(random() * 7)::int]
            ELSE '' END,
       NULL, NULL, 'en', '05', '', 0, 0, '', created_at + interval '30 seconds', created_at + interval '600 seconds',
       NULL, created_at + interval '2 seconds', created_at, finished_at, '', false
FROM (
    SELECT acs_trans_id, trans_status, created_at, finished_at, random() < 0.55 AS oob, random() < 0.08 AS fell_back
    FROM threeds_transaction WHERE ares_trans_status = 'C'
) c
"""),
    ("sms deliveries", """
INSERT INTO sms_smsdelivery (
    id, issuer_id, otp_code_id, acs_trans_id, purpose, "to", masked_to, sender_id, status, body_key_id, body_blob,
    next_attempt_at, tries, max_tries, provider, provider_message_id, error_code, created_at, accepted_at, finished_at,
    updated_at)
SELECT gen_random_uuid(), t.issuer_id, NULL, t.acs_trans_id, 'otp', '+819012345678', '+81 ••• •••• 5678', '',
       d.status, '', NULL, NULL, d.tries, 12, CASE WHEN d.status = 'failed' THEN '' ELSE d.provider END,
       CASE WHEN d.status = 'failed' THEN '' ELSE 'SM' || md5(random()::text) END,
       CASE WHEN d.status IN ('failed', 'undelivered') THEN '30003' ELSE '' END,
       d.created_at, CASE WHEN d.status = 'failed' THEN NULL ELSE d.created_at + d.latency END,
       CASE WHEN d.status IN ('delivered', 'failed', 'undelivered') THEN d.created_at + interval '5 seconds' END,
       d.created_at
FROM threeds_challenge c JOIN threeds_transaction t ON t.acs_trans_id = c.transaction_id
CROSS JOIN LATERAL (
    SELECT t.created_at + interval '2 seconds' + (n - 1) * interval '40 seconds' AS created_at,
           CASE WHEN r < 0.90 THEN 'delivered' WHEN r < 0.97 THEN 'sent' WHEN r < 0.99 THEN 'undelivered' ELSE 'failed' END AS status,
           CASE WHEN random() < 0.93 THEN 'primary:twilio' ELSE 'fallback:twilio' END AS provider,
           CASE WHEN random() < 0.05 THEN 2 ELSE 1 END AS tries,
           (150 + power(random(), 4) * 4000) * interval '1 millisecond' AS latency
    FROM (SELECT n, random() AS r FROM generate_series(1, CASE WHEN random() < 0.10 THEN 2 ELSE 1 END) n) g
) d
WHERE c.method = 'sms_otp'
"""),
    ("sms attempts", """
INSERT INTO sms_smsattempt (
    delivery_id, number, provider_role, provider, account_sid, try_number, state, provider_message_id, provider_status,
    error_code, error_message, started_at, finished_at, duration_ms, task_id, callback_token, response_excerpt)
SELECT d.id, n, split_part(d.provider_or_primary, ':', 1), 'twilio', 'AC' || repeat('0', 32), n,
       CASE WHEN n < d.tries THEN 'failed_transient' WHEN d.status = 'failed' THEN 'failed_permanent' ELSE 'succeeded' END,
       CASE WHEN n < d.tries OR d.status = 'failed' THEN '' ELSE d.provider_message_id END,
       CASE WHEN n < d.tries OR d.status = 'failed' THEN '' ELSE d.status END,
       CASE WHEN n < d.tries THEN '20500' WHEN d.status = 'failed' THEN '21614' ELSE '' END, '',
       d.created_at + (n - 1) * interval '2 seconds', d.created_at + (n - 1) * interval '2 seconds' + dur,
       (extract(epoch FROM dur) * 1000)::int, '', md5(d.id::text || n::text), ''
FROM (SELECT *, CASE WHEN provider = '' THEN 'primary:twilio' ELSE provider END AS provider_or_primary FROM sms_smsdelivery) d
CROSS JOIN LATERAL generate_series(1, d.tries) n
-- "+ 0 * n" correlates the subquery with the row: without it random() is drawn once for all rows.
CROSS JOIN LATERAL (SELECT (120 + power(random(), 3) * 2500 + 0 * n) * interval '1 millisecond' AS dur) x
"""),
    ("rreq deliveries", """
INSERT INTO threeds_rreqdelivery (transaction_id, issuer_id, url, message, status, tries, max_tries, next_attempt_at,
                                  results_status, last_error, created_at, finished_at)
SELECT acs_trans_id, issuer_id, ds_url, jsonb_build_object('messageType', 'RReq', 'transStatus', trans_status),
       'succeeded', 1, 6, NULL, '01', '', finished_at, finished_at + interval '200 milliseconds'
FROM threeds_transaction WHERE ares_trans_status = 'C' AND trans_status <> ''
"""),
    ("rreq attempts", """
INSERT INTO threeds_rreqattempt (delivery_id, number, state, started_at, finished_at, duration_ms, status_code,
                                 results_status, error_code, error_message, error_class, response_excerpt, task_id)
SELECT id, 1, 'succeeded', created_at, finished_at, (20 + random() * 200)::int, 200, '01', '', '', '', '', ''
FROM threeds_rreqdelivery
"""),
    ("audit events", """
INSERT INTO audit_auditevent (issuer_id, acs_trans_id, kind, actor, object_type, object_id, data, created_at)
SELECT t.issuer_id, t.acs_trans_id, k.kind, k.actor, '', '', jsonb_build_object('transStatus', t.trans_status),
       t.created_at + k.delay
FROM threeds_transaction t
CROSS JOIN LATERAL (VALUES ('threeds.areq_received', 'ds', interval '0'), ('threeds.ares_sent', 'acs', interval '1 millisecond'),
                           ('threeds.creq_received', 'browser', interval '2 seconds'),
                           ('threeds.challenge_finished', 'acs', interval '40 seconds')) k(kind, actor, delay)
WHERE t.ares_trans_status = 'C'
"""),
    # As autovacuum leaves an insert-only table: statistics and the visibility map (index-only scans).
    ("vacuum analyze", "VACUUM ANALYZE"),
]


def fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.startswith("issuer_portal_bench"):
        sys.exit(f"refusing to drop {name}: the benchmark database's name starts with issuer_portal_bench")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def generate(*, rows: int, days: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from apps.issuers.models import Issuer

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    print(f"migrate: {time.monotonic() - started:.1f} s")
    for issuer_id, name in ISSUERS:
        Issuer.objects.create(issuer_id=issuer_id, name=name)
    params = {"rows": rows, "days": days, "words_a": MERCHANT_WORDS_A, "words_b": MERCHANT_WORDS_B}
    total = time.monotonic()
    with connection.cursor() as cursor:
        for label, sql in GENERATE:
            t0 = time.monotonic()
            cursor.execute(sql, params if "%(" in sql else None)
            count = cursor.rowcount if cursor.rowcount and cursor.rowcount > 0 else ""
            print(f"{label:16} {time.monotonic() - t0:7.1f} s  {count}")
    print(f"generated in {time.monotonic() - total:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("""SELECT relname, reltuples::bigint, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class
                          WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND reltuples > 1000
                          ORDER BY reltuples DESC""")
        for relname, n, size in cursor.fetchall():
            print(f"  {relname:28} {n:>10,} rows  {size}")


def explain_queries() -> None:
    """The analyst's queries as the views build them, each planned and run by PostgreSQL."""
    from datetime import timedelta

    from django.db import connection, reset_queries
    from django.utils import timezone

    from apps.analyst import dashboards, selectors
    from apps.analyst.selectors import TransactionFilters
    from apps.issuers.models import Issuer

    issuer = Issuer.objects.get(issuer_id="BENCHBANK1")
    scope = selectors.Scope(issuer=issuer)
    now = timezone.now()
    # A challenged transaction that fell back to SMS: the richest timeline.
    sample = (selectors.transaction_list(scope=scope, filters=TransactionFilters(fell_back=True, method="sms_otp"))
              .order_by("-created_at", "-acs_trans_id")[100:101].get())

    deep_cursor = selectors.Cursor.after(
        selectors.transaction_list(scope=scope, filters=TransactionFilters()).order_by("-created_at", "-acs_trans_id")[400_000]
    )

    cases = [
        ("first page, no filter", TransactionFilters(), None),
        ("deep page (row 400,000), no filter", TransactionFilters(), deep_cursor),
        ("last 24 hours", TransactionFilters(created_from=now - timedelta(days=1)), None),
        ("transStatus N", TransactionFilters(trans_status="N"), None),
        ("transStatus U (rare)", TransactionFilters(trans_status="U"), None),
        ("method oob", TransactionFilters(method="oob"), None),
        ("frictionless", TransactionFilters(method="frictionless"), None),
        ("fell back (any reason)", TransactionFilters(fell_back=True), None),
        ("fell back: device_blocked", TransactionFilters(fell_back=True, fallback_reason="device_blocked"), None),
        ("did not fall back, method sms_otp", TransactionFilters(fell_back=False, method="sms_otp"), None),
        ("merchant starts with 'Kyoto Bo'", TransactionFilters(merchant="Kyoto Bo"), None),
        ("merchant contains 'market 7'", TransactionFilters(merchant="market 7", merchant_match="contains"), None),
        ("merchant contains 'Hotel 4' (rare)", TransactionFilters(merchant="Silver Hotel 4", merchant_match="contains"), None),
        ("card last4 4242", TransactionFilters(last4="4242"), None),
        ("amount JPY 250,000–260,000", TransactionFilters(currency="392", amount_min=250000, amount_max=260000), None),
        ("amount EUR ≥ 1,500.00", TransactionFilters(currency="978", amount_min=150000), None),
        ("acsTransID exact", TransactionFilters(acs_trans_id=sample.acs_trans_id), None),
        ("dsTransID exact", TransactionFilters(ds_trans_id=sample.ds_trans_id), None),
        ("status N + method sms_otp + last 7 days", TransactionFilters(trans_status="N", method="sms_otp",
                                                                        created_from=now - timedelta(days=7)), None),
        ("last4 + status Y", TransactionFilters(last4="4242", trans_status="Y"), None),
    ]
    for label, filters, cursor in cases:
        qs = selectors.transaction_page_queryset(scope=scope, filters=filters, cursor=cursor, size=50)
        explain(label, qs)

    small = selectors.Scope(issuer=Issuer.objects.get(issuer_id="BENCHBANK3"))  # 5 % of the rows
    small_deep = selectors.Cursor.after(
        selectors.transaction_list(scope=small, filters=TransactionFilters()).order_by("-created_at", "-acs_trans_id")[30_000]
    )
    for label, scoped, filters, cursor in [
        ("small issuer (5 %), first page", small, TransactionFilters(), None),
        ("small issuer (5 %), deep page (row 30,000)", small, TransactionFilters(), small_deep),
        ("small issuer (5 %), method oob", small, TransactionFilters(method="oob"), None),
        ("superuser, every issuer, first page", selectors.Scope(issuer=None), TransactionFilters(), None),
    ]:
        explain(label, selectors.transaction_page_queryset(scope=scoped, filters=filters, cursor=cursor, size=50))

    timeline_started = time.monotonic()
    entries = selectors.transaction_timeline(tx=selectors.transaction_get(scope=scope, acs_trans_id=sample.acs_trans_id))
    print(f"\n### transaction page timeline ({len(entries)} entries): {1000 * (time.monotonic() - timeline_started):.1f} ms")

    for granularity, days in (("day", 7), ("hour", 7), ("day", 30)):
        reset_queries()
        t0 = time.monotonic()
        with CaptureQueries() as captured:
            dashboards.dashboard(scope=scope, start=now - timedelta(days=days), end=now, granularity=granularity)
        print(f"\n### dashboard, {days} days by {granularity}: {1000 * (time.monotonic() - t0):.0f} ms in {len(captured)} queries")
        for sql, ms in captured:
            print(f"  {ms:8.1f} ms  {sql[:150]}")
    if os.environ.get("EXPLAIN_DASHBOARD"):
        for label, qs in dashboards.dashboard_querysets(scope=scope, start=now - timedelta(days=7), end=now, granularity="day"):
            explain(f"dashboard: {label}", qs)

    t0 = time.monotonic()
    rows = 0
    for _ in selectors.transaction_export_rows(scope=scope, filters=TransactionFilters(created_from=now - timedelta(days=7))):
        rows += 1
    print(f"\n### CSV export of the last 7 days: {rows:,} rows in {time.monotonic() - t0:.1f} s "
          f"({rows / max(time.monotonic() - t0, 1e-9):,.0f} rows/s)")
    connection.close()


class CaptureQueries:
    """Every SQL statement run inside the block, with its time."""

    def __enter__(self):
        from django.db import connection

        self.queries = []
        self._cm = connection.execute_wrapper(self._wrap)
        self._cm.__enter__()
        return self.queries

    def _wrap(self, execute, sql, params, many, context):
        t0 = time.monotonic()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((" ".join(sql.split()), 1000 * (time.monotonic() - t0)))

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def explain(label: str, qs) -> None:
    plan = qs.explain(analyze=True, buffers=True)
    timing = [line for line in plan.splitlines() if line.startswith("Execution Time")]
    print(f"\n### {label} — {timing[0] if timing else ''}\n")
    print(plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keep", action="store_true", help="Keep the database as it is; only explain.")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    os.environ.update(BENCH_ENV, DATABASE_URL=url)
    if not args.keep:
        fresh_database(url)
    import django

    django.setup()
    if not args.keep:
        generate(rows=args.rows, days=args.days)
    if not args.no_explain:
        explain_queries()


if __name__ == "__main__":
    main()
