"""A dataset's parquet data files read whole, a batch at a time or by their footer alone; a file
pyarrow cannot read is one line naming it."""

from __future__ import annotations

import errno

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.data.data_files import data_file_batches, data_file_rows, read_parquet
from leanvla.errors import UserError
from tests.helpers import refused_by_the_filesystem


def test_a_file_is_read_whole_in_batches_or_by_its_footer_alike(tmp_path):
    path = tmp_path / "file-000.parquet"
    pq.write_table(pa.table({"a": list(range(10)), "b": [str(i) for i in range(10)]}), path, row_group_size=4)
    assert read_parquet(path, ["a"]).column("a").to_pylist() == list(range(10))
    batches = list(data_file_batches(path, "b", 3))
    assert all(batch.column_names == ["b"] and len(batch) <= 3 for batch in batches)
    assert [v for batch in batches for v in batch.column(0).to_pylist()] == [str(i) for i in range(10)]
    assert data_file_rows(path) == 10


def every_way_of_reading(path) -> list:
    """A file read whole, a batch at a time, and by its footer alone."""
    return [
        lambda: read_parquet(path),
        lambda: list(data_file_batches(path, "a", 2)),
        lambda: data_file_rows(path),
    ]


def test_a_file_the_filesystem_refuses_is_not_said_to_be_damaged_but_refused_naming_it(tmp_path, monkeypatch):
    """pyarrow said "Failed to open local file '...'. Detail: [errno 13] Permission denied" of a
    colleague's 0600 file: the file named in its text alone (and, reading metadata, a traceback)."""
    path = tmp_path / "file-000.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    refused_by_the_filesystem(monkeypatch, path)

    def as_pyarrow_refuses(*args, **kwargs):
        raise PermissionError(
            errno.EACCES, f"Failed to open local file '{path}'. Detail: [errno 13] Permission denied"
        )

    monkeypatch.setattr(pq, "read_table", as_pyarrow_refuses)
    monkeypatch.setattr(pq, "ParquetFile", as_pyarrow_refuses)
    for read in every_way_of_reading(path):
        with pytest.raises(PermissionError) as refused:
            read()
        assert (refused.value.filename, refused.value.strerror) == (str(path), "Permission denied")


def test_a_file_pyarrow_cannot_read_is_one_line_naming_it(tmp_path):
    path = tmp_path / "file-000.parquet"
    path.write_bytes(b"not parquet, and long enough to hold a footer's magic bytes")
    for read in every_way_of_reading(path):
        with pytest.raises(UserError) as refused:
            read()
        assert str(refused.value).startswith(f"cannot read {path}: ") and "\n" not in str(refused.value)
