"""What a run records of its data (the trained episodes, their positions and their tasks only:
evaluation holds those positions out; its cameras' shapes), how it fits the data's images to the
policy, the data it refuses before decoding any image, and what it warns of: another frame rate,
instructions alike to the policy, training episodes whose positions are not known."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from leanvla.cli import main
from leanvla.data.reader import LeRobotDataset
from leanvla.errors import InputWarning
from leanvla.rollout import TrainingPositions
from leanvla.train.build import check_contract, provenance
from leanvla.train.loop import train
from tests.data.helpers import dataset_with, declared_shape, synthetic_dataset
from tests.helpers import tiny_train_config, train_tiny_cnn


def test_provenance_names_the_trained_episodes_positions_and_tasks_only(tiny_dataset):
    dataset = LeRobotDataset(tiny_dataset)
    positions, tasks = dataset.episode_column("metaworld/positions"), dataset.episode_tasks()
    assert tasks[0] == tasks[2] != tasks[4]  # episodes 0-2 are one task, 3-5 the other

    one_task = provenance(dataset, [0, 2])
    assert one_task["episodes"] == [0, 2] and one_task["positions"] == [positions[0], positions[2]]
    assert one_task["instructions"] == [tasks[0]]
    assert one_task["dataset"] == str(tiny_dataset.resolve())
    square = [32, 32]  # as recorded: evaluation renders each camera so
    assert one_task["camera_shapes"] == {f"observation.images.{c}": square for c in ("corner2", "corner3")}

    both = provenance(dataset, [4, 0])
    assert both["positions"] == [positions[4], positions[0]]
    assert both["instructions"] == dataset.tasks  # in the dataset's task order


def test_training_episodes_without_positions_are_named_and_held_out_of_nothing(tiny_dataset, tmp_path):
    # As in a recording LeRobot added episodes to (tests/data/test_lerobot_interop.py): its
    # episodes have no metaworld/positions.
    root = shutil.copytree(tiny_dataset, tmp_path / "data")
    (path,) = (root / "meta/episodes").rglob("*.parquet")
    table = pq.read_table(path)
    positions = table.column("metaworld/positions").to_pylist()
    positions[4] = None
    column = table.column_names.index("metaworld/positions")
    pq.write_table(table.set_column(column, "metaworld/positions", pa.array(positions)), path)
    dataset = LeRobotDataset(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert provenance(dataset, [0, 3])["positions"] == [positions[0], positions[3]]
    with pytest.warns(
        InputWarning, match=r"training episodes 4 have no metaworld/positions .*`leanvla eval`"
    ):
        recorded = provenance(dataset, [0, 4])["positions"]
    assert recorded == [positions[0], None]
    seen = TrainingPositions(recorded)
    assert seen.used(np.asarray(positions[0])) and not seen.used(np.asarray(positions[3]))


def refused(capsys, data: Path, out: Path, *options: str) -> str:
    """`leanvla train` on `data`: exit code 2, one line on stderr (returned), nothing written."""
    code = main(["train", "--data", str(data), "--out", str(out), "--steps", "1", *options])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert not out.exists()
    return lines[0]


def test_cameras_that_the_data_lacks_are_refused(capsys, data, tmp_path):
    assert "camera 'wrist' is not in" in refused(capsys, data, tmp_path / "r", "--cameras", "wrist")
    assert "--cameras is empty" in refused(capsys, data, tmp_path / "r", "--cameras", ",")
    # a new policy observed it twice: twice the vision cost, for nothing
    twice = refused(capsys, data, tmp_path / "r", "--cameras", "cam,observation.images.cam")
    assert twice.endswith("--cameras names 'observation.images.cam' twice; give each once")
    no_images = dataset_with(tmp_path / "no_images", {})
    assert "has no image features; the policy needs at least one camera" in refused(
        capsys, no_images, tmp_path / "r"
    )


TINY = ["--steps", "1", "--batch-size", "2", "--model.size", "tiny", "--threads", "1"]
TINY += ["--chunk-size", "4", "--n-action-steps", "2"]


def test_a_camera_not_rgb_is_refused_before_any_decodes_and_the_others_train(capsys, tmp_path, monkeypatch):
    data = dataset_with(tmp_path / "data", {"rgb": (16, 16), "depth": (16, 16)})
    declared_shape(data, "observation.images.depth", [16, 16, 1])
    with monkeypatch.context() as patched:  # not after the RGB camera's frames (minutes on a robot's mp4s)
        patched.setattr(LeRobotDataset, "camera_frames", lambda *given, **named: pytest.fail("decoded"))
        assert refused(capsys, data, tmp_path / "r").endswith(
            "camera 'observation.images.depth' has shape [16, 16, 1] in meta/info.json; leanvla reads RGB "
            "cameras (height x width x 3) only (`train --cameras` can leave it out)"
        )
    assert (
        main(["train", "--data", str(data), "--out", str(tmp_path / "rgb"), "--cameras", "rgb", *TINY]) == 0
    )


def test_images_not_square_or_not_one_size_need_the_policys_size_given_before_decoding(capsys, tmp_path):
    wide = dataset_with(tmp_path / "wide", {"cam": (16, 24)})
    assert refused(capsys, wide, tmp_path / "r").endswith(
        "are 16x24 ('observation.images.cam'); give the policy's image size with --model.image-size N "
        "(each camera is then scaled, longer side first, and padded to N x N; or cropped to its centred "
        "square with --model.image-fit crop)"
    )
    two_sizes = dataset_with(tmp_path / "two_sizes", {"top": (16, 16), "wrist": (8, 8)})
    line = refused(capsys, two_sizes, tmp_path / "r")
    assert "are 16x16 ('observation.images.top'), 8x8 ('observation.images.wrist'); give" in line
    top_only = ["--cameras", "top", *TINY]
    assert main(["train", "--data", str(two_sizes), "--out", str(tmp_path / "top"), *top_only]) == 0


def test_given_an_image_size_every_camera_is_scaled_and_padded_to_it(capsys, tmp_path):
    from leanvla.data.resize import fit_square
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import read_meta

    two_sizes = dataset_with(tmp_path / "two_sizes", {"top": (16, 24), "wrist": (8, 8)})
    out = tmp_path / "run"
    assert (
        main(["train", "--data", str(two_sizes), "--out", str(out), "--model.image-size", "32", *TINY]) == 0
    )
    assert "observation.images.top: 16x24 images scaled and padded to 32x32" in capsys.readouterr().err
    cameras = ["observation.images.top", "observation.images.wrist"]
    model = read_meta(out / "policy")["model"]
    assert (model["image_size"], model["cameras"]) == (32, cameras)
    dataset = LeRobotDataset(two_sizes)
    data = ChunkDataset(dataset, cameras, 4, image_size=32)
    images = data.images(range(len(data)))  # what training read
    for i, key in enumerate(cameras):
        expected = torch.from_numpy(fit_square(dataset.read_images(key), 32)).permute(0, 3, 1, 2)
        assert torch.equal(images[:, i], expected)


def test_asked_to_crop_training_keeps_each_cameras_centred_square_and_so_do_its_fine_tunes(capsys, tmp_path):
    from leanvla.data.resize import fit_square
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.checkpoint import read_meta

    wide = dataset_with(tmp_path / "wide", {"top": (32, 48)})
    out, tuned = tmp_path / "run", tmp_path / "tuned"
    crop = ["--model.image-size", "16", "--model.image-fit", "crop"]
    assert main(["train", "--data", str(wide), "--out", str(out), *crop, *TINY]) == 0
    assert "observation.images.top: 32x48 images cropped to their centred square and scaled to 16x16" in (
        capsys.readouterr().err
    )
    assert read_meta(out / "policy")["model"]["image_fit"] == "crop"
    dataset = LeRobotDataset(wide)
    data = ChunkDataset(dataset, ["observation.images.top"], 4, image_size=16, image_fit="crop")
    images = data.images(range(len(data)))
    expected = fit_square(dataset.read_images("observation.images.top"), 16, "crop")
    assert torch.equal(images[:, 0], torch.from_numpy(expected).permute(0, 3, 1, 2))

    fine_tune = ["train", "--data", str(wide), "--init", str(out), "--steps", "1", "--batch-size", "2"]
    assert main([*fine_tune, "--out", str(tuned)]) == 0
    assert "cropped to their centred square and scaled to 16x16" in capsys.readouterr().err
    assert read_meta(tuned / "policy")["model"]["image_fit"] == "crop"


def test_a_checkpoint_must_match_the_data_it_fine_tunes_on(capsys, data, tiny_run, tmp_path):
    # tiny_run observes corner2 and corner3 at 32 px, and a 4-dim state
    init = ("--init", str(tiny_run))
    missing_camera = refused(capsys, data, tmp_path / "r", *init)
    assert "observes 'observation.images.corner2', which" in missing_camera
    assert missing_camera.endswith("record that camera, or train from scratch (leave out --init)")
    same_cameras = {"corner2": (32, 32), "corner3": (32, 32)}
    stateless = dataset_with(tmp_path / "stateless", same_cameras, state_dim=None)
    assert "has no 'observation.state' feature" in refused(capsys, stateless, tmp_path / "r", *init)
    small_state = dataset_with(tmp_path / "small_state", same_cameras, state_dim=5)
    assert "expects 'observation.state' of shape [4] but" in refused(
        capsys, small_state, tmp_path / "r", *init
    )


def test_an_auxiliary_objective_on_a_cnn_checkpoint_is_refused(capsys, data, tmp_path):
    cnn = train_tiny_cnn(data, tmp_path / "cnn")
    line = refused(capsys, data, tmp_path / "r", "--init", str(cnn), "--aux.horizon", "2")
    assert f"--aux needs the reference VLA; {cnn} is a 'cnn' policy" in line


def test_an_auxiliary_horizon_past_every_training_episode_is_refused(capsys, data, tmp_path):
    """Each target is clamped to its episode's last frame: at such a horizon every one of them is.
    Only the training episodes count (--episodes)."""
    lengths = LeRobotDataset(data).episode_column("length")
    longest = max(lengths)
    line = refused(capsys, data, tmp_path / "r", "--aux.horizon", str(longest))
    assert f"--aux.horizon {longest} reaches past the end of every training episode" in line
    assert line.endswith(
        f"(the longest has {longest} frames), so each target would be its episode's last frame; give a horizon under {longest}"
    )
    shortest = min(range(len(lengths)), key=lengths.__getitem__)
    selection = tmp_path / "one.json"
    selection.write_text(f"[{shortest}]")
    line = refused(
        capsys, data, tmp_path / "r", "--episodes", str(selection), "--aux.horizon", str(lengths[shortest])
    )
    assert f"(the longest has {lengths[shortest]} frames)" in line
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ok"),
            "--steps",
            "1",
            "--model.size",
            "tiny",
            "--batch-size",
            "2",
            "--aux.horizon",
            str(longest - 1),
        ]
    )
    assert code == 0


def test_a_shift_as_large_as_the_images_the_policy_sees_is_refused(
    capsys, data, tiny_run, tiny_dataset, tmp_path
):
    """At a shift of the image's size some samples show nothing of the scene (all border pixels);
    it trained on them without a word. The size is the policy's: a fine-tune's, its checkpoint's."""
    line = refused(capsys, data, tmp_path / "r", "--augment-shift", "16")
    assert "--augment-shift 16 moves the 16 x 16 images by up to their whole size" in line
    assert line.endswith("shift them by fewer than 16 pixels")
    line = refused(capsys, tiny_dataset, tmp_path / "r", "--init", str(tiny_run), "--augment-shift", "40")
    assert "--augment-shift 40 moves the 32 x 32 images by up to their whole size" in line
    assert not (tmp_path / "r").exists()


