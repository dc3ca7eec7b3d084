"""Object/goal positions follow the episode seed (Meta-World's own reset seed does not)."""

from __future__ import annotations

import numpy as np
import pytest

from leanvla.data.metaworld_env import MetaWorldTask
from leanvla.data.metaworld_tasks import SUITES, resolve_tasks
from leanvla.data.seeds import episode_seed
from leanvla.errors import UserError


def test_positions_follow_the_seed():
    env = MetaWorldTask("reach-v3", cameras=())
    positions = [tuple(env.reset(episode_seed(0, "reach-v3", k))[1]) for k in range(25)]
    assert len(set(positions)) == 25  # Meta-World's MT1 gives ~19 distinct for 25 resets
    again = MetaWorldTask("reach-v3", cameras=())
    assert np.array_equal(again.reset(episode_seed(0, "reach-v3", 3))[1], np.asarray(positions[3]))
    # the observation's goal is the one the positions say (reach: last 3 entries of both)
    obs, pos = env.reset(123)
    assert np.allclose(obs[-3:], pos[-3:])


def test_training_and_evaluation_seed_streams_are_disjoint():
    train = {episode_seed(0, "push-v3", k) for k in range(500)}
    evaluation = {episode_seed(0, "push-v3", k, split="eval") for k in range(500)}
    assert not train & evaluation


def test_rendering_is_upright_and_sized():
    env = MetaWorldTask("drawer-close-v3", cameras=("corner2", "corner3"), image_size=48)
    env.reset(0)
    frames = env.render()
    assert set(frames) == {"corner2", "corner3"}
    assert frames["corner2"].shape == (48, 48, 3) and frames["corner2"].dtype == np.uint8
    # upright: the floor/table (bottom half) is darker than the sky/wall (top rows) in corner2
    img = frames["corner2"].astype(float)
    assert img[:8].mean() > img[-8:].mean()


@pytest.mark.parametrize("height", [48, 36])  # 3:4 and 16:9
def test_a_wider_camera_shows_the_square_cameras_picture_in_its_middle_and_more_to_each_side(height):
    from leanvla.data.resize import fit_square

    wide = MetaWorldTask("drawer-close-v3", cameras=("corner2",), image_size=height, image_width=64)
    square = MetaWorldTask("drawer-close-v3", cameras=("corner2",), image_size=height)
    wide.reset(0), square.reset(0)
    seen, middle = wide.render()["corner2"], square.render()["corner2"]
    assert seen.shape == (height, 64, 3)
    side = (64 - height) // 2
    assert np.array_equal(seen[:, side : side + height], middle)  # the same vertical field of view
    assert not np.array_equal(seen[:, :height], middle)
    # so a policy that crops the wide camera sees exactly what the square camera shows
    assert np.array_equal(fit_square(seen[None], height, "crop")[0], middle)


def _frames(env: MetaWorldTask, steps: int = 4) -> np.ndarray:
    """What `env` shows over a few steps from a fixed reset, actions that move the arm."""
    env.reset(3)
    shown = []
    for t in range(steps):
        env.step(np.array([0.5, 0.3, -0.2, 0.0]) if t % 2 else np.array([-0.3, 0.2, 0.1, 1.0]))
        shown.append(env.render()["corner2"])
    return np.stack(shown)


def test_an_env_renders_its_own_scene_after_another_is_made_or_closed():
    first = MetaWorldTask("reach-v3", cameras=("corner2",), image_size=32)
    alone = _frames(first)
    assert len({f.tobytes() for f in alone}) == len(alone)  # the arm moves in the picture
    # An env made since makes its own GL context current: drawn there, reach took door-open's meshes.
    second = MetaWorldTask("door-open-v3", cameras=("corner2",), image_size=32)
    assert np.array_equal(_frames(first), alone)
    assert not np.array_equal(_frames(second), alone)
    # Closing an env releases the current context, whichever it is: frames froze.
    second.close()
    assert np.array_equal(_frames(first), alone)
    first.close()


