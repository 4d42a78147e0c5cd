"""Run a function in N threads at once, each with its own database connection."""

import threading

from django.db import connection


def run_parallel(n: int, fn) -> list:
    """fn(i) for i in range(n), started together behind a barrier; results in index order."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # a crash in a thread is a failure too, reported in its slot
            results[i] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
