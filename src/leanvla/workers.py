"""Jobs run in spawned worker processes (one rendering context each), results in job order.

An executor rather than a multiprocessing Pool: a worker that dies (a failed start, a crash in the
simulator) breaks the executor with an error, where a Pool would respawn it or wait forever.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from leanvla.cores import cores_per_process

DEFAULT_WORKERS = 2


def worker_count(asked: int | None) -> int:
    """`--workers` as asked; by default DEFAULT_WORKERS, or fewer where this process may use fewer
    cores: a second process on one core only waits its turn, and costs its start."""
    return asked if asked is not None else min(DEFAULT_WORKERS, cores_per_process())


def map_in_workers(
    fn: Callable, jobs: Iterable, workers: int, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator:
    """fn(job) for every job, in `workers` spawned processes (spawn: each gets a fresh process and
    its own EGL context, which fork would share), yielded in the jobs' order."""
    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=initializer, initargs=initargs
    )
    try:
        yield from pool.map(fn, jobs)
    except BrokenProcessPool as exc:
        raise RuntimeError(
            "a worker process died (its own error is printed above); `--workers 1` runs the jobs in "
            "this process, where the error is raised directly"
        ) from exc
    except BaseException:  # Ctrl-C, or the caller stopped reading: no result left is wanted
        # Stopped outright: a pool interrupted mid-way can leave its workers waiting forever for a
        # shutdown message. (Python 3.14's `terminate_workers` does this.)
        for process in list((pool._processes or {}).values()):
            process.terminate()
        raise
    finally:  # on an error, jobs not yet started are dropped rather than run to the end
        pool.shutdown(wait=True, cancel_futures=True)
