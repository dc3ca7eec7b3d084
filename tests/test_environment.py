"""The software and machine record every training run and evaluation keeps."""

from __future__ import annotations

import json
from importlib import metadata

import torch

from leanvla.environment import PACKAGES, describe, software_environment


def test_versions_are_the_installed_ones():
    env = software_environment()
    for name in PACKAGES:
        try:
            assert env["packages"][name] == metadata.version(name)
        except metadata.PackageNotFoundError:
            assert env["packages"][name] is None
    assert env["torch_threads"] == torch.get_num_threads() and 1 <= env["usable_cores"] <= env["cores"]
    json.dumps(env)  # plain JSON values: it goes into environment.json and eval.json


def test_description_names_versions_threads_and_machine_and_skips_missing_packages():
    env = {
        "python": "3.11.9",
        "platform": "Linux",
        "cpu": "Some CPU",
        "cores": 16,
        "torch_threads": 2,
        "cuda_device": "NVIDIA H200",
        "packages": {"torch": "2.13.0", "numpy": "2.4.6", "peft": None, "mujoco": "3.3.0"},
    }
    assert describe(env) == (
        "Python 3.11.9, torch 2.13.0 (2 threads), numpy 2.4.6, mujoco 3.3.0; Some CPU, 16 cores, NVIDIA H200"
    )
    assert describe({**env, "cuda_device": None}).endswith("; Some CPU, 16 cores")
    assert "torch 2.13.0 (1 thread)," in describe({**env, "torch_threads": 1})
    assert describe({**env, "usable_cores": 16}) == describe(env)  # an older record has none
    assert "; Some CPU, 16 cores (4 usable), NVIDIA H200" in describe({**env, "usable_cores": 4})


def test_the_processor_is_named_as_proc_cpuinfo_names_it(tmp_path, monkeypatch):
    import builtins

    import leanvla.environment

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
    )
    real_open = builtins.open
    monkeypatch.setattr(
        builtins,
        "open",
        lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k),
    )
    assert leanvla.environment._cpu_model() == "Intel(R) Xeon(R) CPU @ 2.20GHz"
