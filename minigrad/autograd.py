"""Reverse-mode autodiff: the `Function` node every op subclasses, grad mode, and backward.

A `Function` turns input arrays into output arrays in `forward` and, in `backward`, maps
the gradients of its outputs to the gradients of its inputs (plain arrays: no graph is
built while differentiating). Calling a Function on tensors records it as the `_ctx` of
its outputs when any input requires grad, so the graph is the chain of these nodes.

`run_backward` orders the nodes reachable from the root topologically with an explicit
stack (no recursion, so a chain of 100,000 ops works), then visits them in reverse,
summing the gradients of a tensor used several times. Unless `retain_graph` is set,
each node drops what it saved once its backward has run; a second backward through it
raises a clear error instead of computing garbage.
"""

from __future__ import annotations

import contextlib
import threading


class _GradState(threading.local):
    # A class-level default, so that every thread starts with grad enabled and reading
    # the flag is a plain attribute lookup (every op reads it).
    grad_enabled = True


_state = _GradState()
Tensor = None  # minigrad.tensor.Tensor, bound by that module (it imports this one)


def is_grad_enabled() -> bool:
    return _state.grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _recreate_cm(self):
        # A fresh context per call of a decorated function, so recursive or concurrent
        # calls each restore their own previous mode.
        return _GradMode(self.enabled)

    def __enter__(self):
        self.previous = _state.grad_enabled
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc):
        _state.grad_enabled = self.previous
        return False


def no_grad(func=None):
    """Context manager and decorator (``@no_grad()`` or ``@no_grad``): ops inside record
    no graph (inference, parameter updates)."""
    return _GradMode(False) if func is None else _GradMode(False)(func)


def enable_grad(func=None):
    """Context manager and decorator: turn graph recording back on inside `no_grad`."""
    return _GradMode(True) if func is None else _GradMode(True)(func)


class Function:
    """One node of the graph. Subclasses define `forward(*arrays)` and `backward(*grads)`.

    Constructor arguments carry the op's non-tensor parameters (axis, shape, ...).
    In `forward`, `self.xp` is the array namespace of the inputs' device and
    `self.device` the device; call `self.save_for_backward(...)` for what the backward
    needs. `backward` gets one gradient array per output and returns one per input
    (or a single array for one input); `None` where `self.needs_input_grad[i]` is False.
    """

    # Set in __call__; declared for readers and linters.
    xp = None
    device = None
    inputs: tuple = ()
    needs_input_grad: tuple = ()
    saved: tuple | None = ()
    n_outputs = 1
    output_meta = ()  # (shape, dtype) per output of a multi-output op
    output_hooks = None  # {output index: [hook, ...]} for hooks on non-leaf tensors
    requires_grad = False
    # Observers called as hook(function, phase, payload) by viz, anomaly and profiler
    # tools; an empty tuple costs one attribute check per op when nothing observes.
    # Tools add and remove theirs with `add_observer` / `remove_observer`.
    observers: tuple = ()
    # In-place ops count on this clock (`Function.epoch`, one tick per in-place op); each
    # recorded node notes the tick it was made at (`made_at`), so its backward can tell
    # whether a tensor it used was modified, or re-pointed at a new node, since then
    # (`check_versions`). Zero until the first in-place op: nothing to check.
    epoch = 0
    made_at = 0

    def __call__(self, *inputs):
        device = inputs[0].device
        self.device = device
        self.xp = device.xp
        requires_grad = False
        if _state.grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    requires_grad = True
                    break
        self.requires_grad = requires_grad
        if Function.observers:
            return _observed_call(self, inputs, requires_grad)
        try:
            result = self.forward(*[t.data for t in inputs])
        except (ValueError, TypeError, IndexError, RuntimeError) as exc:
            raise _named_error(self, inputs, exc) from exc
        if requires_grad:
            self.inputs = inputs
            self.needs_input_grad = tuple([t.requires_grad for t in inputs])
            self.made_at = Function.epoch
        else:
            self.saved = None
        if isinstance(result, tuple):
            self.n_outputs = len(result)
            self.output_meta = tuple((y.shape, y.dtype) for y in result)
            return tuple(Tensor._from_op(y, device, self, i, requires_grad)
                         for i, y in enumerate(result))
        return Tensor._from_op(result, device, self, 0, requires_grad)

    def save_for_backward(self, *arrays) -> None:
        if self.requires_grad:
            self.saved = arrays

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # "AddScalar" -> "add_scalar": the op's name in error messages and reports,
        # unless the class names itself (`name = "gelu"`).
        if "name" not in cls.__dict__:
            cls.name = "".join("_" + c.lower() if c.isupper() and i else c.lower()
                               for i, c in enumerate(cls.__name__.lstrip("_")))


