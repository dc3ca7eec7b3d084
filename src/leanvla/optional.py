"""Lazy imports of heavy optional dependencies, each with an install hint.

The simulator (Meta-World + MuJoCo) and video decoding are only needed by some commands; importing
them at module level would make `import leanvla` slow and fragile on machines without them.
"""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leanvla.errors import UserError

_HINTS = {
    "metaworld": "pip install 'leanvla[sim]'  (Meta-World 3.x, MuJoCo, gymnasium)",
    "mujoco": "pip install 'leanvla[sim]'  (Meta-World 3.x, MuJoCo, gymnasium)",
    "av": "pip install 'leanvla[video]'  (PyAV, for datasets that store images as mp4)",
    "peft": "pip install 'leanvla[adapt]'  (peft: LoRA adapters, and merging --vectors)",
}


def require_module(name: str) -> ModuleType:
    """Import `name`, or raise a `UserError` that says how to install it."""
    from leanvla.errors import UserError

    if name in ("metaworld", "mujoco"):
        # Headless rendering: EGL needs no display and no extra package.
        os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        hint = _HINTS.get(top, f"pip install {top}")
        raise UserError(
            f"this needs the optional package '{top}', which is not installed ({exc}); install it with: {hint}"
        ) from exc
    except Exception as exc:  # MuJoCo loads MUJOCO_GL's backend as it is imported (osmesa's library, say)
        if name not in ("metaworld", "mujoco") or not _loading_a_renderer(exc):
            raise
        raise cannot_render(exc) from exc


def _loading_a_renderer(exc: Exception) -> bool:
    """Whether `exc` was raised loading MuJoCo's OpenGL backend (mujoco/gl_context.py, its egl,
    osmesa or glfw package, PyOpenGL), not by another failure of the import (a bug: its traceback)."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        parts = Path(frame.f_code.co_filename).parts
        backend = parts[-1] == "gl_context.py" or any(name in parts for name in ("egl", "osmesa", "glfw"))
        if "OpenGL" in parts or ("mujoco" in parts and backend):
            return True
    return False


def cannot_render(exc: Exception) -> UserError:
    """The UserError of a machine where MuJoCo cannot render with MUJOCO_GL's backend (no EGL driver
    on a compute node, no display for glfw, no OSMesa library), naming it and what `exc` said: each
    backend fails its own way, in a traceback (ImportError: Cannot initialize a EGL device display;
    mujoco.FatalError; AttributeError: 'NoneType' object has no attribute 'glGetError')."""
    from leanvla.errors import UserError

    said = (str(exc).strip().splitlines() or [""])[0]
    return UserError(
        f"MuJoCo cannot render on this machine with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')} "
        f"({type(exc).__name__}: {said}); without a display use MUJOCO_GL=egl (an EGL driver: a GPU's, "
        "or Mesa's, e.g. apt install libegl1) or MUJOCO_GL=osmesa (apt install libosmesa6)"
    )
