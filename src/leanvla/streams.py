"""The command's standard output and error, as the shell's own tools treat theirs: the output names
itself in its errors ("No space left on device: standard output"), escapes what its encoding cannot
hold, and is flushed where its failure can be answered; a reader that leaves (`| head`) ends the
command quietly, as SIGPIPE ends a pipeline's writer. At Python's exit each of these was
"Exception ignored", exit code 120, or a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

STANDARD_OUTPUT = "standard output"


@contextlib.contextmanager
def output_naming_itself():
    """sys.stdout, for the command's while, naming itself in its write errors (`_NamedOutput`)."""
    if sys.stdout is None:  # closed (`leanvla info D >&-`): print writes nothing, as before
        yield
        return
    with contextlib.redirect_stdout(_NamedOutput(sys.stdout)):
        yield


def flush_output() -> None:
    """What the command printed, written now: where its failure is answered, not at Python's exit."""
    if sys.stdout is not None:  # (closed: nothing to flush)
        sys.stdout.flush()


class _NamedOutput:
    """A stream whose write errors name it: `leanvla info DATA > FILE` on a full disk said
    "No space left on device; free some space there", naming no place. Text its encoding cannot
    hold is escaped, as Python's standard error does: a task named in Chinese, printed where the
    locale is Latin-1, was a UnicodeEncodeError traceback."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._named(self._stream.write, text)
        except UnicodeEncodeError:
            encoding = self._stream.encoding
            return self._named(self._stream.write, text.encode(encoding, "backslashreplace").decode(encoding))

    def flush(self) -> None:
        self._named(self._stream.flush)

    def _named(self, call: Callable, *args):
        try:
            return call(*args)
        except OSError as exc:
            exc.filename = exc.filename or STANDARD_OUTPUT
            # Nothing more goes there; Python's exit would flush what is left into it again.
            _written_nowhere_from_now(self._stream)
            raise

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _written_nowhere_from_now(stream) -> None:
    """Point `stream`'s file descriptor at /dev/null: what it still holds, Python's exit flushes."""
    with contextlib.suppress(OSError, ValueError):  # (no file descriptor: nothing to flush)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def after_a_broken_pipe() -> int:
    """The reader of the output, or of the progress bars and messages, left (`| head`, `2>&1 |
    head`): exit as a pipeline's writer killed by SIGPIPE does, quietly. Python's exit flushes both
    streams again: one into the closed pipe was "Exception ignored", exit code 120."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            _written_nowhere_from_now(stream)
    return 128 + 13  # as if killed by SIGPIPE, what a shell expects of a pipeline's writer
