"""Models: the reference VLA (vision encoder, instruction tokenizer, backbone, action expert,
flow-matching head), the plain CNN baseline, layouts, and checkpoints."""
