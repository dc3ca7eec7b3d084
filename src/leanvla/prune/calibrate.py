"""The calibration pass: forward hooks record every layer's output in each named stack, and the
layer-to-layer similarities accumulate batch by batch (memory bounded by the stack, not the data).

`record_similarity` works on any model through its layout: the caller supplies the batches and a
`run(batch)` that calls the model and returns, per stack, which tokens are real (padding must not
count as samples). `vla_calibration` is that caller for the reference VLA on a LeRobotDataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from leanvla.errors import UserError
from leanvla.models.layout import Layout
from leanvla.prune.similarity import SimilarityAccumulator

TokenMasks = dict[str, torch.Tensor | None]  # stack -> B x T bool (True = real token), None = all


def _hidden(output: Any) -> torch.Tensor:
    """A layer's hidden states from whatever it returns (a tensor, or a tuple led by one)."""
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.no_grad()
def record_similarity(
    model: nn.Module,
    layout: Layout,
    stacks: list[str],
    batches: Iterable[Any],
    run: Callable[[Any], TokenMasks],
    progress: bool = False,
) -> dict[str, SimilarityAccumulator]:
    """Per stack, similarity sums over all calibration tokens of its L + 1 representations."""
    seen: dict[str, list[torch.Tensor | None]] = {}
    handles = []
    for name in stacks:
        layers = layout.layers(model, name)
        if len(layers) == 0:
            raise UserError(f"stack '{name}' has no layers to calibrate")
        seen[name] = [None] * (len(layers) + 1)

        def keep_input(module, args, kwargs, name=name):
            seen[name][0] = args[0] if args else kwargs["hidden_states"]

        handles.append(layers[0].register_forward_pre_hook(keep_input, with_kwargs=True))
        for i, layer in enumerate(layers):

            def keep_output(module, args, output, name=name, slot=i + 1):
                seen[name][slot] = _hidden(output)

            handles.append(layer.register_forward_hook(keep_output))

    accumulators: dict[str, SimilarityAccumulator] = {}
    try:
        from tqdm import tqdm

        with tqdm(batches, desc="calibrate", unit="batch", disable=not progress) as bar:
            for batch in bar:
                for name in stacks:
                    seen[name] = [None] * len(seen[name])
                masks = run(batch)
                for name in stacks:
                    reps = seen[name]
                    if any(r is None for r in reps):
                        raise UserError(
                            f"stack '{name}' did not run during calibration: does the model's forward use it?"
                        )
                    stacked = torch.stack([r.float() for r in reps])  # R x B x T x d
                    mask = masks.get(name)
                    tokens = stacked[:, mask] if mask is not None else stacked.flatten(1, -2)  # R x n x d
                    if name not in accumulators:
                        accumulators[name] = SimilarityAccumulator(tokens.shape[0], tokens.shape[-1])
                    accumulators[name].update(tokens)
    finally:
        for h in handles:
            h.remove()
    return accumulators


def vla_calibration(
    model: nn.Module,
    data,
    normalizer,
    num_samples: int,
    batch_size: int,
    seed: int,
) -> tuple[list[torch.Tensor], Callable[[torch.Tensor], TokenMasks]]:
    """Calibration batches (frame rows) for the reference VLA and the `run` that feeds them.

    Frames are drawn task-balanced with a seeded generator; each batch runs the training forward
    (prefix + action expert on flow-matching inputs) with seeded noise and flow times, so the
    expert sees the inputs it is trained on and the pass is reproducible.
    """
    from leanvla.models.policy import Observation
    from leanvla.train.loop import flow_time

    generator = torch.Generator().manual_seed(seed)
    rows = data.sample_indices(num_samples, generator)
    batches = list(rows.split(batch_size))
    tokens, token_mask = model.tokenizer.batch(data.instructions)

    def run(batch_rows: torch.Tensor) -> TokenMasks:
        batch = data.batch(batch_rows)
        task = batch.task_index
        obs = Observation(
            normalizer.images(batch.images),
            normalizer.state(batch.state),
            tokens[task],
            token_mask[task],
            task,
        )
        actions = normalizer.action(batch.actions)
        draw = torch.Generator().manual_seed(seed + int(batch_rows[0]))
        noise = torch.randn(actions.shape, generator=draw)
        t = flow_time(torch.rand(actions.shape[0], generator=draw))
        prefix = model.prefix_of(obs)  # what action_error does, keeping the prefix's padding mask
        model.head_error(prefix, actions, noise, t)
        return {"backbone": prefix.valid, "expert": None, "vision": None}

    return batches, run
