"""A missing optional package is one clear line that says how to install it."""

from __future__ import annotations

import sys

import pytest

from leanvla.errors import UserError
from leanvla.optional import require_module


def test_an_installed_module_is_returned():
    assert require_module("json") is sys.modules["json"]


def test_a_missing_package_names_itself_and_its_install_command(monkeypatch):
    with pytest.raises(
        UserError,
        match=r"the optional package 'no_such_pkg', which is not installed \(.*\); install it with: pip install no_such_pkg$",
    ):
        require_module("no_such_pkg.sub")
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(UserError, match=r"install it with: pip install 'leanvla\[video\]'"):
        require_module("av")


def test_a_rendering_backend_that_cannot_load_is_one_line_naming_it(tmp_path):
    """MuJoCo loads MUJOCO_GL's backend as it is imported: OSMesa's missing library was
    "AttributeError: 'NoneType' object has no attribute 'glGetError'", a traceback."""
    import os
    import subprocess

    env = {**os.environ, "MUJOCO_GL": "bogus"}  # a backend no machine has: fails as a missing one does
    argv = [sys.executable, "-m", "leanvla", "data", "metaworld", "--tasks", "reach-v3", "--episodes", "1"]
    done = subprocess.run([*argv, "--out", str(tmp_path / "rec")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and list(tmp_path.iterdir()) == [] and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1:] == [  # after the recording's progress bar
        "leanvla data metaworld: error: MuJoCo cannot render on this machine with MUJOCO_GL=bogus (RuntimeError: "
        "invalid value for environment variable MUJOCO_GL: bogus); without a display use MUJOCO_GL=egl (an EGL "
        "driver: a GPU's, or Mesa's, e.g. apt install libegl1) or MUJOCO_GL=osmesa (apt install libosmesa6)"
    ]


def test_only_a_failure_loading_the_renderer_is_taken_for_one(monkeypatch):
    import importlib

    def raised_in(place):
        code = compile(
            "raise AttributeError(\"'NoneType' object has no attribute 'glGetError'\")", place, "exec"
        )

        def failing(name):
            exec(code, {})

        return failing

    monkeypatch.setattr(importlib, "import_module", raised_in("/site-packages/OpenGL/raw/GL/_errors.py"))
    with pytest.raises(
        UserError, match=r"cannot render .* \(AttributeError: 'NoneType' object has no attribute"
    ):
        require_module("mujoco")
    with pytest.raises(AttributeError):  # another package's: a bug, its traceback
        require_module("peft")
    monkeypatch.setattr(
        importlib, "import_module", raised_in("/site-packages/metaworld/envs/mujoco/sawyer.py")
    )
    with pytest.raises(AttributeError):  # the simulator's own, not its renderer's: a bug too
        require_module("metaworld")
