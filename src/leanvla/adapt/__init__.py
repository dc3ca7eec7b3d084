"""Adapters for fine-tuning a frozen policy: LoRA (peft) and LoRA-SP, with export to plain weights."""
