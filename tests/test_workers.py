"""Jobs in spawned workers: results in job order, a job's error raised as itself, a worker that
cannot start an error rather than a hang, the jobs after a failure dropped, and the workers stopped
outright when the caller stops reading (Ctrl-C)."""

from __future__ import annotations

import time

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


def test_results_come_in_job_order():
    assert list(map_in_workers(slow_square, range(12), workers=3)) == [x * x for x in range(12)]


def test_a_jobs_error_is_raised_as_itself_and_the_jobs_not_started_are_dropped():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="job 0 failed"):
        list(map_in_workers(fail_on_zero, range(40), workers=2))
    assert time.perf_counter() - start < 8  # running all 39 others would take 10 s on two workers


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


@pytest.mark.parametrize(("asked", "cores", "count"), [(None, 1, 1), (None, 2, 2), (None, 16, 2), (3, 1, 3)])
def test_the_default_worker_count_is_two_or_fewer_where_fewer_cores_may_be_used(
    monkeypatch, asked, cores, count
):
    from leanvla import workers

    monkeypatch.setattr(workers, "cores_per_process", lambda: cores)
    assert workers.worker_count(asked) == count  # a count asked for is kept
