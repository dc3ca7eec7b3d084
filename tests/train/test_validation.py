"""Validation loss on held-out episodes: logged at its interval, fixed (same model, same number),
and without any effect on what training computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from leanvla.errors import UserError
from leanvla.train.loop import train
from tests.helpers import tiny_train_config


def cfg(data, out, tmp_path, **kw):
    (tmp_path / "train.json").write_text(json.dumps([0, 1, 2]))
    (tmp_path / "val.json").write_text(json.dumps([3]))
    options = dict(episodes=tmp_path / "train.json", steps=6, batch_size=4, log_every=2)
    return tiny_train_config(data, out, **{**options, **kw})


def test_val_loss_logged_and_training_unchanged(data, tmp_path):
    plain = train(cfg(data, tmp_path / "plain", tmp_path), progress=False)
    validated = train(
        cfg(data, tmp_path / "val", tmp_path, val_episodes=tmp_path / "val.json", val_every=4, val_samples=8),
        progress=False,
    )
    lines = [json.loads(s) for s in (validated / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "val_loss" in r] == [4, 6]
    assert all(r["val_loss"] > 0 for r in lines if "val_loss" in r)
    a = load_file(str(plain / "policy" / "model.safetensors"))
    b = load_file(str(validated / "policy" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_val_loss_is_a_fixed_quantity(data, tmp_path):
    from leanvla.data.normalize import Normalizer
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import load_model
    from leanvla.models.policy import Observation
    from leanvla.train.validation import ValidationSet

    run = train(cfg(data, tmp_path / "r", tmp_path), progress=False)
    model, meta, stats, _ = load_model(run)
    held = ChunkDataset(LeRobotDataset(data), meta["model"]["cameras"], 4, [3])
    normalizer = Normalizer(stats, meta["state_key"], meta["action_key"], meta["model"]["cameras"])
    tokens, mask = model.tokenizer.batch(held.instructions)
    model.train()
    first = ValidationSet(held, normalizer, tokens, mask, 8, seed=0).loss(model)
    again = ValidationSet(held, normalizer, tokens, mask, 8, seed=0).loss(model)
    assert first == again and model.training  # the mode it was in comes back
    model.eval()
    assert ValidationSet(held, normalizer, tokens, mask, 8, seed=0).loss(model) == first
    assert not model.training  # eval mode too
    # In batches of 3 it is still the mean error over every real (unpadded) action step of the 8.
    batched = ValidationSet(held, normalizer, tokens, mask, 8, seed=0, batch_size=3)
    whole = held.batch(batched.rows)  # every sample at once: what was held for the whole of training
    obs = Observation(
        normalizer.images(whole.images),
        normalizer.state(whole.state),
        tokens[whole.task_index],
        mask[whole.task_index],
        whole.task_index,
    )
    with torch.no_grad():
        err = model.action_error(obs, normalizer.action(whole.actions), batched.noise, batched.t)
    expected = float((err * whole.action_mask).sum() / whole.action_mask.sum())
    assert batched.loss(model) == pytest.approx(expected, rel=1e-5)
    assert whole.action_mask.sum() < whole.action_mask.numel()  # some steps are padding: the count matters


def test_the_held_out_frames_are_read_as_each_batch_is_evaluated_not_held(data, monkeypatch):
    """Held whole for the whole of training: 150 MB for 256 samples of one 224 px camera."""
    from leanvla.data.normalize import Normalizer
    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.train.validation import ValidationSet

    held = ChunkDataset(LeRobotDataset(data), ["observation.images.cam"], 4, [3])
    read = []
    monkeypatch.setattr(
        held, "images", lambda rows: read.append(len(rows)) or ChunkDataset.images(held, rows)
    )
    normalizer = Normalizer(held.stats(), held.state_key, held.action_key, held.cameras)
    tokens = torch.zeros(len(held.instructions), 2, dtype=torch.long)
    validation = ValidationSet(held, normalizer, tokens, torch.ones_like(tokens), 8, seed=0, batch_size=3)
    assert read == []
    obs, actions, mask = validation.batch(slice(3, 6))
    assert read == [3] and obs.images.shape[0] == actions.shape[0] == mask.shape[0] == 3


def test_overlap_with_training_is_refused(data, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([2, 3]))
    with pytest.raises(UserError, match=r"shares episodes \[2\] with the training episodes"):
        train(cfg(data, tmp_path / "o", tmp_path, val_episodes=tmp_path / "bad.json"), progress=False)


def test_a_held_out_selection_is_refused_under_its_own_flag(data, tmp_path):
    with pytest.raises(UserError, match=r"^--val-episodes 3:9: the range 3:9 runs past the dataset's last"):
        train(cfg(data, tmp_path / "o", tmp_path, val_episodes=Path("3:9")), progress=False)


def test_a_held_out_episode_of_lerobots_own_dataset_validates(lerobot_fixture, tmp_path):
    # Its PNG camera read for the last episode alone: whole read batches keep none of their frames
    # (this crashed with a traceback once).
    (tmp_path / "train.json").write_text(json.dumps(list(range(8))))
    (tmp_path / "val.json").write_text(json.dumps([8]))
    options = dict(episodes=tmp_path / "train.json", val_episodes=tmp_path / "val.json", steps=2, val_every=2)
    run = train(tiny_train_config(lerobot_fixture, tmp_path / "run", **options), progress=False)
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "val_loss" in r] == [2]
