"""Capability vectors over any state dict: difference, scaled sums, TIES / DARE, diagnostics.

    tau   = theta_aux - theta_sft          over the parameters all checkpoints share
    meta  = theta_0 + sum_g lambda_g tau_g  (lambda per module group: backbone, expert, vision, other)

Parameters only one side has (the auxiliary head) are excluded. Nothing here assumes a transformer:
any two state dicts with the same names and shapes merge (mergekit cannot do that). `along` asks the
converse question after fine-tuning from a meta model: how much of the vector did the update undo?
"""

from __future__ import annotations

import re

import torch

from leanvla.errors import UserError, require
from leanvla.models.checkpoint import first_mismatch
from leanvla.optional import require_module

StateDict = dict[str, torch.Tensor]
OTHER = "other"


def check_compatible(reference: StateDict, other: StateDict, ref_name: str, other_name: str) -> None:
    """Raise a UserError naming the first parameter of `reference` that `other` lacks or shapes differently."""
    name = first_mismatch(reference, other)
    if name is not None and name not in other:
        raise UserError(
            f"parameter '{name}' of {ref_name} is missing from {other_name}; they are not the same model"
        )
    if name is not None:
        raise UserError(
            f"parameter '{name}' has shape {list(reference[name].shape)} in {ref_name} but "
            f"{list(other[name].shape)} in {other_name}"
        )


# Config keys that only add training-time heads; the shared architecture does not depend on them.
TRAINING_ONLY_KEYS = {"aux_horizon", "aux_env_dim", "aux_pixels"}


def check_same_config(configs: dict[str, dict]) -> None:
    """Raise a UserError naming the first model-config key on which the checkpoints disagree."""
    (first_name, first), *rest = configs.items()
    for name, cfg in rest:
        for key in sorted((set(first) | set(cfg)) - TRAINING_ONLY_KEYS):
            if first.get(key) != cfg.get(key):
                raise UserError(
                    f"model config '{key}' is {first.get(key)!r} in {first_name} but {cfg.get(key)!r} in {name}; "
                    "merge checkpoints of one architecture"
                )


def capability_vector(sft: StateDict, aux: StateDict) -> StateDict:
    """tau = aux - sft over the floating-point parameters both have (auxiliary heads excluded)."""
    check_compatible(sft, aux, "the SFT checkpoint", "the auxiliary checkpoint")
    return {k: (aux[k].double() - v.double()).to(v.dtype) for k, v in sft.items() if v.is_floating_point()}


def group_of(name: str, prefixes: dict[str, str]) -> str:
    """The module group of a parameter: the layout stack whose path prefixes it, else 'other'."""
    for group, prefix in prefixes.items():
        if name.startswith(prefix + "."):
            return group
    return OTHER


def add_scaled(
    base: StateDict, vector: StateDict, scale: float, group_scale: dict[str, float], prefixes: dict[str, str]
) -> StateDict:
    """base + lambda_g * vector, with lambda_g = group_scale.get(group, scale); vector-less entries copied."""
    out = {}
    for name, tensor in base.items():
        if name in vector:
            lam = group_scale.get(group_of(name, prefixes), scale)
            out[name] = (tensor.double() + lam * vector[name].double()).to(tensor.dtype)
        else:
            out[name] = tensor.clone()
    return out


METHODS = ("task-arithmetic", "ties", "dare-linear", "dare-ties")


def combine(
    vectors: list[StateDict], weights: list[float], method: str, density: float, seed: int
) -> StateDict:
    """One vector from several, per parameter, with peft's merge utilities (TIES / DARE / sum)."""
    require(method in METHODS, f"--method must be one of {METHODS}, got '{method}'")
    merge_utils = _peft_merge_utils(method)
    require(
        len(weights) == len(vectors),
        f"{len(weights)} weights for {len(vectors)} vectors; give one per vector",
    )
    require(0 < density <= 1, f"--density must be in (0, 1], got {density}")
    for i, v in enumerate(vectors[1:], start=2):
        check_compatible(vectors[0], v, "vector 1", f"vector {i}")
    w = torch.tensor(weights, dtype=torch.float64)
    # DARE's random drops draw from the CPU generator (peft takes none of its own): seed it alone,
    # and give the caller's stream back after. torch.manual_seed would reseed every GPU's too.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        out = {}
        for name, first in vectors[0].items():
            stack = [v[name].double() for v in vectors]
            if method == "task-arithmetic":
                merged = merge_utils.task_arithmetic(stack, w)
            elif method == "ties":
                merged = merge_utils.ties(stack, w, density)
            elif method == "dare-linear":
                merged = merge_utils.dare_linear(stack, w, density)
            else:
                merged = merge_utils.dare_ties(stack, w, density)
            out[name] = merged.to(first.dtype)
        return out


