"""Checkpoints round-trip exactly and refuse weights that do not fit their config."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from leanvla.data.stats import stats_from_json, vector_stats
from leanvla.errors import InputWarning, UserError
from leanvla.models.checkpoint import load_model, load_policy, make_meta, resolve_checkpoint, save_checkpoint
from leanvla.models.config import vla_config
from leanvla.models.vla import VLA
from tests.helpers import refused_by_the_filesystem

CAM = "observation.images.cam"


def _save(tmp_path, cameras: tuple[str, ...] = (CAM,), **config):
    torch.manual_seed(0)
    cfg = vla_config("tiny", cameras=list(cameras), image_size=16, chunk_size=4, n_action_steps=2, **config)
    model = VLA(cfg)
    meta = make_meta("vla", cfg.to_dict(), ["reach the goal position"], "observation.state", "action", 80)
    x = torch.randn(50, 4).numpy()
    stats = {"observation.state": vector_stats(x), "action": vector_stats(x)}
    for key in cameras:
        stats[key] = {"mean": torch.full((3, 1, 1), 0.5).numpy(), "std": torch.full((3, 1, 1), 0.2).numpy()}
    save_checkpoint(tmp_path / "ckpt", model, meta, stats, {"positions": [[0.1, 0.2]]})
    return model, tmp_path / "ckpt"


def test_round_trip_gives_identical_actions(tmp_path):
    model, path = _save(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "provenance.json",
        "stats.json",
    ]
    policy = load_policy(path)
    images = torch.randint(0, 256, (2, 1, 3, 16, 16), dtype=torch.uint8)
    state, task = torch.randn(2, 4), torch.zeros(2, dtype=torch.long)
    a = policy.act(images, state, task, torch.Generator().manual_seed(3))
    model.eval()
    obs = policy.observation(images, state, task)
    b = policy.normalizer.unaction(
        model.predict(obs, torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(3)))
    )
    assert torch.equal(a, b)
    assert a.shape == (2, 4, 4)


def test_every_file_of_a_checkpoint_is_readable_as_any_other_output(tmp_path):
    """safetensors creates its file 0600: a checkpoint on a shared disk was a permission error to
    everyone but whoever wrote it."""
    _, path = _save(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()} == {
        p.name: 0o666 & ~umask for p in path.iterdir()
    }


def test_safetensors_own_io_error_is_the_oserror_it_is(tmp_path, monkeypatch):
    """ "SafetensorError: Error while serializing: I/O error: No space left on device (os error 28)"
    was a traceback (measured on a full 1 MB tmpfs); now the one line a full disk gets."""
    import errno

    from safetensors import SafetensorError

    from leanvla.machine_errors import machine_failure
    from leanvla.models import checkpoint

    def failing(message):
        def save_file(*args, **kwargs):
            raise SafetensorError(message)

        return save_file

    monkeypatch.setattr(
        checkpoint,
        "save_file",
        failing("Error while serializing: I/O error: No space left on device (os error 28)"),
    )
    with pytest.raises(OSError) as full:
        checkpoint.save_tensors({"a": torch.zeros(2)}, tmp_path / "w.safetensors")
    assert (full.value.errno, full.value.filename) == (errno.ENOSPC, str(tmp_path / "w.safetensors"))
    assert machine_failure(full.value).startswith(
        f"No space left on device: {tmp_path / 'w.safetensors'}; free"
    )
    monkeypatch.setattr(checkpoint, "save_file", failing("Error while serializing: tensor is not contiguous"))
    with pytest.raises(SafetensorError, match="not contiguous"):  # not the machine's: a bug, as it was
        checkpoint.save_tensors({"a": torch.zeros(2)}, tmp_path / "w.safetensors")


def test_the_same_model_saved_again_gives_the_same_bytes(tmp_path):
    # safetensors writes its metadata in hash order, which changes from one save to the next: with
    # two entries, 20 saves all alike would be a 1-in-500000 chance.
    model, path = _save(tmp_path)
    first = {p.name: p.read_bytes() for p in path.iterdir()}
    meta, stats = json.loads(first["config.json"]), stats_from_json(json.loads(first["stats.json"]))
    for again in range(20):
        save_checkpoint(tmp_path / f"again{again}", model, meta, stats, {"positions": [[0.1, 0.2]]})
        assert {p.name: p.read_bytes() for p in (tmp_path / f"again{again}").iterdir()} == first


def test_a_checkpoint_saved_before_frames_could_be_cropped_pads_them_as_it_was_trained_to(tmp_path):
    _, path = _save(tmp_path)
    meta = json.loads((path / "config.json").read_text())
    assert meta["model"].pop("image_fit") == "pad"
    (path / "config.json").write_text(json.dumps(meta))  # as leanvla wrote it before
    policy = load_policy(path)
    assert policy.meta["model"]["image_fit"] == "pad"
    frames = torch.randint(0, 256, (1, 1, 3, 16, 24), dtype=torch.uint8)
    policy.act(frames, torch.zeros(1, 4), torch.zeros(1, dtype=torch.long))  # fits them


def test_a_checkpoint_saved_before_words_of_any_script_reads_instructions_as_it_was_trained_to(tmp_path):
    _, path = _save(tmp_path)
    meta = json.loads((path / "config.json").read_text())
    assert meta["model"].pop("instruction_words") == "unicode"
    (path / "config.json").write_text(json.dumps(meta))  # as leanvla wrote it before
    tokenizer = load_policy(path).model.tokenizer
    assert tokenizer.encode("Würfel") == [1, tokenizer.token_id("w"), tokenizer.token_id("rfel")]


def test_run_directory_resolves_to_policy_then_last_and_says_when_last(tmp_path):
    _, checkpoint = _save(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(checkpoint, run / "last")
    said = rf"{re.escape(str(run))} holds no finished policy \(policy/\): reading its last checkpoint, "
    with pytest.warns(InputWarning, match=said):
        assert resolve_checkpoint(run) == run / "last"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say where last/ is named, or policy/ is there
        assert resolve_checkpoint(run / "last") == run / "last"
        shutil.copytree(checkpoint, run / "policy")
        assert resolve_checkpoint(run) == run / "policy"


def test_weights_that_do_not_fit_the_config_name_the_parameter(tmp_path):
    _, path = _save(tmp_path)
    weights = load_file(str(path / "model.safetensors"))
    weights["backbone.0.attn.q_proj.weight"] = torch.zeros(3, 3)
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(UserError, match=r"'backbone.0.attn.q_proj.weight' has shape \[3, 3\]"):
        load_model(path)


def test_weights_holding_a_parameter_the_config_lacks_name_it(tmp_path):
    _, path = _save(tmp_path)
    weights = load_file(str(path / "model.safetensors"))
    weights["backbone.9.attn.q_proj.weight"] = torch.zeros(3, 3)
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(
        UserError, match=r"has parameter 'backbone.9.attn.q_proj.weight' that the model config"
    ):
        load_model(path)


def test_truncated_weights_are_one_clear_error(tmp_path):
    _, path = _save(tmp_path)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(
        UserError, match=r"model.safetensors is not a readable safetensors file \(.*\); was it truncated"
    ):
        load_model(path)


def test_config_mismatch_is_reported(tmp_path):
    _, path = _save(tmp_path)
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["layers"] = 3
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no parameter 'backbone.2"):
        load_model(path)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is not a checkpoint"):
        resolve_checkpoint(tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing")


def _edit_meta(path, kind=None, model_extra=(), **top):
    meta = json.loads((path / "config.json").read_text())
    if kind is not None:
        meta["type"] = kind
    meta["model"].update(model_extra)
    (path / "config.json").write_text(json.dumps({**meta, **top}))


def _nan_weights(path):
    weights = load_file(str(path / "model.safetensors"))
    weights["state_proj.weight"][0, 0] = float("nan")  # from elsewhere, or damaged: it loaded, NaN
    save_file(weights, str(path / "model.safetensors"))


def _edit_stats(path, feature, **statistics):
    stats = json.loads((path / "stats.json").read_text())
    stats[feature].update(statistics)
    (path / "stats.json").write_text(json.dumps(stats))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda path: (path / "config.json").write_text("{"), r"cannot read .*config.json: "),
        (
            lambda path: _edit_meta(path, kind="transformer"),
            r"unknown model type 'transformer' in .*config.json; expected 'vla' or 'cnn'$",
        ),
        (
            lambda path: _edit_meta(path, model_extra={"mystery": 1}),
            r"model config has unknown keys \['mystery'\]; was it written by a newer leanvla\?",
        ),
        (
            lambda path: _edit_meta(path, model_extra={"image_fit": "stretch"}),
            r"config.json: image_fit 'stretch' is not one of pad, crop; set it to the fit the policy was "
            "trained with",
        ),
        (
            lambda path: _edit_meta(path, model_extra={"instruction_words": "bytes"}),
            r"config.json: instruction_words 'bytes' is not one of unicode, ascii",
        ),
        (
            lambda path: (path / "stats.json").unlink(),
            "stats.json is missing; a checkpoint needs its normalisation",
        ),
        (lambda path: (path / "stats.json").write_text('{"action": '), r"cannot read .*stats.json: "),
        (
            lambda path: (path / "stats.json").write_text("[1, 2]"),
            r"stats.json must hold a JSON object, not list$",
        ),
        (
            lambda path: (path / "stats.json").write_text('{"action": [0, 1]}'),
            r"stats.json must hold an object of features, each an object of statistics",
        ),
        (
            lambda path: (path / "config.json").write_text("[]"),
            r"config.json must hold a JSON object, not list$",
        ),
        (
            lambda path: (path / "config.json").write_text('{"model": {}}'),
            r"config.json has no 'type': it is not a leanvla checkpoint's config, which holds type, model, "
            r"instructions, state_key, action_key \(was it edited\?\)$",
        ),
        # values its readers take, of the wrong kind: a KeyError, a ValueError, or a policy that loaded
        (
            lambda path: _edit_meta(path, model_extra={"chunk_size": "4"}),
            r"model: 'chunk_size' must be int, got \"4\"$",
        ),
        (
            lambda path: _edit_meta(path, model=[4]),
            r"config.json: 'model' must be an object of the policy's settings$",
        ),
        (
            lambda path: _edit_meta(path, instructions=[]),
            r"config.json: 'instructions' must be a list of the instructions the policy was trained on, got \[\]$",
        ),
        (
            lambda path: _edit_meta(path, action_key=None),
            r"config.json: 'action_key' must be a feature's name, got null$",
        ),
        (
            lambda path: _edit_meta(path, adapter=["lora"]),
            r"config.json, 'adapter' must be an object of the adapters' options$",
        ),
        (
            lambda path: _nan_weights(path),
            r"model.safetensors: 'state_proj.weight' holds a NaN or an infinity; the policy's actions would be NaN$",
        ),
        (
            lambda path: _edit_stats(path, "action", std=[1.0, 1.0]),
            r"stats.json: the std of 'action' holds 2 numbers",
        ),
        (
            lambda path: _edit_stats(path, "action", mean=[0.0, float("nan"), 0, 0]),
            r"'action' holds nan at 1",
        ),
        (
            lambda path: _edit_stats(path, "action", mean=[[0.0], 1, 2, 3]),
            r"cannot read the statistics in .*stats.json",
        ),
        (
            lambda path: _edit_stats(path, CAM, std=None),
            rf"stats.json: the std of '{CAM}' must be numbers, got \[None\]$",
        ),
    ],
)
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, corrupt, message):
    _, path = _save(tmp_path)
    corrupt(path)
    with pytest.raises(UserError, match=message):
        load_model(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"positions": ', r"cannot read .*provenance.json: "),
        ("[]", r"provenance.json must hold a JSON object"),
        (
            '{"positions": "abc"}',
            r"provenance.json: 'positions' must be a list of each episode's positions \(a list",
        ),
        (
            '{"positions": [[0.1, 0.2], [0.3, "x"]]}',
            r"'positions' must be .*, got \[\[0.1, 0.2\], \[0.3, \"x\"\]\]$",
        ),
        (
            '{"episodes": "0,1"}',
            r"provenance.json: 'episodes' must be a list of episode indices, got \"0,1\"$",
        ),
        ('{"episodes": [0, 1.5]}', r"'episodes' must be a list of episode indices, got \[0, 1.5\]$"),
        ('{"dataset": 3}', r"provenance.json: 'dataset' must be the dataset's path, got 3$"),
        ('{"instructions": "reach"}', r"'instructions' must be a list of instructions, got \"reach\"$"),
        (
            '{"camera_shapes": {"cam": [16]}}',
            r"'camera_shapes' must be an object of each camera's \[height, width\]",
        ),
        (
            '{"camera_shapes": [16, 16]}',
            r"'camera_shapes' must be an object of each camera's \[height, width\]",
        ),
    ],
)
def test_a_damaged_provenance_is_one_clear_error(tmp_path, content, message):
    from leanvla.models.checkpoint import read_provenance

    _, path = _save(tmp_path)
    assert read_provenance(path) == {"positions": [[0.1, 0.2]]}
    unknown = {
        "positions": [[0.1, 0.2], None, [0.3]],
        "episodes": [0, 3, 4],
        "camera_shapes": {CAM: [480, 640]},
    }
    (path / "provenance.json").write_text(json.dumps(unknown))
    assert read_provenance(path) == unknown  # null: an episode another recorder added
    (path / "provenance.json").unlink()
    assert read_provenance(path) == {}  # optional: a checkpoint from elsewhere may have none
    (path / "provenance.json").write_text(content)
    with pytest.raises(UserError, match=message):
        read_provenance(path)


def test_weights_the_filesystem_refuses_are_not_said_to_be_missing(tmp_path, monkeypatch):
    """safetensors says "No such file or directory" of a file it may not open (a colleague's,
    written 0600 as safetensors writes): `eval` said the policy's weights did not exist."""
    from leanvla.models import checkpoint

    path = tmp_path / "model.safetensors"
    path.write_bytes(b"weights")
    refused_by_the_filesystem(monkeypatch, path)

    def as_safetensors_refuses(filename, *args, **kwargs):
        raise FileNotFoundError(f"No such file or directory: {filename}")

    monkeypatch.setattr(checkpoint, "load_file", as_safetensors_refuses)
    with pytest.raises(PermissionError) as refused:
        checkpoint.read_weights(path)
    assert refused.value.filename == str(path)


def test_missing_weights_and_an_unknown_size_are_one_clear_error(tmp_path):
    from leanvla.models.checkpoint import read_weights

    with pytest.raises(UserError, match=f"{tmp_path / 'tau.safetensors'} does not exist"):
        read_weights(tmp_path / "tau.safetensors")
    with pytest.raises(UserError, match="unknown model size 'huge'; choose one of tiny, "):
        vla_config("huge")


def test_weights_are_refused_exactly_when_one_is_not_finite():
    from leanvla.models.checkpoint import require_finite

    largest = torch.full((1000,), torch.finfo(torch.float32).max)  # their float32 sum would overflow
    require_finite({"big": largest, "half": largest.half().nan_to_num(), "steps": torch.arange(3)}, "w", "x")
    for bad in (float("nan"), float("inf"), -float("inf")):
        weights = torch.zeros(4, 4)
        weights[2, 1] = bad
        with pytest.raises(UserError, match=r"^w: 'b' holds a NaN or an infinity; x$"):
            require_finite({"a": torch.ones(3), "b": weights}, "w", "x")
    both = torch.tensor([float("inf"), -float("inf")])  # whose sum is NaN, not 0
    with pytest.raises(UserError):
        require_finite({"c": both}, "w", "x")
