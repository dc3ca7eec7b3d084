"""The README's code for running a policy on a robot runs as written, and every command it shows
parses, so neither can drift from the API."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def robot_code() -> str:
    """The python block of the README's 'Running a policy on a robot' section."""
    section = README.read_text().split("## Running a policy on a robot", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section should hold one python block"
    return blocks[0]


class StandInRobot:
    """Two cameras of 48 x 64 frames and a 4-d state; runs for `chunks` chunks, keeping what it is sent."""

    def __init__(self, chunks: int):
        self.left, self.sent = chunks, []
        self.rng = np.random.default_rng(0)

    def running(self) -> bool:
        self.left -= 1
        return self.left >= 0

    def frames(self) -> list[np.ndarray]:
        return [self.rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)]

    def state(self) -> np.ndarray:
        return self.rng.normal(size=4)  # float64, as a robot's driver may give it

    def send(self, action: np.ndarray) -> None:
        self.sent.append(action)


def test_the_readmes_robot_loop_runs_on_a_trained_policy(tiny_run, capsys):
    from leanvla.models.checkpoint import read_meta

    meta = read_meta(tiny_run / "policy")  # corner2 and corner3 at 32 x 32, two instructions
    code = robot_code()
    assert code.count('"runs/mine"') == 1 and code.count('"pick up the cube"') == 1
    code = code.replace('"runs/mine"', repr(str(tiny_run))).replace(
        '"pick up the cube"', repr(meta["instructions"][1])
    )
    robot = StandInRobot(chunks=2)
    exec(compile(code, str(README), "exec"), {"robot": robot})
    n_action_steps, action_dim = meta["model"]["n_action_steps"], meta["model"]["action_dim"]
    assert len(robot.sent) == 2 * n_action_steps
    assert all(a.shape == (action_dim,) and np.isfinite(a).all() for a in robot.sent)
    assert capsys.readouterr().out.strip() == f"{meta['model']['cameras']} {n_action_steps}"


def readme_commands() -> list[str]:
    """Every `leanvla ...` command line of the README's shell blocks (continuations joined, comments
    dropped), `torchrun ... -m leanvla` ones included."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "leanvla" in words[:4] and words[0] in ("leanvla", "torchrun"):
                commands.append(words[words.index("leanvla") + 1 :])
    return commands


def test_the_readme_shows_commands():
    assert len(readme_commands()) >= 20


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_every_command_the_readme_shows_parses_and_uses_every_option_it_gives(argv):
    import tyro

    from leanvla.cli import _commands

    matches = [(words, entry) for words, entry in _commands().items() if tuple(argv[: len(words)]) == words]
    assert len(matches) == 1, f"no leanvla command {argv[:2]}"
    words, (config_cls, _, _) = matches[0]
    options = argv[len(words) :]
    cfg = tyro.cli(config_cls, args=options)  # exits, failing the test, on an unknown or malformed option
    # An option the command would ignore is refused (export's check reads the policy's adapters).
    if hasattr(cfg, "check_options_used") and words != ("export",):
        cfg.check_options_used([arg for arg in options if arg.startswith("--")])
