"""Jobs in spawned workers: results in job order, a job's error raised as itself, a worker that
cannot start an error rather than a hang, the jobs after a failure dropped, and the workers stopped
outright when the caller stops reading (Ctrl-C)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from multiprocessing.context import SpawnProcess
from pathlib import Path

import pytest

from leanvla.workers import map_in_workers


def slow_square(x: int) -> int:
    time.sleep(0.02 * (x % 3))  # finishing out of order: the results must not be
    return x * x


def fail_on_zero(x: int) -> int:
    if x == 0:
        raise ValueError("job 0 failed")
    time.sleep(0.5)
    return x


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def cannot_start() -> None:
    raise OSError("no rendering context")


def ctrl_c_ignored(_) -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def mark_then_sleep(directory: str) -> None:
    """A worker's start that takes long (an eval worker's loads its policy): one is interrupted there."""
    (Path(directory) / str(os.getpid())).touch()  # starting: the test may interrupt now
    time.sleep(60)


def test_results_come_in_job_order():
    assert list(map_in_workers(slow_square, range(12), workers=3)) == [x * x for x in range(12)]


def test_a_jobs_error_is_raised_as_itself_and_the_jobs_not_started_are_dropped(monkeypatch):
    killed = []
    monkeypatch.setattr(SpawnProcess, "terminate", lambda process: killed.append(process))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="job 0 failed"):
        list(map_in_workers(fail_on_zero, range(40), workers=2))
    assert time.perf_counter() - start < 8  # running all 39 others would take 10 s on two workers
    # The workers are sound: they finish the job in hand and stop. Killing them made Python 3.11's
    # pool thread fail on the futures already cancelled (a traceback printed beside the error).
    assert killed == []


def test_a_worker_that_cannot_start_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="a worker process died"):
        list(map_in_workers(slow_square, range(4), workers=2, initializer=cannot_start))


def test_a_caller_that_stops_reading_stops_the_jobs_running():
    results = map_in_workers(sleep_for, [0.0, 60.0, 60.0], workers=2)
    assert next(results) == 0.0  # the two workers are now each in a 60 s job
    time.sleep(1.0)
    start = time.perf_counter()
    results.close()  # what a Ctrl-C in the caller's loop does, through contextlib.closing
    assert time.perf_counter() - start < 10  # not the 60 s that letting them finish takes


def test_workers_leave_ctrl_c_to_this_process_which_keeps_its_own():
    before = signal.getsignal(signal.SIGINT)
    assert list(map_in_workers(ctrl_c_ignored, range(2), workers=2)) == [True, True]
    assert signal.getsignal(signal.SIGINT) is before and before is not signal.SIG_IGN


def two_workers_starting(marks: Path, before: str = "", stopped: str = "interrupted") -> subprocess.Popen:
    """A process of its own group mapping jobs over two workers, each held in its start (it marks
    `marks` first), once both have marked: `before` runs first; a KeyboardInterrupt exits
    saying `stopped`."""
    script = (
        f"{before}"
        "from leanvla.workers import map_in_workers\n"
        "from tests.test_workers import mark_then_sleep, slow_square\n"
        "try:\n"
        f"    list(map_in_workers(slow_square, range(4), 2, mark_then_sleep, ({str(marks)!r},)))\n"
        "except KeyboardInterrupt:\n"
        f"    raise SystemExit({stopped!r})\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script], start_new_session=True, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return run


def test_ctrl_c_to_the_whole_group_is_this_process_alone_interrupted(tmp_path):
    """As a terminal sends it, to every process of the group: a worker interrupted while it
    started printed its own KeyboardInterrupt traceback beside the command's one line."""
    run = two_workers_starting(tmp_path)
    for worker in (int(mark.name) for mark in tmp_path.iterdir()):
        os.kill(worker, signal.SIGINT)  # first the workers alone: one interrupted would be dead in 1 s
    time.sleep(1)
    start = time.monotonic()
    with contextlib.suppress(ProcessLookupError):  # (gone already, when a worker died)
        os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert time.monotonic() - start < 10  # not the 60 s the jobs would take
    assert run.returncode == 1 and err == "interrupted\n"


def test_a_hangup_to_the_whole_group_leaves_multiprocessings_resource_tracker_alive(tmp_path):
    """A closed terminal sends SIGHUP to every process of its group, which the command takes as
    Ctrl-C (cli.py): the resource tracker died of it, and was relaunched with a warning and a
    KeyError traceback per queue, printed beside the command's one line."""
    as_the_command_does = (
        "import signal\n"
        "def interrupt(signum, frame):\n"
        "    raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGHUP, interrupt)\n"
    )
    run = two_workers_starting(tmp_path, before=as_the_command_does, stopped="hung up")
    os.killpg(run.pid, signal.SIGHUP)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 1 and err == "hung up\n"


GIB = 1 << 30


@pytest.mark.parametrize(
    ("asked", "cores", "threads", "room", "count"),
    [
        (None, 1, 1, None, 1),
        (None, 2, 1, None, 2),
        (None, 16, 1, None, 16),  # one a core: each runs its episodes on one thread
        (None, 16, 4, None, 4),  # --threads 4 each
        (None, 2, 8, None, 1),  # more threads than cores: this process alone
        (None, 16, 1, 5 * GIB, 6),  # the memory left holds 6 workers of 768 MiB
        (None, 16, 1, 100 << 20, 1),  # not one: this process alone
        (3, 1, 1, 100 << 20, 3),  # a count asked for is kept
    ],
)
def test_the_default_worker_count_is_what_the_cores_and_the_memory_left_hold(
    monkeypatch, asked, cores, threads, room, count
):
    from leanvla import workers

    monkeypatch.setattr(workers, "cores_per_process", lambda: cores)
    monkeypatch.setattr(workers, "available_memory", lambda: room)
    assert workers.worker_count(asked, threads) == count


def test_larger_workers_fewer_fit(monkeypatch):
    from leanvla import workers

    monkeypatch.setattr(workers, "cores_per_process", lambda: 16)
    monkeypatch.setattr(workers, "available_memory", lambda: 5 * GIB)
    assert workers.worker_count(None, each=2 * GIB) == 2  # a policy's weights in each, say
