"""Tasks used only by the benchmarks (loaded into a worker with `-I bench.tasks`).

With BENCH_PROFILE_DIR set, each pool process of the worker profiles itself (cProfile) from its
start to its end and writes `<dir>/worker-<pid>.prof`: where a worker's time goes, Celery's own
work included.
"""

import json
import os
import time

import redis
from celery import shared_task
from celery.signals import worker_process_init, worker_process_shutdown

DONE_KEY = "bench:done"
_redis = None
_profile = None


@shared_task(name="bench.noop", ignore_result=True)
def noop(sent: float) -> None:
    """The empty task: records when it ran, which is all the reference needs."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    _redis.rpush(DONE_KEY, json.dumps({"sent": sent, "done": time.time()}))


@worker_process_init.connect
def _start_profile(**kwargs) -> None:
    global _profile
    if os.environ.get("BENCH_PROFILE_DIR"):
        import cProfile

        _profile = cProfile.Profile()
        _profile.enable()


@worker_process_shutdown.connect
def _write_profile(**kwargs) -> None:
    if _profile is not None:
        _profile.disable()
        _profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"], f"worker-{os.getpid()}.prof"))
