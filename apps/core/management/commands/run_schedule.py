"""Run the beat schedule in this process, for the embedded default that has no broker.

With a broker, production runs `celery -A issuer_portal beat` and workers instead. Without one
(`make run`), this keeps the scheduled work real: challenge timeouts, OTP expiry, resuming lost
deliveries — each task executed here, in turn, when it is due.

It logs a run only when the task did something (a count above zero, a task that failed): about
27 runs a minute mostly find nothing to do, and a log line for each would bury what happened.
"""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from issuer_portal.celery import app

logger = logging.getLogger(__name__)


def did_something(result) -> bool:
    """A task's return value says what it did: a count, counts per channel, or None."""
    if isinstance(result, dict):
        return any(did_something(value) for value in result.values())
    if isinstance(result, (list, tuple, set)):
        return any(did_something(value) for value in result)
    return bool(result)


class Command(BaseCommand):
    help = "Run the CELERY_BEAT_SCHEDULE tasks in-process (development without a broker)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every task once, then exit.")

    def handle(self, *args, **options):
        app.loader.import_default_modules()  # registers every app's tasks.py, as a worker does
        # Celery logs every task it runs ("Task … succeeded") at INFO; here only what changed is
        # logged (below). Its warnings and errors (a task that raised) still show.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        entries = {name: (entry["task"], float(entry["schedule"])) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
        next_run = {name: 0.0 for name in entries}
        self.stdout.write(f"Running {len(entries)} scheduled tasks in-process: {', '.join(sorted(entries))}")
        while True:
            now = time.monotonic()
            for name, (task_name, every) in entries.items():
                if now < next_run[name]:
                    continue
                next_run[name] = now + every
                try:
                    result = app.tasks[task_name].apply()
                except Exception:  # one failing task must not stop the others
                    logger.exception("Scheduled task %s failed", task_name)
                    continue
                if result.successful() and did_something(result.result):
                    logger.info("%s: %s", name, result.result)
            if options["once"]:
                return
            time.sleep(1)
