"""How a command stops before its end: SIGTERM and SIGHUP as Ctrl-C, each left to a caller that
handles it, and the closing line dropped where the terminal has gone."""

from __future__ import annotations

import errno
import io
import subprocess
import sys

import pytest

from leanvla import cli
from leanvla.cli import main


@pytest.mark.parametrize(
    "signal_name, code, says",
    [
        # `kill`, `timeout` or a scheduler's time limit
        ("SIGTERM", 143, "leanvla info: terminated (SIGTERM)\n"),
        # a terminal closed, an ssh connection lost
        ("SIGHUP", 129, "leanvla info: hung up (SIGHUP)\n"),
    ],
)
def test_sigterm_and_sighup_stop_a_command_as_ctrl_c_does_its_temporary_output_removed(
    tmp_path, signal_name, code, says
):
    """Python died on the spot, saying nothing and leaving a recording's (or a conversion's)
    temporary directory behind, hidden."""
    script = (
        "import os, signal, time\n"
        "from leanvla import cli\n"
        "from leanvla.atomic import atomic_dir\n"
        # As a terminal's shell starts it: these tests may run under nohup, which ignores SIGHUP.
        f"signal.signal(signal.{signal_name}, signal.SIG_DFL)\n"
        "def writing(cfg):\n"
        f"    with atomic_dir({str(tmp_path / 'out')!r}) as tmp:\n"
        "        (tmp / 'half.parquet').write_bytes(b'')\n"
        f"        os.kill(os.getpid(), signal.{signal_name})\n"
        "        time.sleep(30)\n"
        "cli.run_info = writing\n"
        "raise SystemExit(cli.main(['info', 'data']))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stderr) == (code, says)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_a_stopping_signal_is_left_to_a_caller_that_handles_it_and_restored_after(
    monkeypatch, capsys, lerobot_fixture, signal_name
):
    import signal

    signum = getattr(signal, signal_name)
    seen = []
    monkeypatch.setattr(cli, "run_info", lambda cfg: seen.append(signal.getsignal(signum)))

    def callers(signum, frame):
        pass

    before = signal.getsignal(signum)  # (SIG_IGN where these tests run under nohup)
    try:
        signal.signal(signum, signal.SIG_DFL)
        assert main(["info", str(lerobot_fixture)]) == 0
        assert seen[0] is not signal.SIG_DFL and signal.getsignal(signum) is signal.SIG_DFL
        # An application calling main, with its own; or `nohup`, which ignores SIGHUP.
        for theirs in (callers, signal.SIG_IGN):
            signal.signal(signum, theirs)
            assert main(["info", str(lerobot_fixture)]) == 0
            assert seen[-1] is theirs and signal.getsignal(signum) is theirs
    finally:
        signal.signal(signum, before)


def test_the_closing_line_to_a_terminal_that_has_gone_is_dropped_not_a_traceback(
    monkeypatch, lerobot_fixture
):
    """After SIGHUP, writing to the closed terminal fails (EIO): the exit was then a traceback no one
    saw, and exit code 1 rather than the signal's."""

    class HungUpTerminal(io.StringIO):
        def write(self, text):
            raise OSError(errno.EIO, "Input/output error")

    def interrupted(cfg):
        raise KeyboardInterrupt("at step 7 of 12")

    monkeypatch.setattr(cli, "run_info", interrupted)
    monkeypatch.setattr(sys, "stderr", HungUpTerminal())
    assert main(["info", str(lerobot_fixture)]) == 130
