"""Data: the LeRobotDataset v3 format (read and write, without lerobot), Meta-World demonstration
recording, and the training samples (observation, action chunk) built from a dataset."""
