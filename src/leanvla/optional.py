"""Lazy imports of heavy optional dependencies, each with an install hint.

The simulator (Meta-World + MuJoCo) and video decoding are only needed by some commands; importing
them at module level would make `import leanvla` slow and fragile on machines without them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_HINTS = {
    "metaworld": "pip install 'leanvla[sim]'  (Meta-World 3.x, MuJoCo, gymnasium)",
    "mujoco": "pip install 'leanvla[sim]'  (Meta-World 3.x, MuJoCo, gymnasium)",
    "av": "pip install 'leanvla[video]'  (PyAV, for datasets that store images as mp4)",
    "peft": "pip install peft",
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
