r"""A LeRobot v2.1 dataset converted to v3.0 by LeRobot's own script; run by LeRobot's Python.

    .venv-lerobot/bin/python tools/lerobot_converts.py V21_DIR OUT_DIR     # make lerobot installs it

`lerobot.datasets.v30.convert_dataset_v21_to_v30.convert_dataset`, on this machine alone (nothing
downloaded, nothing pushed). It converts in place, leaving the v2.1 directory beside it as
NAME_old, so it runs on a copy and OUT_DIR receives the result. tests/data/test_lerobot_interop.py
compares it with what `leanvla data convert` makes of the same directory.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from lerobot_reads import lerobot_dataset_class


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    lerobot_dataset_class()  # torchvision imported as LeRobot's dataset code can use it here
    from lerobot.datasets.v30.convert_dataset_v21_to_v30 import convert_dataset

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "local" / "dataset"  # where convert_dataset looks: ROOT / repo_id
        shutil.copytree(source, copy)
        convert_dataset("local/dataset", root=tmp, push_to_hub=False)
        shutil.move(copy, out)


if __name__ == "__main__":
    main()