def add_observer(hook) -> None:
    """Call ``hook(function, phase, payload)`` around every op's forward and backward.

    Phases: "before_forward" (payload: the input tensors), "after_forward" (the output
    tensor or tuple), "before_backward" (the output gradient arrays), "after_backward"
    (the input gradient arrays, None where not needed)."""
    Function.observers = (*Function.observers, hook)


def remove_observer(hook) -> None:
    Function.observers = tuple(h for h in Function.observers if h is not hook)


def _named_error(fn: Function, inputs, exc: Exception) -> Exception:
    """Re-raise an array library's error with the op's name, shapes and dtypes (checked
    only once the forward has failed, so the common path pays nothing)."""
    from minigrad.backends import dtype_name

    devices = {t.device.name for t in inputs}
    if len(devices) > 1:
        return RuntimeError(f"{fn.name}: inputs are on different devices "
                            f"({', '.join(t.device.name for t in inputs)}); move them to one "
                            "device with .to(device)")
    message = str(exc)
    if message.startswith(fn.name + ":"):
        return exc
    described = ", ".join(f"{tuple(t.shape)} {dtype_name(t.dtype)}" for t in inputs)
    return type(exc)(f"{fn.name}: inputs {described}: {message}")


def _observed_call(fn: Function, inputs, requires_grad):
    """`Function.__call__` with the observers told before and after the forward."""
    for hook in Function.observers:
        hook(fn, "before_forward", inputs)
    try:
        Function.observers, observers = (), Function.observers
        out = fn(*inputs)
    finally:
        Function.observers = observers
    for hook in observers:
        hook(fn, "after_forward", out)
    return out


class VersionCounter:
    """How often in-place ops wrote a tensor's memory (shared by tensors that alias it),
    and at which ticks of `Function.epoch` (the latest few): what `check_versions` reads."""

    __slots__ = ("value", "ticks", "rebased_at")
    KEPT = 32

    def __init__(self, value: int = 0, ticks=(), rebased_at: int = -1):
        self.value, self.ticks, self.rebased_at = value, list(ticks), rebased_at

    def bump(self, tick: int) -> None:
        self.value += 1
        self.ticks = [*self.ticks[-(self.KEPT - 1):], tick]

    def modified_after(self, tick: int) -> bool:
        return bool(self.ticks) and self.ticks[-1] > tick

    def version_at(self, tick: int) -> int:
        return self.value - sum(1 for t in self.ticks if t > tick)


def _is_saved(array, fn: Function) -> bool:
    """Whether `array` (the very object) is among what fn saved for its backward."""
    stack = list(fn.saved or ())
    while stack:
        a = stack.pop()
        if a is array:
            return True
        if isinstance(a, tuple | list):
            stack.extend(a)
    return False


def check_versions(fn: Function) -> None:
    """Before fn's backward: raise PyTorch's kind of error if, since fn's forward, an
    in-place op modified a tensor that fn (or the op that made the tensor) saved, or
    re-pointed an input of fn at a new graph node (its old value is gone)."""
    for i, t in enumerate(fn.inputs):
        counter = getattr(t, "_version", None)
        if counter is None:
            continue  # never modified in place
        now = counter.value
        if counter.modified_after(fn.made_at) and _is_saved(t.data, fn):
            raise _modified_error(fn, t, counter.version_at(fn.made_at), now)
        if counter.rebased_at > fn.made_at:
            raise RuntimeError(
                f"a tensor needed for gradient computation was modified by an in-place "
                f"operation: input {i} of {fn.name} (shape {t.shape}) was changed by "
                f"{t._ctx.name} after {fn.name} used it, saved at version "
                f"{counter.version_at(fn.made_at)}, now at version {now}; use an "
                "out-of-place op or clone() it first")
        producer = t._ctx
        if (producer is not None and counter.modified_after(producer.made_at)
                and _is_saved(t.data, producer)):
            raise _modified_error(producer, t, counter.version_at(producer.made_at), now)


