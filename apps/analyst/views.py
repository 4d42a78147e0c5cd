"""The fraud analysts' workspace (SPEC §5.6): server-rendered pages, read-only except an
analyst's label and note on a transaction (POST, CSRF, audited).

Who may enter: active staff users of an issuer whose role reads transactions (Analyst, Operator,
Issuer admin all hold threeds.view_transaction), each seeing only their issuer's data; superusers
see every issuer's, with an issuer filter. Anonymous users go to the admin's login page; a staff
user without an issuer (a misconfiguration) or without the permission gets 403.

Every transaction page viewed, export and export download is recorded in the access log
(AccessRecord, one INSERT), which issuer admins and superusers read in the admin.

Exports: below ANALYST_STREAM_MAX_ROWS (counted with a bounded query) the CSV is streamed; above,
the analyst confirms a background job (ExportJob) and downloads the file from its page when ready.
Either way the file's last line is `# end of export: N rows`: a file without it was cut short.

Every page carries the site's strict Content-Security-Policy (apps.core.middleware; no inline
script or style: the charts are SVG styled by classes from analyst.css) and is never cached.
"""

from __future__ import annotations

import csv
import uuid
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from apps.analyst import charts, dashboards, selectors, services
from apps.analyst.forms import DashboardForm, LabelForm, TransactionFilterForm
from apps.analyst.models import AccessRecord, ExportJob
from apps.analyst.selectors import Scope, TransactionFilters
from apps.analyst.services import csv_cell  # noqa: F401 (kept importable from here)
from apps.core import display
from apps.core.admin_scoping import admin_actor
from apps.core.exceptions import NotFound
from apps.core.pagination import Cursor, InvalidCursor
from apps.threeds import emv
from apps.threeds.explanation import explain
from apps.threeds.method import method_status_text

PERMISSION = "threeds.view_transaction"


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


def analyst_view(view=None, *, methods=("GET", "HEAD")):
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if request.method == "POST":
                    return _secure(HttpResponse(status=401))  # a login page cannot replay a POST
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

        return require_http_methods(list(methods))(wrapper)

    return decorate(view) if view is not None else decorate


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
        error = _("Fix the filters below.")
    else:
        scope = _narrowed(scope, form)
        filters = form.filters() if form.is_bound else TransactionFilters()
        cursor = None
        if request.GET.get("cursor"):
            try:
                cursor = Cursor.decode(request.GET["cursor"])
            except InvalidCursor:
                error = _("That page link is no longer valid; showing the newest transactions.")
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
    label = getattr(tx, "label", None)
    return {
        "tx": tx,
        "amount": display.amount(tx.purchase_amount, tx.purchase_currency, tx.purchase_exponent),
        "method": challenge.get_method_display() if challenge else _("frictionless"),
        "fallback_reason": challenge.fallback_reason if challenge else "",
        "status": _status_text(tx),
        "reason": emv.reason_text(tx.trans_status_reason) if tx.trans_status_reason else "",
        "label": label,
    }


def _status_text(tx) -> str:
    if tx.trans_status:
        return emv.trans_status_text(tx.trans_status)
    return gettext("C — challenge running") if tx.ares_trans_status in emv.CHALLENGED_ARES_STATUSES else "—"


# ---------------------------------------------------------------- one transaction


@analyst_view
def transaction_detail_view(request, scope: Scope, acs_trans_id: str):
    tx = selectors.transaction_get(scope=scope, acs_trans_id=acs_trans_id)
    services.access_record(issuer_id=tx.issuer_id, user=request.user, kind=AccessRecord.VIEW, acs_trans_id=tx.acs_trans_id)
    label = getattr(tx, "label", None)
    form = LabelForm(initial={"label": label.label, "note": label.note} if label else None)
    return render(request, "analyst/transaction_detail.html", _detail_context(request, tx, form))


@analyst_view(methods=("POST",))
def transaction_label_view(request, scope: Scope, acs_trans_id: str):
    """An analyst's judgement on the transaction: confirmed fraud or genuine, with a note."""
    tx = selectors.transaction_get(scope=scope, acs_trans_id=acs_trans_id)
    form = LabelForm(request.POST)
    if not form.is_valid():
        return render(request, "analyst/transaction_detail.html", _detail_context(request, tx, form), status=400)
    services.transaction_label_set(
        tx=tx, label=form.cleaned_data["label"], note=form.cleaned_data["note"], user=request.user, actor=admin_actor(request),
    )
    messages.success(request, _("Label saved."))
    return HttpResponseRedirect(reverse("analyst:transaction", args=[tx.acs_trans_id]) + "#label", status=303)


