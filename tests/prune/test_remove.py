"""Physical removal: exact outputs when nothing is removed, identity-skip equivalence where the
semantics allow it, rebuilt layer maps, checkpoints that reload, and a Hugging Face decoder."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

from leanvla.models.config import vla_config
from leanvla.models.layout import HF_DECODER_LAYOUT, VLA_LAYOUT
from leanvla.models.policy import Observation
from leanvla.models.vla import VLA
from leanvla.prune.remove import remap_layer_targets, remove_layers


def tiny_vla(**overrides) -> VLA:
    torch.manual_seed(0)
    cfg = vla_config("tiny", image_size=32, chunk_size=8, layers=5, expert_layers=5, **overrides)
    return VLA(cfg).eval()


def inputs(model: VLA, b: int = 3):
    g = torch.Generator().manual_seed(1)
    tokens, mask = model.tokenizer.batch(["open the door", "reach the goal"])
    task = torch.tensor([0, 1, 0])[:b]
    obs = Observation(
        torch.randn(b, 1, 3, 32, 32, generator=g),
        torch.randn(b, 4, generator=g),
        tokens[task],
        mask[task],
        task,
    )
    actions, noise = torch.randn(b, 8, 4, generator=g), torch.randn(b, 8, 4, generator=g)
    return obs, actions, noise, torch.rand(b, generator=g)


def test_removing_nothing_keeps_outputs_exactly():
    model = tiny_vla()
    args = inputs(model)
    before = model.action_error(*args)
    pruned = remove_layers(copy.deepcopy(model), VLA_LAYOUT, {"backbone": [], "expert": []})
    assert torch.equal(pruned.action_error(*args), before)
    assert pruned.cfg.expert_to_backbone == model.cfg.expert_to_backbone


def test_removed_expert_layers_equal_skipping_them():
    model = tiny_vla()
    args = inputs(model)
    skipped = copy.deepcopy(model)
    for i in (1, 3):  # the reference: the same model with these layers turned into identities
        skipped.expert.layers[i].register_forward_hook(lambda m, a, out: (a[0], out[1]))
    pruned = remove_layers(copy.deepcopy(model), VLA_LAYOUT, {"expert": [1, 3]})
    assert pruned.cfg.expert_layers == 3 and len(pruned.expert.layers) == 3
    assert torch.allclose(pruned.action_error(*args), skipped.action_error(*args), atol=1e-6)


def test_removed_backbone_layer_targets_move_to_the_next_kept_layer():
    assert remap_layer_targets([0, 1, 2, 3, 4], kept=[0, 2, 4]) == [0, 1, 1, 2, 2]
    assert remap_layer_targets([3, 4], kept=[0, 1, 2]) == [2, 2]
    model = tiny_vla()
    assert model.cfg.expert_to_backbone == [0, 1, 2, 3, 4]
    pruned = remove_layers(model, VLA_LAYOUT, {"backbone": [1, 3], "expert": [2]})
    assert pruned.cfg.layers == 3 and pruned.cfg.expert_layers == 4
    assert pruned.cfg.expert_to_backbone == [0, 1, 2, 2]  # old targets 0, 1->2, 3->4, 4 over kept [0, 2, 4]


def test_pruned_model_rebuilds_from_its_config_and_weights(tmp_path):
    from leanvla.models.checkpoint import build_model, load_state_dict_checked

    model = tiny_vla()
    pruned = remove_layers(model, VLA_LAYOUT, {"backbone": [1, 2], "expert": [1]})
    rebuilt = build_model({"type": "vla", "model": pruned.cfg.to_dict()}).eval()
    load_state_dict_checked(rebuilt, pruned.state_dict(), "pruned")
    args = inputs(pruned)
    assert torch.equal(rebuilt.action_error(*args), pruned.action_error(*args))


def test_bad_removals_are_refused():
    from leanvla.errors import UserError

    with pytest.raises(UserError, match="cannot remove"):
        remove_layers(tiny_vla(), VLA_LAYOUT, {"backbone": [7]})
    with pytest.raises(UserError, match="no layers"):
        remove_layers(tiny_vla(), VLA_LAYOUT, {"backbone": [0, 1, 2, 3, 4]})


def test_hugging_face_llama_decoder():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=6,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(0))
    skipped = copy.deepcopy(model)
    for i in (2, 4):

        def identity(module, args, kwargs, output):
            hidden = args[0] if args else kwargs["hidden_states"]
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        skipped.model.layers[i].register_forward_hook(identity, with_kwargs=True)
    pruned = remove_layers(copy.deepcopy(model), HF_DECODER_LAYOUT, {"decoder": [2, 4]})
    assert pruned.config.num_hidden_layers == 4
    assert [layer.self_attn.layer_idx for layer in pruned.model.layers] == [0, 1, 2, 3]
    with torch.no_grad():
        expected = skipped(ids).logits
        assert torch.allclose(pruned(ids).logits, expected, atol=1e-5)
        # the KV cache is indexed by the renumbered layers: incremental decoding gives the same logits
        first = pruned(ids[:, :6], use_cache=True)
        # transformers 5.x names the cache `cache` (`past_key_values` is deprecated), 4.x the other
        name = "cache" if "cache" in inspect.signature(type(pruned).forward).parameters else "past_key_values"
        rest = pruned(ids[:, 6:], use_cache=True, **{name: getattr(first, name)})
        assert torch.allclose(rest.logits, expected[:, 6:], atol=1e-5)
