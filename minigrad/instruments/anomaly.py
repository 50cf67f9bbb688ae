"""Anomaly mode: find the op that first made a NaN or an infinity, forward or backward.

    with minigrad.detect_anomaly():
        loss = model(x)
        loss.backward()

While on, the outputs of every op are checked after its forward, and the gradients
after every op's backward (and before it, to catch a bad upstream gradient or hook).
The first anomaly raises `AnomalyError`, naming the op, the line of your code that
created it (the Python stack is walked when each op is created, skipping frames inside
minigrad) and the shapes involved. An anomaly is:

- forward: a NaN in an op's output, or an infinity an op made from finite inputs
  (``log(0)``, ``exp`` overflow, ``x / 0``). Infinities passed on from an input are
  allowed: a ``-inf`` attention mask flows through ``where`` into ``softmax`` by design.
- backward: any NaN or infinity in a gradient.

Cost: off by default, and then free (no observer is registered, so each op pays one
attribute check). On, each op adds a reduction on the device (``all(isfinite(y))``)
and one explicit `Device.to_host` of a single bool: a synchronisation per op on a GPU.
That host transfer is deliberate; it is the price of knowing *which* op it was, so use
anomaly mode to debug, not to train.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import traceback

from minigrad import backends
from minigrad.autograd import Function, add_observer, remove_observer

# Frames from files under the minigrad package (the folder above instruments/) are the
# engine's; all others are the user's.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_USER_FRAMES = 3  # frames of user code kept per op: the creating line and its callers

_depth = 0  # nesting of detect_anomaly blocks; the observer is registered while > 0


class AnomalyError(RuntimeError):
    """A NaN or an infinity appeared. `op` is the op's name, `phase` "forward" or
    "backward", `location` the user frames where the op was created (may be empty)."""

    def __init__(self, message: str, op: str, phase: str, location: list):
        super().__init__(message)
        self.op, self.phase, self.location = op, phase, location


class detect_anomaly(contextlib.ContextDecorator):  # lower case, like no_grad
    """Context manager and decorator: raise `AnomalyError` at the first NaN/Inf."""

    def __enter__(self):
        global _depth
        if _depth == 0:
            add_observer(_check)
        _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        _depth -= 1
        if _depth == 0:
            remove_observer(_check)
        return False


def _check(fn: Function, phase: str, payload) -> None:
    """The observer: remember where ops are made, check what they produce."""
    if phase == "before_forward":
        fn.created_at = _user_frames()
        fn.anomaly_inputs = payload
    elif phase == "after_forward":
        inputs = fn.__dict__.pop("anomaly_inputs", ())
        outputs = payload if isinstance(payload, tuple) else (payload,)
        arrays = [t.data for t in outputs]
        bad = _first_failing(arrays, fn.device, _finite)
        if bad is None:
            return
        # The rare path: infinities are fine if an input brought them, NaN never is.
        nan_at = _first_failing(arrays, fn.device, _not_nan)
        inherited = _first_failing([t.data for t in inputs], fn.device, _finite)
        if nan_at is not None or inherited is None:
            raise _forward_error(fn, inputs, outputs, bad if nan_at is None else nan_at,
                                 inherited)
    elif phase == "before_backward":
        bad = _first_failing(payload, fn.device, _finite)
        if bad is not None:
            raise _incoming_gradient_error(fn, payload, bad)
    else:  # after_backward
        bad = _first_failing(payload, fn.device, _finite)
        if bad is not None:
            raise _backward_error(fn, payload, bad)


def _user_frames() -> list:
    """The innermost frames of the caller's stack outside minigrad (line text read lazily)."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None and len(frames) < _USER_FRAMES:
        code = frame.f_code
        if not code.co_filename.startswith(_PACKAGE_DIR):
            frames.append(traceback.FrameSummary(code.co_filename, frame.f_lineno, code.co_name,
                                                 lookup_line=False))
        frame = frame.f_back
    return frames


def _finite(xp, a):
    return xp.isfinite(a)


def _not_nan(xp, a):
    return xp.logical_not(xp.isnan(a))


