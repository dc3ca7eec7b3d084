"""How a command stops before its end: Ctrl-C, SIGTERM and SIGHUP alike, as a KeyboardInterrupt
that removes the temporary outputs on its way out, then one line saying so (and, for training,
where it stood) and the exit code a shell reports of a process the signal ended."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

# What each signal that stops a command as Ctrl-C does is said to have done.
STOPPING_SIGNALS = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)"}
# The signal, while one of them stops the command: it then says so and exits 128 + its number.
_TERMINATED: list[int] = []


@contextlib.contextmanager
def signals_as_interrupt():
    """SIGTERM (`kill`, `timeout`, a scheduler's time limit) and SIGHUP (a terminal closed, an ssh
    connection lost) stop a command as Ctrl-C does: its temporary outputs removed, a line saying
    where it stood. By default Python died on the spot: no line, and a recording's or a
    conversion's temporary directory left behind, hidden. Each only where no one else handles it
    (an application calling `main` may; `nohup` ignores SIGHUP)."""
    _TERMINATED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = [signum for signum in STOPPING_SIGNALS if signal.getsignal(signum) is signal.SIG_DFL]

    def interrupt(signum, frame):
        _TERMINATED.append(signum)
        raise KeyboardInterrupt

    for signum in ours:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum in ours:
            signal.signal(signum, signal.SIG_DFL)


def stopped() -> str:
    return STOPPING_SIGNALS[_TERMINATED[0]] if _TERMINATED else "interrupted"


def stopped_code() -> int:
    return 128 + _TERMINATED[0] if _TERMINATED else 130  # what a shell reports of a process the signal ended


def say_stopped(line: str) -> None:
    """The closing line, where someone may read it: after SIGHUP the terminal is gone, and writing
    to it fails (EIO), which would turn the exit into a traceback no one sees and exit code 1."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass
