"""meta/info.json: each entry a reader takes is checked on reading, in one line naming it, for v3.x
datasets and for the v2.x ones `leanvla data convert` reads."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from leanvla.data.info import V2_TEMPLATES, V3_TEMPLATES, check_info, read_info, version_remedy
from leanvla.errors import UserError

WHERE = Path("ds/meta/info.json")


@pytest.fixture
def info(lerobot_fixture) -> dict:
    """A v3.0 info.json as LeRobot writes it."""
    return json.loads((lerobot_fixture / "meta/info.json").read_text())


def _refused(info: dict, message: str, templates=V3_TEMPLATES) -> None:
    with pytest.raises(UserError, match=f"^{re.escape(f'{WHERE}{message}')}$"):
        check_info(info, WHERE, templates)


def test_what_lerobot_writes_passes(info):
    check_info(info, WHERE, V3_TEMPLATES)
    check_info({**info, "fps": 29.97, "video_path": None}, WHERE, V3_TEMPLATES)  # a camera's rate; no videos


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("fps", "80", ': fps must be a positive number of frames per second, got "80"'),
        ("fps", 0, ": fps must be a positive number of frames per second, got 0"),
        ("fps", -5, ": fps must be a positive number of frames per second, got -5"),
        ("fps", None, ": fps must be a positive number of frames per second, got null"),
        ("fps", True, ": fps must be a positive number of frames per second, got true"),
        ("fps", float("inf"), ": fps must be a positive number of frames per second, got Infinity"),
        ("total_episodes", "9", ': total_episodes must be a whole number, got "9"'),
        ("total_frames", 679.0, ": total_frames must be a whole number, got 679.0"),
        ("total_frames", -1, ": total_frames must be a whole number, got -1"),
        ("total_episodes", True, ": total_episodes must be a whole number, got true"),
        ("features", [1], ": features must be an object of each feature's dtype and shape, got [1]"),
        (
            "data_path",
            None,
            ": data_path null is not a path template (not a string); it may name {chunk_index}, {file_index}",
        ),
        (
            "data_path",
            "data/{chunk}.parquet",
            ": data_path \"data/{chunk}.parquet\" is not a path template (KeyError: 'chunk'); it may name "
            "{chunk_index}, {file_index}",
        ),
        (
            "video_path",
            "videos/{video_key}/{file_index",
            ': video_path "videos/{video_key}/{file_index" is not a path template (ValueError: expected '
            "'}' before end of string); it may name {video_key}, {chunk_index}, {file_index}",
        ),
    ],
)
def test_an_entry_of_the_wrong_kind_is_one_line_naming_it(info, key, value, message):
    _refused({**info, key: value}, message)


def test_a_missing_entry_is_one_line(info):
    del info["total_frames"]
    _refused(info, " has no 'total_frames' entry; the dataset metadata is incomplete")


@pytest.mark.parametrize(
    "feature, message",
    [
        (
            {"shape": [4]},
            """: feature 'action' must be an object with a 'dtype' (a string), got {"shape": [4]}""",
        ),
        (
            {"dtype": 32, "shape": [4]},
            """: feature 'action' must be an object with a 'dtype' (a string), got {"dtype": 32, "shape": [4]}""",
        ),
        ("float32", """: feature 'action' must be an object with a 'dtype' (a string), got "float32\""""),
        ({"dtype": "float32"}, ": feature 'action' must have a 'shape' of whole numbers >= 1, got null"),
        (
            {"dtype": "float32", "shape": []},
            ": feature 'action' must have a 'shape' of whole numbers >= 1, got []",
        ),
        (
            {"dtype": "float32", "shape": "4"},
            """: feature 'action' must have a 'shape' of whole numbers >= 1, got "4\"""",
        ),
        (
            {"dtype": "float32", "shape": [4, 0]},
            ": feature 'action' must have a 'shape' of whole numbers >= 1, got [4, 0]",
        ),
        (
            {"dtype": "float32", "shape": [4.0]},
            ": feature 'action' must have a 'shape' of whole numbers >= 1, got [4.0]",
        ),
    ],
)
def test_a_feature_without_a_dtype_or_a_shape_is_one_line_naming_it(info, feature, message):
    info = copy.deepcopy(info)
    info["features"]["action"] = feature
    _refused(info, message)


def test_v2_templates_name_the_episode(info):
    v2 = {**info, "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"}
    check_info(v2, WHERE, V2_TEMPLATES)
    _refused(
        info,
        " ".join(
            [
                ': data_path "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet" is not a path template',
                "(KeyError: 'chunk_index'); it may name {episode_chunk}, {episode_index}",
            ]
        ),
        V2_TEMPLATES,
    )


def test_info_that_is_not_a_json_object_is_one_line(tmp_path):
    path = tmp_path / "info.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match=f"^{re.escape(str(path))} must hold a JSON object, not list$"):
        read_info(path)
    path.write_text('{"fps": ')
    with pytest.raises(
        UserError, match=rf"^{re.escape(str(path))} is not valid JSON \(.*\); the dataset is corrupt$"
    ):
        read_info(path)


def test_each_version_is_told_its_own_way_to_v3():
    root = Path("ds")
    assert version_remedy("v2.1", root) == "convert it with `leanvla data convert ds --out DIR`"
    assert version_remedy("v2.0", root) == version_remedy("v2.1", root)
    assert "convert_dataset_v1_to_v2" in version_remedy("v1.6", root)
    # a version after v3 is not one an older converter makes (it used to be told to use one)
    assert (
        version_remedy("v4.0", root) == "write it as v3.0, or see whether a newer leanvla reads that version"
    )
    assert version_remedy("?", root) == version_remedy("v4.0", root)