def _modified_error(fn: Function, t, then: int, now: int) -> RuntimeError:
    return RuntimeError(
        f"a tensor needed for gradient computation was modified by an in-place operation: "
        f"op {fn.name} saved a tensor of shape {t.shape} at version {then}, now at version "
        f"{now}; use an out-of-place op or clone() it first")


def _topological_order(root_fn: Function) -> list[Function]:
    """Functions reachable from root_fn, each after every function that consumes it."""
    order: list[Function] = []
    visited = set()
    stack = [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if fn in visited:
            continue
        visited.add(fn)
        stack.append((fn, True))
        for t in fn.inputs:
            ctx = t._ctx
            if ctx is not None and ctx not in visited:
                stack.append((ctx, False))
    order.reverse()
    return order


def _accumulate(existing, new):
    # Out of place: `new` may alias an array another node still uses.
    return new if existing is None else existing + new


def run_backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate `grad` (an array shaped like root) from tensor `root` to every leaf."""
    root_fn = root._ctx
    if root_fn is None:
        root._receive_grad(grad)
        return
    order = _topological_order(root_fn)
    pending: dict[Function, list] = {root_fn: [None] * root_fn.n_outputs}
    pending[root_fn][root._out_index] = grad
    # A leaf with hooks gets one gradient, summed over all its uses, once the whole graph
    # has been differentiated: its hooks see the total, as a non-leaf's do. Other leaves
    # add each use's gradient into .grad as it comes.
    hooked_leaves: dict[int, list] = {}  # id(leaf) -> [leaf, gradient so far]
    observers = Function.observers
    in_place_ops = Function.epoch  # any in-place op so far: versions to check
    for fn in order:
        out_grads = pending.pop(fn, None)
        if out_grads is None:
            continue
        if fn.saved is None:
            raise RuntimeError(
                f"backward through {fn.name} a second time: its saved values were freed "
                "after the first backward; pass retain_graph=True to the first call")
        if in_place_ops:
            check_versions(fn)
        if fn.output_hooks:
            out_grads = _apply_output_hooks(fn, out_grads)
        if fn.n_outputs == 1:
            if observers:
                in_grads = _observed_backward(fn, out_grads, observers)
            else:
                in_grads = fn.backward(out_grads[0])
        else:
            out_grads = [fn.device.zeros(*fn.output_meta[i]) if g is None else g
                         for i, g in enumerate(out_grads)]
            if observers:
                in_grads = _observed_backward(fn, out_grads, observers)
            else:
                in_grads = fn.backward(*out_grads)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for t, g, needed in zip(fn.inputs, in_grads, fn.needs_input_grad):
            if not needed or g is None:
                continue
            ctx = t._ctx
            if ctx is None:
                if not t._leaf_hooks:
                    t._receive_grad(g)
                    continue
                entry = hooked_leaves.get(id(t))
                if entry is None:
                    hooked_leaves[id(t)] = [t, g]
                else:
                    entry[1] = _accumulate(entry[1], g)
            else:
                slots = pending.get(ctx)
                if slots is None:
                    slots = pending[ctx] = [None] * ctx.n_outputs
                slots[t._out_index] = _accumulate(slots[t._out_index], g)
        if not retain_graph:
            fn.saved = None
    for leaf, g in hooked_leaves.values():
        leaf._receive_grad(g)


def _observed_backward(fn: Function, out_grads, observers):
    for hook in observers:
        hook(fn, "before_backward", out_grads)
    in_grads = fn.backward(*out_grads)
    for hook in observers:
        hook(fn, "after_backward", in_grads if isinstance(in_grads, tuple) else (in_grads,))
    return in_grads


def _apply_output_hooks(fn: Function, out_grads: list) -> list:
    """Run the hooks registered on fn's outputs (`Tensor.register_hook`, `retain_grad`).

    A hook returning an array replaces the gradient that flows on."""
    for i, hooks in fn.output_hooks.items():
        if out_grads[i] is None:
            continue
        for hook in hooks:
            replaced = hook(out_grads[i])
            if replaced is not None:
                out_grads[i] = replaced
    return out_grads
