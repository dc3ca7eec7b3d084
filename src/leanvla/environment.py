"""What software and hardware a result was produced with.

Some trainings amplify differences in float rounding (another CPU, thread count or library build
draws another set of weights), and closed-loop success depends on the simulator's version. So
every training run and every evaluation records this next to its result: a number that moves between
two machines can then be traced to what differs between them.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

from leanvla.cores import usable_cores

# The packages whose version can change what leanvla computes or measures.
PACKAGES = ("torch", "numpy", "peft", "mujoco", "metaworld", "gymnasium", "safetensors", "pyarrow")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    """The processor's marketing name (Linux), else whatever the platform reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def software_environment() -> dict:
    """Versions, processor, core counts (the machine's and those this process may use), torch's
    thread count and accelerator, as plain JSON values."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),  # by affinity and CPU quota: what the threads run on
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "packages": {name: _version(name) for name in PACKAGES},
    }


def describe(environment: dict) -> str:
    """One line for a report: 'Python 3.11.9, torch 2.13.0+cpu (2 threads), numpy 2.4.6, ...; CPU ...'."""
    packages = dict(environment["packages"])
    torch_version = packages.pop("torch")
    threads = environment["torch_threads"]
    parts = [
        f"Python {environment['python']}",
        f"torch {torch_version} ({threads} thread{'s' * (threads != 1)})",
    ]
    parts += [f"{name} {version}" for name, version in packages.items() if version is not None]
    where = f"{environment['cpu']}, {environment['cores']} cores"
    usable = environment.get("usable_cores", environment["cores"])  # not recorded before 2026-12-06
    if usable != environment["cores"]:
        where += f" ({usable} usable)"
    if environment["cuda_device"]:
        where += f", {environment['cuda_device']}"
    return ", ".join(parts) + f"; {where}"