# peft before 0.19 left DARE's rescaling out (`torch.div` without its result): what DARE keeps
# shrank by the density, without a word. pyproject asks for 0.19, but LeRobot's `wallx` extra pins
# peft 0.17.1, and pip installs it over ours.
DARE_RESCALED_SINCE = (0, 19)


def _peft_merge_utils(method: str):
    """peft's merge utilities; for DARE, refused in one line where peft is too old to rescale."""
    peft = require_module("peft")
    if method.startswith("dare"):
        installed = tuple(int(part) for part in re.findall(r"\d+", peft.__version__)[:2])
        require(
            installed >= DARE_RESCALED_SINCE,
            f"--method {method} needs peft 0.19 or newer: peft {peft.__version__}, installed here, does not "
            "rescale what DARE keeps (its merge would shrink by --density); pip install 'peft>=0.19', or "
            "use --method ties or task-arithmetic",
        )
    return require_module("peft.utils.merge_utils")


def diagnostics(vectors: dict[str, StateDict], prefixes: dict[str, str]) -> dict:
    """Per parameter: each vector's norm; per pair of vectors: cosine per parameter and per group."""
    names = list(vectors)
    first = vectors[names[0]]
    per_param = {
        p: {n: float(vectors[n][p].double().norm()) for n in names if p in vectors[n]}
        for p in first
        if first[p].dim() >= 1
    }
    cosines = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pair, groups = {}, {}
            for p in first:
                if p not in vectors[b]:
                    continue
                x, y = vectors[a][p].double().flatten(), vectors[b][p].double().flatten()
                pair[p] = float(x @ y / (x.norm() * y.norm()).clamp_min(1e-30))
                g = groups.setdefault(group_of(p, prefixes), [0.0, 0.0, 0.0])
                g[0] += float(x @ y)
                g[1] += float(x @ x)
                g[2] += float(y @ y)
            cosines[f"{a} vs {b}"] = {
                "per_parameter": pair,
                "per_group": {g: v[0] / max(1e-30, (v[1] * v[2]) ** 0.5) for g, v in groups.items()},
            }
    return {"norms": per_param, "cosines": cosines}


def along(update: StateDict, vector: StateDict) -> dict:
    """How a fine-tuning's update lies against the vector its start carried, over their shared parameters:

    - `coefficient`: c in update = c tau + (a part orthogonal to tau); from a meta model at scale
      lambda, -c / lambda is the share of the merged vector the fine-tuning undid;
    - `cosine`: of update and tau as whole vectors, and `norm_ratio`, |update| / |tau|;
    - `mean_squared_cosine`: the orthogonal penalty's own measure, cos^2 per matrix averaged over the
      matrices, beside `random_squared_cosine`, its expectation for an update of random direction (1 / size);
    - `most_aligned`: the matrix with the largest |cos| and that cosine (signed)."""
    dot = tau_sq = update_sq = 0.0
    per_matrix: dict[str, float] = {}  # signed cosine per matrix
    for name, tau in vector.items():
        if name not in update:
            continue
        u, t = update[name].double().flatten(), tau.double().flatten()
        inner, uu, tt = float(u @ t), float(u @ u), float(t @ t)
        dot, update_sq, tau_sq = dot + inner, update_sq + uu, tau_sq + tt
        if tau.dim() >= 2:
            per_matrix[name] = inner / max((uu * tt) ** 0.5, 1e-30)
    require(per_matrix, "the update and the vector share no matrix: are they of one architecture?")
    worst = max(per_matrix, key=lambda n: abs(per_matrix[n]))
    return {
        "coefficient": dot / max(tau_sq, 1e-30),
        "cosine": dot / max((tau_sq * update_sq) ** 0.5, 1e-30),
        "norm_ratio": (update_sq / max(tau_sq, 1e-30)) ** 0.5,
        "mean_squared_cosine": sum(c * c for c in per_matrix.values()) / len(per_matrix),
        "random_squared_cosine": sum(1 / vector[n].numel() for n in per_matrix) / len(per_matrix),
        "most_aligned": [worst, per_matrix[worst]],
    }
