"""A LeRobotDataset's parquet files: its data files, read by column or a batch of rows at a time,
and its metadata tables. A file pyarrow cannot read is one line naming it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from leanvla.errors import UserError
from leanvla.machine_errors import refusal_to_open


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """A file pyarrow cannot read, in one line (pyarrow's reasons span lines); one the filesystem
    refuses, as the error Python's open gives (the CLI's one line for the machine's refusals)."""
    try:
        yield
    except (pa.ArrowInvalid, OSError) as exc:
        refused = refusal_to_open(path)
        if refused is not None:
            raise refused from exc
        raise UserError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    with reading(path):
        return pq.read_table(path, columns=columns)


def data_file_batches(path: Path, column: str, size: int) -> Iterator[pa.RecordBatch]:
    """One column of a data file, `size` rows at a time. Not pre-buffered: pre-buffering reads a
    row group's every page before the first batch, which for a camera's PNGs is most of the file."""
    with reading(path):
        yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=size, columns=[column])


def data_file_rows(path: Path) -> int:
    """How many frames a data file holds, from its footer (nothing else read)."""
    with reading(path):
        return pq.ParquetFile(path).metadata.num_rows
