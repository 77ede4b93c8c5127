"""Checkpoints: their services, the journalled commands on them, retention, inspection, check."""
