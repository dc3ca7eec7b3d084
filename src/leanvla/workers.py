"""Jobs run in spawned worker processes (one rendering context each), results in job order.

An executor rather than a multiprocessing Pool: a worker that dies (a failed start, a crash in the
simulator) breaks the executor with an error, where a Pool would respawn it or wait forever.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import resource_tracker

from leanvla.cores import cores_per_process
from leanvla.memory import available_memory

# A worker's peak memory beside what its policy's weights take: 463-510 MB measured (PyTorch,
# MuJoCo, one env with its rendering context at 64 x 64: `leanvla eval` of small and tiny
# policies, `leanvla data metaworld` of MT50: docs/results/worker_memory.md), with room for larger
# cameras.
WORKER_MEMORY = 768 << 20


def worker_count(asked: int | None, threads: int = 1, each: int = WORKER_MEMORY) -> int:
    """`--workers` as asked; by default as many as the cores this process may use hold workers
    of `threads` threads, fewer where the memory it may still take holds fewer of `each` bytes,
    and at least 1 (this process: no worker to start)."""
    if asked is not None:
        return asked
    fit = cores_per_process() // threads
    room = available_memory()
    return max(1, fit if room is None else min(fit, room // each))


def map_in_workers(
    fn: Callable, jobs: Iterable, workers: int, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator:
    """fn(job) for every job, in `workers` spawned processes (spawn: each gets a fresh process and
    its own EGL context, which fork would share), yielded in the jobs' order."""
    _start_resource_tracker_deaf_to_hangups()
    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=initializer, initargs=initargs
    )
    try:
        with _ctrl_c_ignored():  # every job submitted at once, so every worker starts here
            results = [pool.submit(fn, job) for job in jobs]
        for result in results:  # not pool.map: stopped, it cancels the jobs left (see below)
            yield result.result()
    except BrokenProcessPool as exc:
        raise RuntimeError(
            "a worker process died (its own error is printed above); `--workers 1` runs the jobs in "
            "this process, where the error is raised directly"
        ) from exc
    except (KeyboardInterrupt, GeneratorExit, SystemExit):  # Ctrl-C, or the caller stopped reading
        # Stopped outright: a pool interrupted mid-way can leave its workers waiting forever for a
        # shutdown message. (Python 3.14's `terminate_workers` does this.) Not on a job's own error:
        # the workers are sound then, and killing them made Python 3.11's pool thread fail on the
        # futures already cancelled, printing a traceback beside the error.
        for process in list((pool._processes or {}).values()):
            process.terminate()
        # Their deaths break the pool, and its thread then fails each job left: Python 3.11's
        # thread fails on a job already cancelled (pool.map's did, and so does shutdown's
        # cancel_futures, below), printing a traceback beside the command's line. So none is.
        pool.shutdown(wait=True)
        raise
    finally:  # on an error, jobs not yet started are dropped rather than run to the end
        pool.shutdown(wait=True, cancel_futures=True)


def _start_resource_tracker_deaf_to_hangups() -> None:
    """multiprocessing's resource tracker (one per process, started with the first pool's queues)
    ignores SIGINT and SIGTERM but not SIGHUP: a closed terminal's hangup, sent to the whole
    process group, killed it, and the pool, stopping, relaunched it with a warning and a traceback
    per queue. Started with SIGHUP ignored, it keeps it ignored (an exec does). The command itself
    stops on SIGHUP (cli.py), and its exit ends the tracker."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        return  # the pool starts it, as it would
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored while workers start, so that they inherit it ignored (an exec keeps an ignored
    signal ignored, and Python then raises no KeyboardInterrupt). A terminal's Ctrl-C reaches every
    process of the group: a worker interrupted while it started or ran printed its traceback beside
    this process's one line. This process stops them instead (terminate, above)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
