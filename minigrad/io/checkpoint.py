"""Training checkpoints: a directory holding two files.

- ``model.safetensors``: the model's `state_dict()`, readable by any safetensors tool.
- ``training_state.<save id>.safetensors``: the optimizer's state tensors (moments,
  momentum buffers) as ``optimizer.<param index>.<name>``, and in its metadata a JSON
  document with everything else: optimizer hyperparameters and step counts, the
  schedule, the RNG states (each device's default minigrad generator and Python's
  `random`), and the caller's extra values (step, config, ...).

Each save draws a random save id, which the weights carry in their metadata. A save
writes the new training state under its own name first (the previous checkpoint is
untouched), then replaces ``model.safetensors`` atomically: that one rename is the
commit point. Only then are older training-state files removed. So at every instant
the directory holds one complete checkpoint, the new one or the previous one, whatever
moment a crash, a kill or a full disk strikes (the tests kill a save at each of its file
operations in turn). A checkpoint is written only from finite weights and optimizer
state: a poisoned one would be worse than the previous one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import uuid
import warnings

from minigrad import backends
from minigrad.io import atomic
from minigrad.io.safetensors import read_safetensors, safetensors_metadata, save_safetensors
from minigrad.ops.join import stack
from minigrad.random import default_generator
from minigrad.tensor import Tensor

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.{save_id}.safetensors"  # see state_file()
_STATE_FILE_NAME = re.compile(r"training_state\.[0-9a-f]+\.safetensors")
_FORMAT = "minigrad-checkpoint-2"
_SAVE_ID, _STATE = "minigrad.save_id", "minigrad.training_state"


class CheckpointError(ValueError):
    """A checkpoint directory whose pieces do not belong together or are missing."""


class NonFiniteStateError(CheckpointError):
    """save_checkpoint was given weights or optimizer state holding NaN or infinity."""


def state_file(save_id: str) -> str:
    """The name of the training-state file of the save `save_id`."""
    return STATE_FILE.format(save_id=save_id)


def save_checkpoint(path, model, optimizer=None, scheduler=None, **extra) -> None:
    """Save `model` (and optionally `optimizer`, `scheduler` and JSON-serialisable
    `extra` values) to the directory `path`, creating it if needed. Raises
    NonFiniteStateError, writing nothing, if a weight or optimizer tensor is not finite."""
    os.makedirs(path, exist_ok=True)
    save_id = uuid.uuid4().hex
    weights = model.state_dict()
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
    _check_finite({**weights, **tensors})
    new_state = os.path.join(path, state_file(save_id))
    try:
        save_safetensors(tensors, new_state, {_SAVE_ID: save_id, _STATE: encoded})
        save_safetensors(weights, os.path.join(path, MODEL_FILE), {_SAVE_ID: save_id})  # commit
    except OSError as exc:  # a full disk, say: the previous checkpoint is still whole
        with contextlib.suppress(OSError):
            atomic.remove(new_state)
        if exc.errno is None:
            raise
        raise type(exc)(exc.errno, f"{exc.strerror}; this checkpoint was not saved, the "
                        f"previous one in {os.fspath(path)} (if any) is kept",
                        exc.filename) from exc
    remove_stale_states(path)


def remove_stale_states(path) -> list[str]:
    """Delete the training-state files in `path` that the current weights do not point to
    (left by a save killed before or after its commit). Returns their names."""
    try:  # the header is enough: the weights' save id
        current = state_file(safetensors_metadata(os.path.join(path, MODEL_FILE))[_SAVE_ID])
    except (OSError, ValueError, KeyError):
        return []  # no complete checkpoint: nothing can be told stale
    stale = [name for name in sorted(os.listdir(path))
             if _STATE_FILE_NAME.fullmatch(name) and name != current]
    for name in stale:
        atomic.remove(os.path.join(path, name))
    return stale


def _check_finite(tensors: dict) -> None:
    """Raise NonFiniteStateError naming the first floating tensor holding NaN or inf: a
    count of the elements below infinity in magnitude per tensor (NaN compares false),
    fetched in one host transfer."""
    names = [n for n, t in tensors.items() if isinstance(t, Tensor)
             and t.is_floating_point()]
    if not names:
        return
    counts = stack([(tensors[n].detach().abs() < math.inf).astype("int64").sum()
                    for n in names])
    for name, finite in zip(names, counts.numpy().tolist()):
        if finite != math.prod(tensors[name].shape):
            raise NonFiniteStateError(f"save_checkpoint: {name} holds NaN or infinite values; "
                                      "not saving it over the previous checkpoint")


def load_checkpoint(path, model, optimizer=None, scheduler=None, device=None) -> dict:
    """Restore a checkpoint saved by `save_checkpoint` into `model` (moved to `device`
    first if given; otherwise weights go to wherever its parameters are), `optimizer`
    and `scheduler`, and restore the RNG states. Returns the saved extra values."""
    weights_path = os.path.join(path, MODEL_FILE)
    if not os.path.isfile(weights_path):
        raise CheckpointError(f"{path} holds no checkpoint ({MODEL_FILE} is missing: was "
                              "the run stopped before its first save?)")
    weights, weights_meta = read_safetensors(weights_path)
    if _SAVE_ID not in weights_meta:
        raise CheckpointError(f"{weights_path} holds weights only (saved without "
                              "save_checkpoint): there is no training state to resume from")
    state_path = os.path.join(path, state_file(weights_meta[_SAVE_ID]))
    if not os.path.isfile(state_path):
        raise CheckpointError(f"{path}: the training state of {MODEL_FILE} "
                              f"({os.path.basename(state_path)}) is missing")
    tensors, meta = read_safetensors(state_path)
    if _STATE not in meta or meta.get(_SAVE_ID) != weights_meta[_SAVE_ID]:
        raise CheckpointError(f"{state_path} does not hold the training state of "
                              f"{weights_path}")
    state = json.loads(meta[_STATE])
    if device is not None:
        model.to(device)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped keys
        raise CheckpointError(f"{weights_path} does not fit this model: {exc}") from None
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
            device = backends.get_device(name)
        except (RuntimeError, ValueError, ImportError) as exc:
            warnings.warn(f"load_checkpoint: cannot restore the RNG state of device {name!r} "
                          f"({exc})", stacklevel=3)
            continue
        default_generator(device).set_state(generator_state)
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
