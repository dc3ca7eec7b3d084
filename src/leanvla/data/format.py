"""The LeRobotDataset v3.0 layout: paths, default features, and the Arrow types of each column.

A dataset directory holds
    meta/info.json                                  features, fps, counts, path templates
    meta/tasks.parquet                              task string (the pandas index) -> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet        one row per episode: length, data file, stats
    meta/stats.json                                 statistics aggregated over the dataset
    data/chunk-XXX/file-YYY.parquet                 one row per frame, many episodes per file
    videos/<key>/chunk-XXX/file-YYY.mp4             only for `dtype: video` features
This module is the single place that knows those names, shared by the reader and the writer.
"""

from __future__ import annotations

import json

import pyarrow as pa

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
STATS_PATH = "meta/stats.json"

# LeRobot's name for the simulator's full state (object and goal poses in Meta-World).
ENV_STATE = "observation.environment_state"

DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_MB = 100
DEFAULT_VIDEO_FILE_SIZE_MB = 200

# Columns every LeRobot frame carries, in the order LeRobot writes them after the user features.
DEFAULT_FEATURES: dict[str, dict] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def image_feature(height: int, width: int) -> dict:
    """info.json's entry for a camera of PNG frames, height x width RGB (LeRobot's layout)."""
    return {"dtype": "image", "shape": [height, width, 3], "names": ["height", "width", "channels"]}


def is_visual(feature: dict) -> bool:
    return feature["dtype"] in ("image", "video")


# The Arrow type of each numeric dtype LeRobot stores, and every dtype leanvla writes.
SCALAR_TYPES = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "bool": pa.bool_(),
}
WRITTEN_DTYPES = ("image", "string", *SCALAR_TYPES)


def arrow_type(feature: dict) -> pa.DataType:
    """The Arrow type LeRobot (through HF datasets) uses for a feature's column."""
    dtype = feature["dtype"]
    if dtype == "image":
        return IMAGE_STRUCT
    if dtype == "string":
        return pa.string()
    scalar = SCALAR_TYPES[dtype]
    shape = list(feature["shape"])
    if shape == [1]:
        return scalar
    if len(shape) != 1:
        raise ValueError(f"only 1-d non-image features are supported, got shape {shape}")
    return pa.list_(scalar, shape[0])


def hf_feature(feature: dict) -> dict:
    """The HF `datasets` feature description stored in each data file's schema metadata."""
    dtype = feature["dtype"]
    if dtype == "image":
        return {"_type": "Image"}
    if list(feature["shape"]) == [1] or dtype == "string":
        return {"dtype": dtype, "_type": "Value"}
    return {
        "feature": {"dtype": dtype, "_type": "Value"},
        "length": int(feature["shape"][0]),
        "_type": "List",
    }


def hf_schema_metadata(features: dict[str, dict]) -> dict[bytes, bytes]:
    stored = {k: hf_feature(f) for k, f in features.items() if f["dtype"] != "video"}
    return {b"huggingface": json.dumps({"info": {"features": stored}}).encode()}


def tasks_schema_metadata() -> dict[bytes, bytes]:
    """pandas metadata that makes `pd.read_parquet(tasks.parquet)` index by task string, as LeRobot expects."""
    meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "str",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return {b"pandas": json.dumps(meta).encode()}
