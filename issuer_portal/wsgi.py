import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issuer_portal.settings")
application = get_wsgi_application()


def _refuse_to_start_on_check_errors() -> None:
    # gunicorn never runs the system checks (only manage.py does): without this, a model the
    # AReq's fast path cannot write (threeds.E001) would start serving and answer every AReq U.
    from django.core.checks import ERROR, run_checks
    from django.core.management.base import SystemCheckError

    errors = [message for message in run_checks() if message.level >= ERROR and not message.is_silenced()]
    if errors:
        raise SystemCheckError("The system checks failed; not starting:\n" + "\n".join(str(e) for e in errors))


_refuse_to_start_on_check_errors()