def _first_failing(arrays, fallback_device, good) -> int | None:
    """Index of the first floating array with an element that is not `good(xp, a)`, or
    None if every element of every array passes.

    The test runs on the device; one bool per device crosses to the host (explicitly)."""
    checked = [(i, a, _device_of(a, fallback_device)) for i, a in enumerate(arrays)
               if a is not None]
    checked = [(i, a, device) for i, a, device in checked if device.is_floating(a.dtype)]
    flags: dict = {}
    for _, a, device in checked:
        passed = device.xp.all(good(device.xp, a))
        flags[device] = passed if device not in flags else device.xp.logical_and(
            flags[device], passed)
    if all(bool(device.to_host(flag)) for device, flag in flags.items()):
        return None
    for i, a, device in checked:  # the error path: find which one
        if not bool(device.to_host(device.xp.all(good(device.xp, a)))):
            return i
    return None


def _device_of(array, fallback):
    return backends.device_of(array) or fallback


def _census(array, fallback_device) -> str:
    """'1 nan, 2 -inf of 6 values' (counted on the device, one transfer)."""
    device = _device_of(array, fallback_device)
    xp = device.xp
    counts = device.to_host(xp.stack([xp.count_nonzero(xp.isnan(array)),
                                      xp.count_nonzero(array == float("inf")),
                                      xp.count_nonzero(array == -float("inf"))])).tolist()
    found = [f"{n} {kind}" for n, kind in zip(counts, ("nan", "+inf", "-inf")) if n]
    return f"{', '.join(found)} of {math.prod(array.shape)} values"


def _describe(shape, dtype) -> str:
    return f"shape {tuple(shape)}, {backends.dtype_name(dtype)}"


def _where(fn: Function) -> str:
    """Where the op was created: module path (if recorded by viz) and the user frames."""
    lines = []
    module = getattr(fn, "module_path", ())
    if module:
        lines.append(f"  in module {'.'.join(name for name, _ in module)} ({module[-1][1]})")
    frames = getattr(fn, "created_at", None)
    if frames is None:
        lines.append("  created outside detect_anomaly(): run the forward inside it too to "
                     "see the line that created this op")
    elif not frames:
        lines.append("  created inside minigrad (no user code on the stack)")
    for k, frame in enumerate(frames or ()):
        intro = "created at" if k == 0 else "called from"
        lines.append(f"  {intro} {frame.filename}:{frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"      {frame.line.strip()}")
    return "\n".join(lines)


def _forward_error(fn: Function, inputs, outputs, bad: int, bad_input) -> AnomalyError:
    out = outputs[bad]
    which = "output" if len(outputs) == 1 else f"output {bad}"
    described = ", ".join(f"{t.shape} {backends.dtype_name(t.dtype)}" for t in inputs)
    if bad_input is None:
        cause = "its inputs are finite, so this op made the non-finite values"
    else:
        cause = (f"input {bad_input} was already non-finite (a leaf, data, or made before "
                 "anomaly mode was on); infinities passed on are allowed, NaN is not")
    message = (f"anomaly in forward: {fn.name} produced non-finite values in its {which} "
               f"({_describe(out.shape, out.dtype)}): {_census(out.data, fn.device)}\n"
               f"{_where(fn)}\n  inputs: {described}\n  {cause}")
    return AnomalyError(message, fn.name, "forward", getattr(fn, "created_at", None) or [])


def _backward_error(fn: Function, in_grads, bad: int) -> AnomalyError:
    g = in_grads[bad]
    message = (f"anomaly in backward: the backward of {fn.name} produced non-finite values "
               f"in the gradient of its input {bad} ({_describe(g.shape, g.dtype)}): "
               f"{_census(g, fn.device)}\n{_where(fn)}\n"
               f"  the gradients arriving at its output were finite, so this op's backward "
               f"made them (e.g. a derivative that is infinite at the input value)")
    return AnomalyError(message, fn.name, "backward", getattr(fn, "created_at", None) or [])


def _incoming_gradient_error(fn: Function, out_grads, bad: int) -> AnomalyError:
    g = out_grads[bad]
    message = (f"anomaly in backward: the gradient arriving at output {bad} of {fn.name} "
               f"({_describe(g.shape, g.dtype)}) is non-finite before its backward ran: "
               f"{_census(g, fn.device)}\n{_where(fn)}\n"
               f"  it came from the gradient passed to backward(), a tensor hook, or a sum "
               f"of gradients from several uses that overflowed")
    return AnomalyError(message, fn.name, "backward", getattr(fn, "created_at", None) or [])
