"""The fraud analysts' workspace (SPEC §5.6): server-rendered pages, read-only.

Who may enter: active staff users of an issuer whose role reads transactions (Analyst, Operator,
Issuer admin all hold threeds.view_transaction), each seeing only their issuer's data; superusers
see every issuer's, with an issuer filter. Anonymous users go to the admin's login page; a staff
user without an issuer (a misconfiguration) or without the permission gets 403.

Every page carries the site's strict Content-Security-Policy (apps.core.middleware; no inline
script or style: the charts are SVG styled by classes from analyst.css) and is never cached.
"""

from __future__ import annotations

import csv
import uuid
from datetime import datetime
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from apps.analyst import charts, dashboards, selectors, services
from apps.analyst.forms import DashboardForm, TransactionFilterForm
from apps.analyst.selectors import Scope, TransactionFilters
from apps.core.admin_scoping import admin_actor
from apps.core.exceptions import NotFound
from apps.core.pagination import Cursor, InvalidCursor

PERMISSION = "threeds.view_transaction"
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Denied(Exception):
    pass


def user_scope(user) -> Scope:
    """The data this user may read, or Denied."""
    if not (user.is_active and user.is_staff):
        raise Denied
    if user.is_superuser:
        return Scope(issuer=None)
    if getattr(user, "issuer_id", None) is None or not user.has_perm(PERMISSION):
        raise Denied
    return Scope(issuer=user.issuer)


def _secure(response: HttpResponse) -> HttpResponse:
    # The strict Content-Security-Policy comes from ContentSecurityPolicyMiddleware (site-wide).
    add_never_cache_headers(response)
    return response


def analyst_view(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        try:
            scope = user_scope(request.user)
        except Denied:
            return _secure(render(request, "analyst/forbidden.html", status=403))
        try:
            response = view(request, scope, *args, **kwargs)
        except NotFound:
            response = render(request, "analyst/not_found.html", status=404)
        return _secure(response)

    return require_safe(wrapper)


def _narrowed(scope: Scope, form) -> Scope:
    """A superuser's issuer filter narrows the scope; nobody else can widen theirs."""
    if scope.issuer is None:
        issuer = form.chosen_issuer()
        if issuer is not None:
            return Scope(issuer=issuer)
    return scope


def _query_without(request, *names: str) -> dict:
    return {k: v for k, v in request.GET.items() if k not in names and v != ""}


# ---------------------------------------------------------------- list


@analyst_view
def transaction_list_view(request, scope: Scope):
    form = TransactionFilterForm(request.GET or None, user=request.user)
    page, error = None, None
    if form.is_bound and not form.is_valid():
        error = "Fix the filters below."
    else:
        scope = _narrowed(scope, form)
        filters = form.filters() if form.is_bound else TransactionFilters()
        cursor = None
        if request.GET.get("cursor"):
            try:
                cursor = Cursor.decode(request.GET["cursor"])
            except InvalidCursor:
                error = "That page link is no longer valid; showing the newest transactions."
        page = selectors.transaction_page(scope=scope, filters=filters, cursor=cursor)
    base = _query_without(request, "cursor")
    context = {
        "form": form,
        "page": page,
        "rows": [_row(tx) for tx in page.rows] if page else [],
        "error": error,
        "show_issuer": request.user.is_superuser,
        "next_url": _page_url(base, page.next_cursor) if page and page.next_cursor else None,
        "previous_url": _page_url(base, page.previous_cursor) if page and page.previous_cursor else None,
        "first_url": _page_url(base, None) if request.GET.get("cursor") else None,
        "export_url": reverse("analyst:export") + ("?" + urlencode(base) if base else ""),
        "can_export": scope.issuer is not None,
    }
    return render(request, "analyst/transaction_list.html", context)


def _page_url(query: dict, cursor: Cursor | None) -> str:
    params = dict(query)
    if cursor is not None:
        params["cursor"] = cursor.encode()
    return reverse("analyst:transactions") + ("?" + urlencode(params) if params else "")


def _row(tx) -> dict:
    challenge = getattr(tx, "challenge", None)
    return {
        "tx": tx,
        "amount": selectors.amount_text(tx),
        "method": challenge.get_method_display() if challenge else "frictionless",
        "fallback_reason": challenge.fallback_reason if challenge else "",
        "status": tx.trans_status or ("C (running)" if tx.ares_trans_status == "C" else "—"),
    }


# ---------------------------------------------------------------- one transaction


@analyst_view
def transaction_detail_view(request, scope: Scope, acs_trans_id: str):
    tx = selectors.transaction_get(scope=scope, acs_trans_id=acs_trans_id)
    context = {
        "tx": tx,
        "amount": selectors.amount_text(tx),
        "challenge": selectors.challenge_summary(tx=tx),
        "authentication_value": selectors.masked_authentication_value(tx.authentication_value),
        "rules": [
            {"rule": r.get("rule", "?"), "weight": r.get("weight", 0),
             "detail": ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("rule", "weight"))}
            for r in (tx.risk_rules or []) if isinstance(r, dict)
        ],
        "timeline": [(entry, _since(tx.created_at, entry.at)) for entry in selectors.transaction_timeline(tx=tx)],
        "show_issuer": request.user.is_superuser,
    }
    return render(request, "analyst/transaction_detail.html", context)