def test_a_fine_tuned_policy_reads_images_of_another_size_at_its_own(capsys, tiny_run, tmp_path):
    # tiny_run takes 32 x 32 images; this robot's cameras are 48 x 64
    wide = dataset_with(tmp_path / "wide", {"corner2": (48, 64), "corner3": (48, 64)})
    out = tmp_path / "ft"
    fine_tune = ["train", "--data", str(wide), "--init", str(tiny_run), "--out", str(out)]
    assert main([*fine_tune, "--steps", "1", "--batch-size", "2"]) == 0
    assert "observation.images.corner2: 48x64 images scaled and padded to 32x32" in capsys.readouterr().err
    line = refused(capsys, wide, tmp_path / "r", "--init", str(tiny_run), "--model.image-size", "64")
    assert line.endswith(
        f"--model.image-size shapes a new policy, but --init {tiny_run} brings its own; drop it"
    )


def test_a_checkpoint_of_another_frame_rate_is_usable_with_a_warning(data):
    dataset = LeRobotDataset(data)  # 10 fps
    model = {"cameras": ["observation.images.cam"], "state_dim": 4, "action_dim": 4, "chunk_size": 16}
    message = (
        f"checkpoint P was trained at 40 fps, {data} is 10 fps: its chunk of 16 actions spans 0.40 s in its "
        "training data and 1.60 s in this one"
    )
    with pytest.warns(InputWarning) as caught:
        check_contract(model, dataset, "checkpoint P", fps=40)
    assert [str(w.message) for w in caught] == [message]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same rate, or a checkpoint that records none: silent
        check_contract(model, dataset, "checkpoint P", fps=10)
        check_contract(model, dataset, "checkpoint P")


def test_instructions_a_policy_cannot_tell_apart_are_warned_of(tmp_path):
    data = synthetic_dataset(
        tmp_path / "ds", tasks=("Open the door!", "close it", "open THE door", "close it")
    )
    with pytest.warns(InputWarning) as caught:
        train(tiny_train_config(data, tmp_path / "run", steps=1), progress=False)
    assert [str(w.message) for w in caught] == [
        "instructions 'Open the door!' and 'open THE door' are the same words to the policy (lower-cased; "
        "punctuation, symbols and all but the first 11 words dropped): it cannot tell them apart by instruction"
    ]
