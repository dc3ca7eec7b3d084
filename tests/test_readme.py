"""The README's code for running a policy on a robot runs as written, so it cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

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
