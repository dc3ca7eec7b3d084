"""CapVector: capability vectors, merging any state dict, and the orthogonal regulariser."""
