"""Prune (CLP): remove layers whose output is nearly the same representation as their input.

similarity.py  all-pairs linear CKA / cosine / angular distance, accumulated over batches
calibrate.py   hooks that record each stack's layer outputs during one calibration pass
select.py      redundancy criteria and greedy / contiguous / drop-last selection
remove.py      physical removal, config rewrite, layer-map and KV-cache index rebuild
run.py         `leanvla prune`: checkpoint in, smaller checkpoint + report out
"""

from leanvla.prune.remove import remove_layers
from leanvla.prune.run import PruneConfig, prune
from leanvla.prune.similarity import SimilarityAccumulator, linear_cka_reference

__all__ = ["PruneConfig", "SimilarityAccumulator", "linear_cka_reference", "prune", "remove_layers"]