def _admin_links(user, tx) -> list[tuple[str, str]]:
    """Links to the admin pages the user may open there (the admin checks again, and scopes)."""
    links = []
    if user.is_staff and user.has_perm("threeds.view_transaction"):
        links.append((gettext("Transaction in admin"), reverse("admin:threeds_transaction_change", args=[tx.pk])))
    if tx.card is not None and user.is_staff and user.has_perm("cards.view_card"):
        links.append((gettext("Card in admin"), reverse("admin:cards_card_change", args=[tx.card.pk])))
    if tx.card is not None and user.is_staff and user.has_perm("cards.view_cardholder"):
        links.append((gettext("Cardholder in admin"), reverse("admin:cards_cardholder_change", args=[tx.card.cardholder_id])))
    return links


def _detail_context(request, tx, form) -> dict:
    return {
        "tx": tx,
        "label": getattr(tx, "label", None),
        "label_form": form,
        "admin_links": _admin_links(request.user, tx),
        "trans_status_text": _status_text(tx),
        "ares_status_text": emv.trans_status_text(tx.ares_trans_status),
        "reason_text": emv.reason_text(tx.trans_status_reason),
        "explanation": explain(tx),
        "three_ds_method": method_status_text(tx.three_ds_method),
        "merchant_country": display.country_name(tx.merchant_country_code),
        "amount": display.amount(tx.purchase_amount, tx.purchase_currency, tx.purchase_exponent),
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


def _since(start, at) -> str:
    """Time from the AReq, as analysts read a timeline: +1.234 s."""
    seconds = (at - start).total_seconds()
    return f"{'+' if seconds >= 0 else '−'}{abs(seconds):,.3f} s"


# ---------------------------------------------------------------- dashboard


@analyst_view
def dashboard_view(request, scope: Scope):
    form = DashboardForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return render(request, "analyst/dashboard.html", {"form": form, "error": _("Fix the period below.")})
    scope = _narrowed(scope, form)
    start, end, granularity = form.period()
    board = dashboards.dashboard(scope=scope, start=start, end=end, granularity=granularity)
    return render(request, "analyst/dashboard.html", {"form": form, **_dashboard_context(board)})


def _dashboard_context(board: dashboards.Dashboard) -> dict:
    b, g = board.buckets, board.granularity
    period = charts.period_label(board.start, board.end, g)
    outcome_rates = board.outcome_rates
    unit = gettext("hour") if g == "hour" else gettext("day")
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
        "labels": [(label, text, next(s for s in board.labels if s.label == label)) for label, text in _label_choices()],
        "volume_chart": charts.stacked_bars(
            title=gettext("Transactions: frictionless and challenged"), desc=gettext("Number of authentications per %(unit)s, %(period)s.") % {"unit": unit, "period": period},
            buckets=b, granularity=g,
            series=[(gettext("frictionless"), "s0", board.frictionless), (gettext("challenged"), "s1", board.challenged)],
        ),
        "outcome_chart": charts.stacked_bars(
            title=gettext("Outcomes (transStatus)"), desc=gettext("Final transStatus per %(unit)s; C: challenge still running. %(period)s.") % {"unit": unit, "period": period},
            buckets=b, granularity=g,
            series=[(s, outcome_css[s], board.outcomes[s]) for s in dashboards.OUTCOMES],
        ),
        "rate_chart": charts.lines(
            title=gettext("Rates"), desc=gettext("Approval (Y), fallback to SMS among OOB challenges, SMS success, per %(unit)s. %(period)s.") % {"unit": unit, "period": period},
            buckets=b, granularity=g,
            series=[(gettext("Y rate"), "s-y", outcome_rates["Y"]), (gettext("fallback rate"), "s-n", board.fallback_rate),
                    (gettext("SMS success rate"), "s1", board.sms_success_rate)],
        ),
        "reason_chart": charts.hbars(
            title=gettext("Fallback reasons"), desc=gettext("OOB challenges that fell back to SMS, by reason. %(period)s.") % {"period": period},
            items=board.fallback_reasons, css="s-n",
        ),
        "provider_chart": charts.hbars(
            title=gettext("SMS tries accepted, by provider"), desc=gettext("Share of SMS tries the provider accepted. %(period)s.") % {"period": period},
            items=[(p.provider, p.acceptance_rate or 0.0) for p in board.providers], unit="%", css="s1",
        ),
        "latency_chart": charts.hbars(
            title=gettext("SMS provider call latency p95, by provider"), desc=gettext("95th percentile of the provider call duration. %(period)s.") % {"period": period},
            items=[(p.provider, p.call_p95_ms or 0.0) for p in board.providers], unit=" ms", css="s0",
        ),
    }


