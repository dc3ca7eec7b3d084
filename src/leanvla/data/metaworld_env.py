"""One Meta-World v3 task as leanvla uses it: positions that follow the episode seed, fast headless
rendering, upright camera frames.

Why not `gym.make("Meta-World/MT1", ...)`: its task-sampling wrapper cycles through 50 positions
pre-sampled with a generator fixed when the env is made, so `reset(seed=s)` does not choose the
object/goal positions and "held-out" seeds replay training positions. Here the env's own position
generator is seeded from the episode seed before every reset, and the positions it drew (Meta-World's
`rand_vec`) are returned so they can be recorded and excluded at evaluation.
"""

from __future__ import annotations

import atexit
import gc
import sys
from dataclasses import dataclass

import numpy as np

from leanvla.data.metaworld_tasks import INSTRUCTIONS
from leanvla.errors import require
from leanvla.optional import cannot_render, require_module

# Rendering envs stay alive until closed (`MetaWorldTask.close`) or the process exits: a
# garbage-collected env would free its EGL context at an unforeseen moment. They are closed
# newest-first at exit, before MuJoCo's own exit handler tears EGL down (so the handler is
# registered after mujoco is imported).
_LIVE_ENVS: list = []


def _keep_alive(env) -> None:
    if not _LIVE_ENVS:
        atexit.register(_close_live_envs)
    _LIVE_ENVS.append(env)


def _close_live_envs() -> None:
    while _LIVE_ENVS:
        try:
            _LIVE_ENVS.pop().close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
EPISODE_LIMIT = 500  # Meta-World's own step limit per episode


def _offscreen_viewer(env):
    """The env's offscreen viewer, its OpenGL context made, or `cannot_render`'s one line, where the
    half-made contexts' cleanup added tracebacks of its own."""
    quiet, sys.unraisablehook = sys.unraisablehook, lambda _: None  # those contexts' __del__
    try:
        try:
            return env.mujoco_renderer._get_viewer("rgb_array")
        except Exception as exc:  # whatever the backend raises
            failed = cannot_render(exc)
        gc.collect()
    finally:
        sys.unraisablehook = quiet
    raise failed


def check_max_steps(max_steps: int) -> None:
    """--max-steps (recording, evaluation) within what an episode can run."""
    require(
        1 <= max_steps <= EPISODE_LIMIT,
        f"--max-steps must be within 1..{EPISODE_LIMIT} (Meta-World's limit), got {max_steps}",
    )


@dataclass
class StepResult:
    obs: np.ndarray  # (39,) full Meta-World observation (hand, gripper, objects, goal)
    success: bool


