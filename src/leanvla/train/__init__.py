"""Training: one readable loop (AdamW, warm-up + cosine, clipping, EMA, atomic resumable
checkpoints, data-parallel with torch.distributed)."""
