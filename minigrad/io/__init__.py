"""Saving and loading: safetensors files (written by hand, interoperable with the
`safetensors` package) and training checkpoints, all written atomically."""

from minigrad.io.atomic import atomic_write
from minigrad.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minigrad.io.safetensors import (
    SafetensorsError,
    load_safetensors,
    read_safetensors,
    safetensors_metadata,
    save_safetensors,
)

__all__ = [
    "CheckpointError", "SafetensorsError", "atomic_write", "load_checkpoint",
    "load_safetensors", "read_safetensors", "safetensors_metadata", "save_checkpoint",
    "save_safetensors",
]
