"""`Optimizer`: parameter groups, per-parameter state, and the flat-buffer layout.

A subclass names its per-parameter state arrays (`state_names`, e.g. Adam's moments)
and writes one `update(device, param, grad, state, group, step)` that changes `param`
and the `state` arrays in place with whole-array ops. That one function is the math
for both ways the optimizer runs it:

- flat: on devices whose arrays have views (NumPy, CuPy), the parameters of a group
  that share a device and dtype are copied once into one flat buffer and their `.data`
  become views into it (so are their state arrays). A step then gathers the gradients
  (a concat; a plain view where a block lies inside one parameter) and runs a handful of
  whole-buffer ops, however many small parameters there are (on the CPU a block of
  `Device.block_bytes` at a time, so temporaries stay small).
- per parameter: elsewhere (the 'strict' device: the array API does not promise views),
  or for a step where some parameter of a bucket has no gradient (PyTorch skips those)
  or the bucket's parameters have taken different numbers of steps.

Anything that rebinds a parameter's `.data` (`Module.to`, a user assignment) is
noticed at the next step, which rebuilds the layout and moves the state along.
Updates run under no_grad, in place, with hyperparameters as Python numbers: no host
sync.
"""

from __future__ import annotations

from typing import NamedTuple

from minigrad import backends
from minigrad.autograd import enable_grad, no_grad
from minigrad.nn.parameter import zero_grads
from minigrad.tensor import Tensor


class Optimizer:
    state_names: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict, flat: bool | None = None):
        """`params`: tensors, or dicts with "params" and per-group hyperparameters that
        override `defaults`. flat=None uses flat buffers where the device has views;
        False always updates per parameter."""
        self.defaults = defaults
        self.flat = flat
        self.param_groups: list[dict] = []
        self.state: dict = {}  # Parameter -> {"step": int, name: array}
        self._buckets = None  # per group: list of _Bucket; None = rebuild at next step
        self._layout_arrays: list = []  # (param, its .data when the layout was built)
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------
    def add_param_group(self, group: dict) -> None:
        name = type(self).__name__
        group = dict(group)
        params = group.get("params")
        params = [params] if isinstance(params, Tensor) else list(params or ())
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor) or not p.is_leaf:
                raise TypeError(f"{name}: can only optimize leaf tensors, got "
                                f"{type(p).__name__}")
            if not p.is_floating_point():
                raise TypeError(f"{name}: parameter of dtype "
                                f"{backends.dtype_name(p.dtype)} is not floating point")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter (shape {p.shape}) appears more than "
                                 "once in the parameter groups")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{name}: unknown hyperparameter(s) {sorted(unknown)}; "
                             f"expected {sorted(self.defaults)}")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.check_hyperparameters(group)
        self.param_groups.append(group)
        self._buckets = None

    def check_hyperparameters(self, group: dict) -> None:
        """Raise ValueError naming a hyperparameter out of range (subclasses extend)."""
        if not group["lr"] >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")
        if not group.get("weight_decay", 0.0) >= 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got "
                             f"{group['weight_decay']}")

    def _params(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (or zero it, with set_to_none=False)."""
        zero_grads(self._params(), set_to_none)

    # -- the step -------------------------------------------------------------------
    def update(self, device, param, grad, state: dict, group: dict, step: int) -> None:
        """Update `param` and the `state` arrays in place from `grad`; `step` counts
        this update (1 on the first)."""
        raise NotImplementedError

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure`, if given,
        re-evaluates the model and returns the loss (which step returns)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group, buckets in zip(self.param_groups, self._layout()):
                for bucket in buckets:
                    self._step_bucket(bucket, group)
        return loss

    def _step_bucket(self, bucket: _Bucket, group: dict) -> None:
        params, state = bucket.params, self.state
        if bucket.flat_param is not None and all(p.grad is not None for p in params):
            step = state[params[0]]["step"] + 1
            if all(state[p]["step"] == step - 1 for p in params):
                xp = bucket.device.xp
                grads = [xp.reshape(p.grad.data, (-1,)) for p in params]
                for block in bucket.blocks:
                    parts = [grads[i][lo:hi] for i, lo, hi in block.segments]
                    grad = parts[0] if len(parts) == 1 else xp.concat(parts)
                    self.update(bucket.device, block.param, grad, block.state, group, step)
                for p in params:
                    state[p]["step"] = step
                return
        for p in params:
            if p.grad is not None:
                s = state[p]
                s["step"] += 1
                self.update(p.device, p.data, p.grad.data, s, group, s["step"])

    # -- layout ---------------------------------------------------------------------
    def _layout(self) -> list:
        """The buckets of each group, rebuilt if a parameter's array was rebound."""
        if self._buckets is None or any(p.data is not a for p, a in self._layout_arrays):
            self._buckets = [self._make_buckets(group["params"]) for group in self.param_groups]
            self._layout_arrays = [(p, p.data) for p in self._params()]
        return self._buckets

    def _make_buckets(self, params) -> list:
        by_kind: dict = {}
        for p in params:
            self._ensure_state(p)
            by_kind.setdefault((p.device.name, backends.dtype_name(p.dtype)), []).append(p)
        buckets = []
        for members in by_kind.values():
            device = members[0].device
            if self.flat is not False and device.has_views:
                buckets.append(_Bucket(members, self.state, self.state_names, flat=True))
            else:
                buckets.extend(_Bucket([p], self.state, self.state_names, flat=False)
                               for p in members)
        return buckets

    def _ensure_state(self, p) -> None:
        """Zero state for a new parameter; existing state moved to p's device/dtype."""
        state = self.state.setdefault(p, {"step": 0})
        for name in self.state_names:
            array = state.get(name)
            state[name] = (p.device.xp.zeros_like(p.data) if array is None
                           else _on_device_of(array, p))

    # -- saving ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"state": {index: {"step": int, name: Tensor}}, "param_groups": [...]} with
        parameters numbered in group order. The tensors share memory with the live state
        (save or copy them before the next step to keep a snapshot)."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {}
        for p in self._params():
            if p in self.state:
                s = self.state[p]
                state[index[id(p)]] = {"step": s["step"], **{
                    name: Tensor._from_op(s[name], p.device, None, 0, False)
                    for name in self.state_names}}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by `state_dict` (from any device: the
        state goes to each parameter's device and dtype)."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: {len(groups)} parameter groups saved, "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (saved, live) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(live["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has "
                                 f"{len(saved['params'])} parameters saved, "
                                 f"{len(live['params'])} in the optimizer")
        params = list(self._params())
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        for i, s in saved_state.items():
            for key in self.state_names:
                if key not in s:
                    raise ValueError(f"{name}.load_state_dict: no {key!r} saved for parameter "
                                     f"{i} (state from another optimizer or settings?)")
                if tuple(s[key].shape) != params[i].shape:
                    raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {i} "
                                     f"has shape {tuple(s[key].shape)}, the parameter "
                                     f"{params[i].shape}")
        for saved, live in zip(groups, self.param_groups):
            live.update({k: _restore_type(live.get(k), v) for k, v in saved.items()
                         if k != "params"})
        self.state = {}
        for i, s in saved_state.items():
            p = params[i]
            self.state[p] = {"step": int(s["step"]), **{
                key: _on_device_of(_array(s[key]), p, copy=True) for key in self.state_names}}
        self._buckets = None


