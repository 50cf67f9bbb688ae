"""Training checkpoints: a directory holding two files.

- ``model.safetensors``: the model's `state_dict()`, readable by any safetensors tool.
- ``training_state.safetensors``: the optimizer's state tensors (moments, momentum
  buffers) as ``optimizer.<param index>.<name>``, and in its metadata a JSON document
  with everything else: optimizer hyperparameters and step counts, the schedule, the
  RNG states (each device's default minigrad generator and Python's `random`), and the
  caller's extra values (step, config, ...).

Each file is written atomically (see `atomic_write`), training state first. Both carry
the same random save id; a crash between the two replacements leaves a pair whose ids
differ, which `load_checkpoint` refuses with a clear error instead of resuming from
new weights with stale optimizer state (or the reverse).
"""

from __future__ import annotations

import json
import os
import random
import uuid
import warnings

from minigrad import backend
from minigrad.io.safetensors import read_safetensors, save_safetensors
from minigrad.random import default_generator
from minigrad.tensor import Tensor

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.safetensors"
_FORMAT = "minigrad-checkpoint-1"
_SAVE_ID, _STATE = "minigrad.save_id", "minigrad.training_state"


class CheckpointError(ValueError):
    """A checkpoint directory whose pieces do not belong together or are missing."""


def save_checkpoint(path, model, optimizer=None, scheduler=None, **extra) -> None:
    """Save `model` (and optionally `optimizer`, `scheduler` and JSON-serialisable
    `extra` values) to the directory `path`, creating it if needed."""
    os.makedirs(path, exist_ok=True)
    save_id = uuid.uuid4().hex
    state = {"format": _FORMAT, "extra": extra, "rng": _rng_states(model)}
    tensors = {}
    if optimizer is not None:
        saved = optimizer.state_dict()
        numbers = {}
        for index, param_state in saved["state"].items():
            numbers[index] = {}
            for key, value in param_state.items():
                if isinstance(value, Tensor):
                    tensors[f"optimizer.{index}.{key}"] = value
                else:
                    numbers[index][key] = value
        state["optimizer"] = {"param_groups": saved["param_groups"], "state": numbers}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    try:
        encoded = json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_checkpoint: the extra values (and the optimizer's and "
                        f"schedule's settings) must be JSON-serialisable: numbers, strings, "
                        f"lists, dicts: {exc}") from None
    save_safetensors(tensors, os.path.join(path, STATE_FILE),
                     {_SAVE_ID: save_id, _STATE: encoded})
    save_safetensors(model.state_dict(), os.path.join(path, MODEL_FILE), {_SAVE_ID: save_id})


def load_checkpoint(path, model, optimizer=None, scheduler=None, device=None) -> dict:
    """Restore a checkpoint saved by `save_checkpoint` into `model` (moved to `device`
    first if given; otherwise weights go to wherever its parameters are), `optimizer`
    and `scheduler`, and restore the RNG states. Returns the saved extra values."""
    weights, weights_meta = read_safetensors(os.path.join(path, MODEL_FILE))
    tensors, meta = read_safetensors(os.path.join(path, STATE_FILE))
    if _STATE not in meta or meta.get(_SAVE_ID) != weights_meta.get(_SAVE_ID):
        raise CheckpointError(f"{path}: {MODEL_FILE} and {STATE_FILE} come from different "
                              "saves (was a save interrupted?)")
    state = json.loads(meta[_STATE])
    if device is not None:
        model.to(device)
    model.load_state_dict(weights)
    if optimizer is not None:
        if "optimizer" not in state:
            raise CheckpointError(f"{path}: the checkpoint holds no optimizer state")
        saved = state["optimizer"]
        per_param = {int(i): dict(numbers) for i, numbers in saved["state"].items()}
        for name, array in tensors.items():
            _, index, key = name.split(".", 2)
            per_param.setdefault(int(index), {})[key] = array
        optimizer.load_state_dict({"state": per_param, "param_groups": saved["param_groups"]})
    if scheduler is not None:
        if "scheduler" not in state:
            raise CheckpointError(f"{path}: the checkpoint holds no scheduler state")
        scheduler.load_state_dict(state["scheduler"])
    _restore_rng_states(state["rng"])
    return state["extra"]


def _rng_states(model) -> dict:
    devices = {"cpu"} | {p.device.name for p in model.parameters()}
    return {"minigrad": {name: default_generator(name).get_state() for name in sorted(devices)},
            "python": random.getstate()}


def _restore_rng_states(states: dict) -> None:
    for name, generator_state in states["minigrad"].items():
        try:
            device = backend.get_device(name)
        except (RuntimeError, ValueError, ImportError) as exc:
            warnings.warn(f"load_checkpoint: cannot restore the RNG state of device {name!r} "
                          f"({exc})", stacklevel=3)
            continue
        default_generator(device).set_state(generator_state)
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
