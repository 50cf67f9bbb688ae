"""`Module`: the base class of layers and models.

Assigning a `Parameter`, a `Module` or (through `register_buffer`) a tensor to an
attribute registers it, in order, so a model is just a tree of modules whose leaves are
parameters. From that tree come `parameters()`, `state_dict()` / `load_state_dict()`,
`to(device)`, `train()` / `eval()` and the readable `repr`.

`module(x)` runs the forward pre-hooks, `forward`, then the forward hooks; tools
(activation statistics, visualisation) attach there without touching model code.
"""

from __future__ import annotations

from collections import namedtuple

from minigrad import backends
from minigrad.autograd import no_grad
from minigrad.nn.parameter import Parameter, zero_grads
from minigrad.tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class: subclasses call `super().__init__()`, assign their parameters and
    submodules as attributes, and define `forward`."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "_forward_pre_hooks", {})

    # -- registration ---------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attribute {name!r}")
        if isinstance(value, Parameter):
            self._unregister(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._unregister(name)
            self._modules[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name} is a parameter: assign a "
                                f"Parameter or None, not {type(value).__name__}")
            self._parameters[name] = None
        elif name in self._buffers and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value
        else:
            self._unregister(name)
            object.__setattr__(self, name, value)

    def _unregister(self, name: str) -> None:
        """Forget `name` wherever it is registered (re-assignment may change its kind)."""
        for registry in (self._parameters, self._buffers, self._modules, self.__dict__):
            registry.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: registered names live in the dicts.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if any(name in r for r in (self._parameters, self._buffers, self._modules)):
            self._unregister(name)
        else:
            object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True):
        """Register a tensor that is state but not trained (running statistics, fixed
        tables): it moves with `to()` and, if persistent, goes into `state_dict()`."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__}")
        self._unregister(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` under `name` (None declares an absent optional parameter,
        e.g. a Linear without bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._unregister(name)
        self._parameters[name] = param

    # -- traversal ------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None):
        """(name, module) for this module and every descendant, each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        """(qualified name, tensor) from one registry, each tensor once (tied weights)."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{module_prefix}.{name}" if module_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the model learns (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    # -- modes and gradients --------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) here and in every descendant."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (or zero it, with set_to_none=False)."""
        zero_grads(self.parameters(), set_to_none)

    def apply(self, fn) -> Module:
        """Call fn(module) on every descendant, children first, then on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- devices and dtypes ---------------------------------------------------------
    def to(self, device=None, dtype=None) -> Module:
        """Move every parameter and buffer to `device` and cast the floating ones to
        `dtype`, in place: the Parameter objects stay the same (build optimizers after,
        or they rebuild their state layout on their next step)."""
        target = None if device is None else backends.get_device(device)
        with no_grad():
            for t in (*self.parameters(), *self.buffers()):
                _move(t, target, dtype)
                if t.grad is not None:
                    _move(t.grad, target, dtype)
        return self

    def float(self) -> Module:
        """Cast every floating parameter and buffer to float32, in place."""
        return self.to(dtype="float32")

    def double(self) -> Module:
        """Cast every floating parameter and buffer to float64, in place."""
        return self.to(dtype="float64")

    # -- state ----------------------------------------------------------------------
    def state_dict(self, prefix: str = "") -> dict:
        """name -> detached tensor (sharing memory with the live one) for every
        parameter and persistent buffer; tied tensors appear under each name."""
        return {name: t.detach() for name, t in self._state_targets(prefix).items()}

    def _state_targets(self, prefix: str = "") -> dict:
        """name -> the live tensor behind each state_dict entry. A module reached by two
        paths (`self.b = self.a`) appears under both, as in PyTorch: unlike
        `named_modules`, this walk keeps no memo."""
        dot = f"{prefix}." if prefix else ""
        targets = {}
        for name, p in self._parameters.items():
            if p is not None:
                targets[dot + name] = p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                targets[dot + name] = b
        for name, child in self._modules.items():
            if child is not None:
                targets.update(child._state_targets(dot + name))
        return targets

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy `state` (name -> Tensor or array, from any device) into the model's
        tensors, in place and cast to their dtypes.

        Nothing is copied unless everything fits: shape mismatches always raise; with
        strict=True missing and unexpected keys raise too. The error lists all three.
        Returns (missing_keys, unexpected_keys).
        """
        targets = self._state_targets()
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        misshaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {targets[k].shape}"
                     for k in targets if k in state and tuple(state[k].shape) != targets[k].shape]
        if misshaped or (strict and (missing or unexpected)):
            problems = [f"{label} ({len(keys)}): {', '.join(keys)}" for label, keys in
                        (("missing keys", missing), ("unexpected keys", unexpected),
                         ("mis-shaped keys", misshaped)) if keys]
            raise RuntimeError(f"load_state_dict into {type(self).__name__}: "
                               + "; ".join(problems))
        for name, target in targets.items():
            if name in state:
                copy_into(target, state[name])
        return IncompatibleKeys(missing, unexpected)

    # -- calling and hooks ----------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        for hook in tuple(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in tuple(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Call hook(module, inputs) before forward; a non-None return replaces the
        positional inputs (a tuple, or a single value)."""
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call hook(module, inputs, output) after forward; a non-None return replaces
        the output."""
        return RemovableHandle(self._forward_hooks, hook)

    # -- printing -------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The settings shown between the parentheses of this module's repr."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


class RemovableHandle:
    """Returned by the register_*_hook methods; `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict, hook):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _move(t: Tensor, device, dtype) -> None:
    """Rebind t's data to a copy on `device` / in `dtype` (floating tensors only)."""
    cast = dtype if dtype is not None and t.is_floating_point() else None
    moved = t.detach().to(device, cast)
    t.data, t.device = moved.data, moved.device


def copy_into(target: Tensor, value) -> None:
    """Write `value` (Tensor, device array or host data) into target's array in place,
    moving it to target's device and casting it to target's dtype.

    In place, not rebinding `target.data`: an optimizer may hold target's array as a
    view into its flat buffer."""
    device = target.device
    data = value.data if isinstance(value, Tensor) else value
    source = backends.device_of(data)
    if source is not device:
        host = data if source is None else source.to_host(data)
        data = device.asarray(backends.host_array(host, target.dtype))
    if data.dtype != target.dtype:
        data = device.xp.astype(data, target.dtype)
    target.data[...] = data
