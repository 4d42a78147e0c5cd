"""Health: /healthz says the process is up; /readyz that the database and broker answer."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.core.exceptions import error_response


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "in-process"
    from issuer_portal.celery import app

    # A fresh connection, not the pool's: readiness is about the broker now.
    with app.connection_for_write(url=settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


@never_cache
@require_GET
def readyz(request):
    checks, ready = {}, True
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # report what is down, never the details of why
            checks[name] = f"unavailable ({exc.__class__.__name__})"
            ready = False
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


def _is_machine_path(request) -> bool:
    return request.path.startswith(("/api/", "/sdk/", "/3ds/", "/webhooks/"))


def not_found(request, exception=None):
    if _is_machine_path(request):
        return error_response(404, "not_found", "Not found.")
    return render(request, "404.html", status=404)


def server_error(request):
    if _is_machine_path(request):
        return error_response(500, "internal_error", "An internal error occurred.")
    return render(request, "500.html", status=500)
