"""Curate (ATHENA): influence of each demonstration on each task's validation loss, made cheap.

projection.py  Kronecker gradient projection in forward/backward hooks (per-demo phi)
store.py       memory-mapped, resumable gradient store with its index
collect.py     the deterministic per-demonstration loss and the collection loop
curvature.py   damped inverse curvature: exact Cholesky, or the rank-r RTA with Woodbury
scores.py      task queries, local / global / interactive scores, selection with a per-task floor
report.py      report.md figures
run.py         `leanvla curate`: checkpoint + dataset in, scores.csv + selection.json + report out
"""

from leanvla.curate.run import CurateConfig, curate

__all__ = ["CurateConfig", "curate"]