class MetaWorldTask:
    """A Meta-World v3 environment for one task, seeded per episode, rendering `cameras`."""

    def __init__(
        self,
        name: str,
        cameras: tuple[str, ...] = ("corner2",),
        image_size: int = 64,
        max_steps: int = EPISODE_LIMIT,
        image_width: int | None = None,
    ):
        """Frames are image_size x image_size, or image_size high and image_width wide: a wider
        camera sees more of the scene to each side, at the same vertical field of view."""
        require(name in INSTRUCTIONS, f"unknown Meta-World task '{name}'")
        for cam in cameras:
            require(cam in CAMERAS, f"unknown camera '{cam}'; Meta-World v3 cameras are {', '.join(CAMERAS)}")
        image_width = image_size if image_width is None else image_width
        for side in (image_size, image_width):
            require(8 <= side <= 1024, f"image size {side} is outside 8..1024 pixels")
        mujoco = require_module("mujoco")
        env_dict = require_module("metaworld.env_dict")
        self.name = name
        self.instruction = INSTRUCTIONS[name]
        self.cameras = tuple(cameras)
        self.image_shape = (image_size, image_width)
        self.max_steps = min(max_steps, EPISODE_LIMIT)
        render_mode = "rgb_array" if cameras else None
        env = env_dict.ALL_V3_ENVIRONMENTS[name](
            render_mode=render_mode,
            camera_name=cameras[0] if cameras else None,
            width=image_width,
            height=image_size,
        )
        # The scripted experts read the goal from the observation; the policy never sees it.
        env._partially_observable = False
        env.__dict__.pop("sawyer_observation_space", None)
        env._set_task_called = True
        # Positions come from env.np_random, which reset() re-seeds from the episode seed.
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        if cameras:
            # No multisampling, shadows or reflections: 6-10x faster at these sizes, same geometry.
            env.model.vis.quality.offsamples = 0
            viewer = _offscreen_viewer(env)
            viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self._camera_ids = [env.model.camera(c).id for c in cameras]
            self._viewer = viewer
            _keep_alive(env)
        self.env = env
        self.steps = 0

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Start an episode whose object/goal positions are a function of `seed` alone.

        Returns the first observation and the positions drawn (Meta-World's `rand_vec`).
        """
        self.env.seed(int(seed))
        obs, _ = self.env.reset()
        self.steps = 0
        return obs.astype(np.float64), np.asarray(self.env._last_rand_vec, dtype=np.float64).copy()

    def step(self, action: np.ndarray) -> StepResult:
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        obs, _reward, _terminated, _truncated, info = self.env.step(action)
        self.steps += 1
        return StepResult(obs=obs.astype(np.float64), success=bool(info["success"]))

    @property
    def done(self) -> bool:
        return self.steps >= self.max_steps

    def render(self) -> dict[str, np.ndarray]:
        """One upright uint8 frame (H x W x 3) per camera."""
        frames = {}
        renderer = self.env.mujoco_renderer
        # Its own GL context, which holds its meshes and textures: an env made since made its own
        # current (drawn there, this scene took that env's meshes), and one closed since left none
        # (MuJoCo's EGL context releases the thread's as it is freed: frames froze).
        self._viewer.make_context_current()
        for cam, cam_id in zip(self.cameras, self._camera_ids):
            renderer.camera_id = cam_id
            # MuJoCo's offscreen buffer is bottom-up; flipping both axes matches LeRobot's frames.
            frames[cam] = np.ascontiguousarray(renderer.render("rgb_array")[::-1, ::-1])
        return frames

    def close(self) -> None:
        """Free the env and its rendering context now rather than at exit (about 150 MB each:
        `OneEnvAtATime`)."""
        if self.env not in _LIVE_ENVS:  # closed already, or no cameras: no rendering context
            return
        _LIVE_ENVS.remove(self.env)
        # Its meshes and textures go first, from its own context: gymnasium frees the context
        # alone, and MuJoCo frees them once the env is collected, from whichever context is
        # current then (another env's: that env's meshes went).
        self._viewer.make_context_current()
        self._viewer.con.free()
        self.env.close()

    @staticmethod
    def proprio(obs: np.ndarray) -> np.ndarray:
        """The 4-d proprio state a policy observes: hand xyz and gripper opening."""
        return obs[:4].astype(np.float32)

    def expert(self):
        """Meta-World's scripted expert for this task."""
        policies = require_module("metaworld.policies")
        return policies.ENV_POLICY_MAP[self.name]()


class OneEnvAtATime:
    """The env a worker runs its episodes in, task after task: made for the episode's task and
    cameras, kept while they stay the same, the one before closed when they change. A worker
    recording or evaluating MT50 holds one env, not fifty (about 150 MB each with its rendering
    context: 4 GB a worker for one episode of each MT50 task, kept to the end)."""

    def __init__(self) -> None:
        self._settings: tuple | None = None
        self._env: MetaWorldTask | None = None

    def get(
        self, task: str, cameras: tuple[str, ...], image_shape: tuple[int, int], max_steps: int
    ) -> MetaWorldTask:
        """The env for `task` rendering `cameras` at `image_shape` (height, width), its episodes
        `max_steps` long at most."""
        settings = (task, tuple(cameras), tuple(image_shape))
        if settings != self._settings:
            self.close()
            height, width = image_shape
            self._env = MetaWorldTask(task, cameras, height, max_steps, image_width=width)
            self._settings = settings
        self._env.max_steps = min(max_steps, EPISODE_LIMIT)
        return self._env

    def close(self) -> None:
        """Close the env held, if any."""
        if self._env is not None:
            self._env.close()
        self._settings, self._env = None, None
