"""What the optimizer steps on: gradients clipped to --grad-clip, and each added objective (the
auxiliary one, the orthogonal penalty) entering with its weight. A spy on the loop's AdamW reads
the gradients at every step."""

from __future__ import annotations

import torch

from leanvla.train import loop
from leanvla.train.config import AuxOptions, OrthOptions
from leanvla.train.loop import train
from tests.helpers import tiny_train_config


def gradients_seen(monkeypatch, cfg) -> list[dict[str, torch.Tensor]]:
    """Train `cfg`; the gradients of every parameter as the optimizer saw them, step by step."""
    seen: list[dict[str, torch.Tensor]] = []
    build = loop.adamw

    def spying_adamw(model, *args, **kwargs):
        optimizer = build(model, *args, **kwargs)
        step = optimizer.step

        def recorded_step(*a, **kw):
            seen.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
            return step(*a, **kw)

        optimizer.step = recorded_step
        return optimizer

    with monkeypatch.context() as patch:
        patch.setattr(loop, "adamw", spying_adamw)
        train(cfg, progress=False)
    return seen


def test_the_optimizer_sees_gradients_clipped_to_grad_clip(data, tmp_path, monkeypatch):
    clip = 1e-3
    clipped = gradients_seen(monkeypatch, tiny_train_config(data, tmp_path / "clip", steps=3, grad_clip=clip))
    free = gradients_seen(monkeypatch, tiny_train_config(data, tmp_path / "free", steps=3, grad_clip=0.0))
    assert all(torch.nn.utils.get_total_norm(g.values()) <= clip * (1 + 1e-5) for g in clipped)
    assert all(
        torch.nn.utils.get_total_norm(g.values()) > 10 * clip for g in free
    )  # so the clip did cut them


def weighted_gradients(monkeypatch, make_cfg, weights, step: int) -> list[torch.Tensor]:
    """The flat gradient at `step` (0-based) of runs that differ only in one objective's weight."""
    flat = []
    for w in weights:
        grads = gradients_seen(monkeypatch, make_cfg(w))[step]
        flat.append(
            torch.cat([g.flatten() for n, g in sorted(grads.items()) if not n.startswith("aux_head")])
        )
    return flat


def assert_linear_in_the_weight(g0, g1, g3):
    """g(w) = g(0) + w x (the added term's gradient): the term enters with its weight."""
    term = g1 - g0
    assert not torch.allclose(g1, g0)
    # Differences of gradients cancel: float rounding is relative to the term's largest entry, not to
    # each entry (an absolute 1e-7 failed once in ~400k entries, at 1.8e-7).
    torch.testing.assert_close(g3 - g0, 3 * term, rtol=1e-4, atol=1e-4 * float(term.abs().max()))


def test_the_auxiliary_objective_enters_with_its_weight(data, tmp_path, monkeypatch):
    def cfg(w):
        aux = AuxOptions(horizon=2, weight=w)
        return tiny_train_config(data, tmp_path / f"aux{w}", steps=1, grad_clip=0.0, aux=aux)

    assert_linear_in_the_weight(*weighted_gradients(monkeypatch, cfg, (0.0, 1.0, 3.0), step=0))


def test_the_orthogonal_penalty_enters_with_its_weight(data, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    base = train(tiny_train_config(data, tmp_path / "base", steps=2), progress=False)
    g = torch.Generator().manual_seed(0)
    weights = load_file(str(base / "policy" / "model.safetensors"))
    vector = {k: torch.randn(v.shape, generator=g) for k, v in weights.items() if v.dim() == 2}
    save_file(vector, str(tmp_path / "tau.safetensors"))

    def cfg(w):
        orth = OrthOptions(vector=tmp_path / "tau.safetensors", weight=w)
        return tiny_train_config(data, tmp_path / f"orth{w}", init=base, steps=2, grad_clip=0.0, orth=orth)

    # The penalty's gradient is 0 at the start (no update yet): read the second step, which every
    # run reaches from the same weights (the first step's penalty term was 0 in all of them).
    assert_linear_in_the_weight(*weighted_gradients(monkeypatch, cfg, (0.0, 1.0, 3.0), step=1))
