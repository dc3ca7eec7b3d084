"""Discrete action decoding: the action tokenizer (the discrete-diffusion head and Fast-dVLA decoding build on it)."""
