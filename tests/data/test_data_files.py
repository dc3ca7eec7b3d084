"""A dataset's parquet data files read whole, a batch at a time or by their footer alone; a file
pyarrow cannot read is one line naming it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leanvla.data.data_files import data_file_batches, data_file_rows, read_data_file
from leanvla.errors import UserError


def test_a_file_is_read_whole_in_batches_or_by_its_footer_alike(tmp_path):
    path = tmp_path / "file-000.parquet"
    pq.write_table(pa.table({"a": list(range(10)), "b": [str(i) for i in range(10)]}), path, row_group_size=4)
    assert read_data_file(path, ["a"]).column("a").to_pylist() == list(range(10))
    batches = list(data_file_batches(path, "b", 3))
    assert all(batch.column_names == ["b"] and len(batch) <= 3 for batch in batches)
    assert [v for batch in batches for v in batch.column(0).to_pylist()] == [str(i) for i in range(10)]
    assert data_file_rows(path) == 10


def test_a_file_pyarrow_cannot_read_is_one_line_naming_it(tmp_path):
    path = tmp_path / "file-000.parquet"
    path.write_bytes(b"not parquet, and long enough to hold a footer's magic bytes")
    for read in (
        lambda: read_data_file(path, None),
        lambda: list(data_file_batches(path, "a", 2)),
        lambda: data_file_rows(path),
    ):
        with pytest.raises(UserError) as refused:
            read()
        assert str(refused.value).startswith(f"cannot read {path}: ") and "\n" not in str(refused.value)
