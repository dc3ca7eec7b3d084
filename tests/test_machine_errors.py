import errno
import os

import numpy as np
import pytest
import torch

from leanvla import machine_errors
from leanvla.machine_errors import machine_failure, out_of_memory, refusal_to_open
from tests.helpers import refused_by_the_filesystem

GPU_MESSAGE = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "1.02 GiB is free. Including non-PyTorch memory, this process has 78.16 GiB memory in use. Of the "
    "allocated memory 75.10 GiB is allocated by PyTorch, and 2.50 GiB is reserved by PyTorch but "
    "unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.\nSee documentation"
)


def test_a_gpu_out_of_memory_says_what_was_asked_and_what_the_device_had():
    said = machine_failure(torch.OutOfMemoryError(GPU_MESSAGE), "a smaller --batch-size needs less")
    assert said == (
        "out of memory (Tried to allocate 2.00 GiB; GPU 0 has a total capacity of 79.19 GiB of which "
        "1.02 GiB is free); a smaller --batch-size needs less"
    )


def test_the_cpu_allocators_failure_in_gib_with_what_was_available(monkeypatch):
    monkeypatch.setattr(machine_errors, "available_memory", lambda: 3 * 2**30)
    try:
        torch.empty(2**50, dtype=torch.uint8)  # 1 PiB: no machine gives it
    except RuntimeError as exc:
        caught = exc
    assert out_of_memory(caught) == "tried to allocate 1048576.0 GiB; 3.0 GiB was available"
    monkeypatch.setattr(machine_errors, "available_memory", lambda: None)  # not Linux
    assert out_of_memory(caught) == "tried to allocate 1048576.0 GiB"


def test_numpys_memory_error_keeps_its_own_words():
    try:
        np.empty(2**50, dtype=np.uint8)
    except MemoryError as exc:
        caught = exc
    assert out_of_memory(caught).startswith("Unable to allocate 1.00 PiB for an array with shape")
    assert out_of_memory(MemoryError()) == "an allocation failed"


@pytest.mark.parametrize(
    "number, says",
    [
        (errno.ENOSPC, "No space left on device: /runs/a/last; free some space there, or write elsewhere"),
        (errno.EDQUOT, "Disk quota exceeded: /runs/a/last; free some space there, or write elsewhere"),
        (errno.EROFS, "Read-only file system: /runs/a/last; write elsewhere"),
        (errno.EACCES, "Permission denied: /runs/a/last; change its permissions, or use another place"),
    ],
)
def test_a_filesystems_refusal_names_the_file_and_what_to_do(number, says):
    assert machine_failure(OSError(number, os.strerror(number), "/runs/a/last")) == says
    # a write to an open file names none
    assert machine_failure(OSError(number, os.strerror(number))) == says.replace(": /runs/a/last", "")


def test_a_file_the_filesystem_refuses_is_said_as_pythons_open_says_it(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"weights")
    assert refusal_to_open(path) is None
    assert refusal_to_open(tmp_path / "absent") is None  # missing: each reader says so its own way
    refused_by_the_filesystem(monkeypatch, path)
    refused = refusal_to_open(path)
    assert isinstance(refused, PermissionError) and refused.filename == str(path)
    assert (
        machine_failure(refused) == f"Permission denied: {path}; change its permissions, or use another place"
    )


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/runs/a/config.json"),
        ValueError("out of memory"),  # not a kind an allocation raises
        OSError("no number"),
    ],
)
def test_anything_else_is_not_the_machines_and_keeps_its_traceback(exc):
    assert machine_failure(exc) is None