# ---------------------------------------------------------------- CSV export


def _label_choices():
    from apps.analyst.models import TransactionLabel

    return TransactionLabel.LABELS


class _Echo:
    def write(self, value):
        return value


def _export_filters(request, scope: Scope):
    """(scope, filters) of an export request, or an error response."""
    form = TransactionFilterForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return None, None, _plain(400, gettext("Invalid filters: %(errors)s") % {"errors": errors})
    scope = _narrowed(scope, form)
    if scope.issuer is None:
        # An export is recorded in its issuer's audit trail: a superuser chooses the issuer.
        return None, None, _plain(400, gettext("Choose an issuer to export its transactions."))
    return scope, form.filters() if form.is_bound else TransactionFilters(), None


@analyst_view
def transaction_export_view(request, scope: Scope):
    scope, filters, error = _export_filters(request, scope)
    if error is not None:
        return error
    limit = settings.ANALYST_STREAM_MAX_ROWS
    # Bounded: counting stops at the threshold, so a 90-day filter costs no full count.
    if selectors.transaction_count_upto(scope=scope, filters=filters, limit=limit) >= limit:
        query = _query_without(request)
        return render(request, "analyst/export_large.html", {
            "limit": limit, "filters": filters.describe(),
            "create_url": reverse("analyst:export_create") + ("?" + urlencode(query) if query else ""),
        })
    actor, export_id = admin_actor(request), str(uuid.uuid4())
    services.export_started_record(issuer=scope.issuer, actor=actor, filters=filters, export_id=export_id)
    services.access_record(issuer_id=scope.issuer.pk, user=request.user, kind=AccessRecord.EXPORT,
                           export_id=export_id, filters=filters.describe())

    def stream():
        writer = csv.writer(_Echo())
        rows, completed = 0, False
        try:
            yield writer.writerow(selectors.EXPORT_HEADER)
            for values in selectors.transaction_export_rows(scope=scope, filters=filters):
                line = writer.writerow([services.csv_cell(v) for v in values])
                rows += 1  # counted when handed over: a download stopped here had this row
                yield line
            # Only a complete export ends with this line: a cut download is recognisable.
            yield writer.writerow(services.export_trailer(rows))
            completed = True
        finally:
            services.export_finished_record(
                issuer=scope.issuer, actor=actor, filters=filters, export_id=export_id, rows=rows, completed=completed
            )

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="transactions-{scope.issuer.issuer_id}-{stamp}.csv"'
    return response


@analyst_view(methods=("POST",))
def export_create_view(request, scope: Scope):
    scope, filters, error = _export_filters(request, scope)
    if error is not None:
        return error
    job = services.export_job_create(issuer=scope.issuer, user=request.user, actor=admin_actor(request), filters=filters)
    return HttpResponseRedirect(reverse("analyst:export_job", args=[job.pk]), status=303)


def _jobs(scope: Scope):
    jobs = ExportJob.objects.select_related("issuer")
    return jobs if scope.issuer is None else jobs.filter(issuer=scope.issuer)


def _job_get(scope: Scope, job_id) -> ExportJob:
    job = _jobs(scope).filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such export.")
    return job


@analyst_view
def export_list_view(request, scope: Scope):
    return render(request, "analyst/export_list.html", {
        "jobs": _jobs(scope).order_by("-created_at")[:50], "show_issuer": request.user.is_superuser,
    })


@analyst_view
def export_job_view(request, scope: Scope, job_id: uuid.UUID):
    job = _job_get(scope, job_id)
    return render(request, "analyst/export_job.html", {
        "job": job, "show_issuer": request.user.is_superuser,
        "open": job.status in (ExportJob.PENDING, ExportJob.RUNNING),
        "filters": sorted(job.filters.items()),
    })


@analyst_view
def export_download_view(request, scope: Scope, job_id: uuid.UUID):
    job = _job_get(scope, job_id)
    path = services.export_file_path(job)
    # Only a done job's file: it was renamed into place complete; a .part file is never served.
    if not job.downloadable or not path.exists():
        raise NotFound("This export is not ready.")
    services.access_record(issuer_id=job.issuer_id, user=request.user, kind=AccessRecord.DOWNLOAD,
                           export_id=job.pk, filters=job.filters, rows=job.rows)
    stamp = job.created_at.strftime("%Y%m%dT%H%M%SZ")
    return FileResponse(open(path, "rb"), as_attachment=True, content_type="text/csv; charset=utf-8",
                        filename=f"transactions-{job.issuer.issuer_id}-{stamp}.csv")


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
