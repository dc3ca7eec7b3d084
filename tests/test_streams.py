"""The command's standard streams as a shell's tools treat theirs: a closed pipe ends it quietly
(exit 141), a full disk is one line naming standard output, an encoding that cannot hold a task's
name escapes it. Each run as a process, block-buffered as on a user's machine and unbuffered as on
this one, since what went wrong happened at Python's exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def leanvla_writing_to(
    stdout, args: list[str], buffered: bool, stderr=subprocess.PIPE
) -> subprocess.CompletedProcess:
    """`leanvla ARGS` with its standard output on `stdout`, block-buffered as on a user's machine
    (this one sets PYTHONUNBUFFERED, under which the errors met at Python's exit never showed)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "leanvla", *args], stdout=stdout, stderr=stderr, text=True, env=env
    )


@pytest.mark.parametrize("buffered", [True, False])
def test_a_closed_pipe_reading_the_progress_bars_ends_quietly_too(lerobot_fixture, buffered):
    """`leanvla train ... 2>&1 | head`: a progress bar's write into the closed pipe ended the
    command, and Python's exit, flushing standard error into it again, made the code 120."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        args = ["data", "stats", str(lerobot_fixture), "--check"]  # its progress bar is written first
        done = leanvla_writing_to(subprocess.DEVNULL, args, buffered, stderr=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 141


@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize("args", [["info", "FIXTURE"], ["train", "--help"], ["--help"]])
def test_a_closed_pipe_ends_quietly(lerobot_fixture, args, buffered):
    """`leanvla info DATA | head`, `leanvla train --help | head`: the reader has gone before the
    output is written. A help was a BrokenPipeError traceback; block-buffered, any output was
    "Exception ignored ... BrokenPipeError" and exit code 120."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        args = [str(lerobot_fixture) if arg == "FIXTURE" else arg for arg in args]
        done = leanvla_writing_to(write_end, args, buffered)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.parametrize(
    "args, buffered, prog",
    [
        (["info", "FIXTURE"], True, "leanvla info"),
        (["info", "FIXTURE"], False, "leanvla info"),
        (["--help"], True, "leanvla"),
    ],
)
def test_output_on_a_full_disk_is_one_line_naming_standard_output(lerobot_fixture, args, buffered, prog):
    """`leanvla info DATA > FILE` on a full disk: the line named no place; block-buffered it was
    "Exception ignored ... OSError" and exit code 120; a help was a traceback."""
    args = [str(lerobot_fixture) if arg == "FIXTURE" else arg for arg in args]
    with open("/dev/full", "w") as full:
        done = leanvla_writing_to(full, args, buffered)
    assert (done.returncode, done.stderr) == (
        1,
        f"{prog}: error: No space left on device: standard output; free some space there, or write elsewhere\n",
    )


def test_a_closed_standard_output_is_written_nowhere_as_before(lerobot_fixture):
    """`leanvla info DATA >&-`: Python has no sys.stdout then; print writes nothing."""
    closed = subprocess.run(
        [sys.executable, "-m", "leanvla", "info", str(lerobot_fixture)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),
    )
    assert (closed.returncode, closed.stderr) == (0, "")


def test_instructions_a_latin_1_output_cannot_hold_are_escaped_as_json_reads_them(tmp_path):
    """Where the locale's encoding is Latin-1, printing a task named in Chinese was a
    UnicodeEncodeError traceback; escaped, the summary is still JSON and reads back the same."""
    from tests.data.helpers import synthetic_dataset

    data = synthetic_dataset(
        tmp_path / "ds", tasks=("把方块放进盒子", "Greif den Würfel", "把方块放进盒子", "c")
    )
    done = subprocess.run(
        [sys.executable, "-m", "leanvla", "info", str(data)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "latin-1"},
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert json.loads(done.stdout.decode("latin-1"))["tasks"] == ["把方块放进盒子", "Greif den Würfel", "c"]
    assert "Würfel".encode("latin-1") in done.stdout  # what it can hold, as it is
