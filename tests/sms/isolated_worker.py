"""A Celery worker on its own broker key prefix (SMS_TEST_BROKER_PREFIX).

Tests kill it and give it a short visibility timeout; on its own prefix neither touches the
messages of the session's worker (or of anyone else's run on the same Redis).

    python -m tests.sms.isolated_worker -n NAME -Q sms ...
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issuer_portal.settings_test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from issuer_portal.celery import app  # noqa: E402

app.conf.broker_transport_options = {
    **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "global_keyprefix": os.environ["SMS_TEST_BROKER_PREFIX"],
    # Look for messages of dead workers every second, not every 100 s.
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

if __name__ == "__main__":
    app.worker_main(["worker", *sys.argv[1:]])