def test_a_closed_env_collected_later_leaves_the_other_envs_scene_alone():
    import gc

    first = MetaWorldTask("reach-v3", cameras=("corner2",), image_size=32)
    _frames(first)
    second = MetaWorldTask("door-open-v3", cameras=("corner2",), image_size=32)
    alone = _frames(second)
    first.close()
    first.close()  # again: nothing left to close
    assert np.array_equal(_frames(second), alone)  # the second's context is current again
    del first
    gc.collect()  # MuJoCo would free the first's meshes now, from the current context: the second's
    assert np.array_equal(_frames(second), alone)
    second.close()
    MetaWorldTask("reach-v3", cameras=()).close()  # no rendering context: nothing to close


def test_one_env_at_a_time_keeps_the_env_while_the_task_stays_and_closes_it_when_it_changes():
    from leanvla.data import metaworld_env

    envs = metaworld_env.OneEnvAtATime()
    reach = envs.get("reach-v3", ("corner2",), (32, 32), max_steps=50)
    alone = _frames(reach)
    assert envs.get("reach-v3", ("corner2",), (32, 32), max_steps=80) is reach
    assert reach.max_steps == 80 and envs.get("reach-v3", ("corner2",), (32, 32), 900).max_steps == 500
    door = envs.get("door-open-v3", ("corner2",), (32, 32), max_steps=50)
    assert reach.env not in metaworld_env._LIVE_ENVS and door.env in metaworld_env._LIVE_ENVS
    assert not reach.env.mujoco_renderer._viewers["rgb_array"].opengl_context._context  # freed
    wider = envs.get("door-open-v3", ("corner2",), (32, 48), max_steps=50)
    assert wider is not door and door.env not in metaworld_env._LIVE_ENVS
    assert np.array_equal(_frames(envs.get("reach-v3", ("corner2",), (32, 32), 50)), alone)
    envs.close()
    assert not any(e in metaworld_env._LIVE_ENVS for e in (reach.env, door.env, wider.env))


def test_task_names_and_suites():
    assert resolve_tasks("MT10") == SUITES["MT10"] and len(SUITES["MT50"]) == 50
    assert resolve_tasks("reach,MT10")[:2] == ["reach-v3", "push-v3"]
    assert len(resolve_tasks("ML45-train")) == 45 and len(resolve_tasks("ML45-test")) == 5
    train, test = set(SUITES["ML45-train"]), set(SUITES["ML45-test"])
    assert not train & test and train | test == set(SUITES["MT50"])  # held-out tasks are held out
    assert resolve_tasks("reach-v3, ,drawer-close,") == ["reach-v3", "drawer-close-v3"]  # blanks skipped
    with pytest.raises(UserError, match="did you mean reach-v3"):
        resolve_tasks("reach-v2x")
    with pytest.raises(UserError, match="unknown camera"):
        MetaWorldTask("reach-v3", cameras=("nose",))


def test_an_unknown_task_or_image_size_is_refused_before_mujoco_loads():
    with pytest.raises(UserError, match="unknown Meta-World task 'reach-v9'"):
        MetaWorldTask("reach-v9")
    with pytest.raises(UserError, match="image size 4 is outside 8..1024 pixels"):
        MetaWorldTask("reach-v3", image_size=4)
    with pytest.raises(UserError, match="image size 2000 is outside 8..1024 pixels"):
        MetaWorldTask("reach-v3", image_width=2000)


def test_a_machine_that_cannot_make_a_rendering_context_is_one_line_and_no_cleanup_tracebacks(monkeypatch):
    """With no EGL driver: "ImportError: Cannot initialize a EGL device display", a traceback,
    then "Exception ignored in: <function OffScreenViewer.__del__ ...>" as the half-made
    contexts were collected."""
    import sys

    from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

    class HalfMade:  # as gymnasium's viewer whose context failed: its cleanup fails too
        def __del__(self):
            raise AttributeError("'OffScreenViewer' object has no attribute 'opengl_context'")

    def no_egl(self, render_mode):
        viewer = HalfMade()  # noqa: F841 (held by the traceback's frame)
        raise ImportError(
            "Cannot initialize a EGL device display. This likely means that your EGL driver ..."
        )

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(MujocoRenderer, "_get_viewer", no_egl)
    monkeypatch.setenv("MUJOCO_GL", "egl")
    with pytest.raises(UserError) as refused:
        MetaWorldTask("reach-v3")
    assert str(refused.value).startswith(
        "MuJoCo cannot render on this machine with MUJOCO_GL=egl (ImportError: Cannot initialize a EGL device display."
    )
    assert unraisable == [] and sys.unraisablehook == unraisable.append  # said nothing more; the hook is back