def _since(start, at) -> str:
    """Time from the AReq, as analysts read a timeline: +1.234 s."""
    seconds = (at - start).total_seconds()
    return f"{'+' if seconds >= 0 else '−'}{abs(seconds):,.3f} s"


# ---------------------------------------------------------------- dashboard


@analyst_view
def dashboard_view(request, scope: Scope):
    form = DashboardForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return render(request, "analyst/dashboard.html", {"form": form, "error": "Fix the period below."})
    scope = _narrowed(scope, form)
    start, end, granularity = form.period()
    board = dashboards.dashboard(scope=scope, start=start, end=end, granularity=granularity)
    return render(request, "analyst/dashboard.html", {"form": form, **_dashboard_context(board)})


def _dashboard_context(board: dashboards.Dashboard) -> dict:
    b, g = board.buckets, board.granularity
    period = charts.period_label(board.start, board.end, g)
    outcome_rates = board.outcome_rates
    rows = []
    for i, at in enumerate(b):
        rows.append({
            "label": charts.bucket_label(at, g),
            "frictionless": board.frictionless[i], "challenged": board.challenged[i],
            "outcomes": [board.outcomes[s][i] for s in dashboards.OUTCOMES],
            "outcome_rates": [outcome_rates[s][i] for s in dashboards.OUTCOMES],
            "oob_started": board.oob_started[i], "fell_back": board.fell_back[i], "fallback_rate": board.fallback_rate[i],
            "sms_success": board.sms_success[i], "sms_failure": board.sms_failure[i], "sms_pending": board.sms_pending[i],
            "sms_success_rate": board.sms_success_rate[i],
        })
    outcome_css = {"Y": "s-y", "A": "s-a", "N": "s-n", "U": "s-u", "R": "s-r", "C": "s-c"}
    return {
        "board": board,
        "period": period,
        "totals": board.totals(),
        "rows": rows,
        "outcome_names": dashboards.OUTCOMES,
        "outcome_css": [outcome_css[s] for s in dashboards.OUTCOMES],
        "volume_chart": charts.stacked_bars(
            title="Transactions: frictionless and challenged", desc=f"Number of authentications per {g}, {period}.",
            buckets=b, granularity=g,
            series=[("frictionless", "s0", board.frictionless), ("challenged", "s1", board.challenged)],
        ),
        "outcome_chart": charts.stacked_bars(
            title="Outcomes (transStatus)", desc=f"Final transStatus per {g}; C: challenge still running. {period}.",
            buckets=b, granularity=g,
            series=[(s, outcome_css[s], board.outcomes[s]) for s in dashboards.OUTCOMES],
        ),
        "rate_chart": charts.lines(
            title="Rates", desc=f"Approval (Y), fallback to SMS among OOB challenges, SMS success, per {g}. {period}.",
            buckets=b, granularity=g,
            series=[("Y rate", "s-y", outcome_rates["Y"]), ("fallback rate", "s-n", board.fallback_rate),
                    ("SMS success rate", "s1", board.sms_success_rate)],
        ),
        "reason_chart": charts.hbars(
            title="Fallback reasons", desc=f"OOB challenges that fell back to SMS, by reason. {period}.",
            items=board.fallback_reasons, css="s-n",
        ),
        "provider_chart": charts.hbars(
            title="SMS tries accepted, by provider", desc=f"Share of SMS tries the provider accepted. {period}.",
            items=[(p.provider, p.acceptance_rate or 0.0) for p in board.providers], unit="%", css="s1",
        ),
        "latency_chart": charts.hbars(
            title="SMS provider call latency p95, by provider", desc=f"95th percentile of the provider call duration. {period}.",
            items=[(p.provider, p.call_p95_ms or 0.0) for p in board.providers], unit=" ms", css="s0",
        ),
    }


# ---------------------------------------------------------------- CSV export


class _Echo:
    def write(self, value):
        return value


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@analyst_view
def transaction_export_view(request, scope: Scope):
    form = TransactionFilterForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return _plain(400, "Invalid filters: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    scope = _narrowed(scope, form)
    if scope.issuer is None:
        # An export is recorded in its issuer's audit trail: a superuser chooses the issuer.
        return _plain(400, "Choose an issuer to export its transactions.")
    filters = form.filters() if form.is_bound else TransactionFilters()
    actor, export_id = admin_actor(request), str(uuid.uuid4())
    services.export_started_record(issuer=scope.issuer, actor=actor, filters=filters, export_id=export_id)

    def stream():
        writer = csv.writer(_Echo())
        rows, completed = 0, False
        try:
            yield writer.writerow(selectors.EXPORT_HEADER)
            for values in selectors.transaction_export_rows(scope=scope, filters=filters):
                line = writer.writerow([csv_cell(v) for v in values])
                rows += 1  # counted when handed over: a download stopped here had this row
                yield line
            completed = True
        finally:
            services.export_finished_record(
                issuer=scope.issuer, actor=actor, filters=filters, export_id=export_id, rows=rows, completed=completed
            )

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="transactions-{scope.issuer.issuer_id}-{stamp}.csv"'
    return response


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