class _Bucket:
    """Parameters updated together. flat=True: same device and dtype, their arrays (and
    state arrays) made views into one flat buffer each, updated a block at a time
    (`Device.block_bytes`; one block on a GPU)."""

    def __init__(self, params: list, state: dict, state_names: tuple, flat: bool):
        self.params = params
        self.device = params[0].device
        self.flat_param = None
        self.flat_state: dict = {}
        if flat:
            self.flat_param = self._flatten([p.data for p in params],
                                            lambda p, view: setattr(p, "data", view))
            for name in state_names:
                self.flat_state[name] = self._flatten(
                    [state[p][name] for p in params],
                    lambda p, view, name=name: state[p].__setitem__(name, view))
            self.blocks = self._plan_blocks()

    def _plan_blocks(self) -> list:
        """Cut the flat buffers into blocks of `Device.block_bytes` (the whole
        buffer if None). Each block knows its views of the buffers and which pieces of
        which parameters' gradients make up its gradient: a block inside one parameter
        uses a view of that gradient, one spanning small parameters a concat of them."""
        total = self.flat_param.shape[0]
        block_bytes = self.device.block_bytes
        size = max(1, block_bytes // self.flat_param.dtype.itemsize) if block_bytes else total
        blocks, segments, start, offset = [], [], 0, 0

        def close():
            view = slice(start, offset)
            blocks.append(_Block(self.flat_param[view],
                                 {k: v[view] for k, v in self.flat_state.items()}, segments))

        for i, p in enumerate(self.params):
            lo = 0
            while lo < p.numel():
                hi = lo + min(p.numel() - lo, start + size - offset)
                segments.append((i, lo, hi))
                offset += hi - lo
                lo = hi
                if offset - start == size:
                    close()
                    segments, start = [], offset
        if segments:
            close()
        return blocks

    def _flatten(self, arrays: list, assign):
        """One flat copy of `arrays`; each array's owner is handed a view into it."""
        xp = self.device.xp
        flat = xp.concat([xp.reshape(a, (-1,)) for a in arrays])
        offset = 0
        for p in self.params:
            n = p.numel()
            assign(p, xp.reshape(flat[offset:offset + n], p.shape))
            offset += n
        return flat


class _Block(NamedTuple):
    param: object  # a view of the flat parameter buffer
    state: dict  # state name -> the same view of its flat buffer
    segments: list  # (parameter index, start, stop) of the gradient pieces, in order


def _array(value):
    return value.data if isinstance(value, Tensor) else value


def _on_device_of(array, p, copy: bool = False):
    """`array` on parameter p's device in p's dtype (a copy if copy=True)."""
    source = backends.device_of(array)
    if source is not p.device:
        host = array if source is None else source.to_host(array)
        array = p.device.asarray(backends.host_array(host, p.dtype))
    if copy or array.dtype != p.dtype:
        array = p.device.xp.astype(array, p.dtype)  # astype copies
    return array


def _restore_type(current, saved):
    """Saved hyperparameters come back as JSON-ish values: tuples (betas) as lists."""
    if isinstance(current, tuple) and isinstance(saved, list):
        return tuple(saved)
    return saved
