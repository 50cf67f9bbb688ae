"""`Tensor`: an array on a device, plus what autograd needs to differentiate through it.

Float data defaults to float32 (float64 for gradient checks; integer tensors hold
indices). A tensor made by an op remembers that op in `_ctx`; `backward()` walks those
links in reverse (see `minigrad.autograd`).

`.grad` accumulates across backward calls until it is reset (`zero_grad()` on a module
or optimizer, or `t.grad = None`): summing over several backward passes is how
gradient accumulation works, so nothing clears it implicitly.
"""

from __future__ import annotations

from minigrad import backends
from minigrad.autograd import run_backward


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_out_index", "device",
                 "_leaf_hooks", "name", "__weakref__")
    # Make NumPy defer to our reflected operators (np_array * tensor -> Tensor.__rmul__).
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        target = backends.get_device(device) if device is not None else None
        source = backends.device_of(data)
        if source is not None and (target is None or target is source):
            self.device = source
            self.data = data if dtype is None else _cast(source, data, dtype)
        else:
            self.device = target or backends.get_device("cpu")
            if source is not None:
                data = source.to_host(data)
            self.data = self.device.asarray(backends.host_array(data, dtype))
        self.grad = None
        self._ctx = None
        self._out_index = 0
        self._leaf_hooks = None
        self.name = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _from_op(cls, data, device, ctx, index, requires_grad) -> Tensor:
        """Fast constructor for op outputs (no conversion, no checks)."""
        t = cls.__new__(cls)
        t.data = data
        t.device = device
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx if requires_grad else None
        t._out_index = index
        t._leaf_hooks = None
        t.name = None
        return t

    # -- metadata -------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return _prod(self.data.shape)

    def numel(self) -> int:
        return self.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def is_floating_point(self) -> bool:
        return self.device.is_floating(self.data.dtype)

    def __repr__(self) -> str:
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extras = []
        if self.device.name != "cpu":
            extras.append(f"device='{self.device}'")
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if extras:
            body = body[:-1] + ", " + ", ".join(extras) + ")"
        return body

    # -- host access (explicit transfers) ------------------------------------------
    def numpy(self):
        """The data as a NumPy array (a host copy for device tensors)."""
        return self.device.to_host(self.data)

    def item(self):
        """The value of a one-element tensor as a Python scalar (a host transfer)."""
        if self.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.size} elements, "
                             "not 1")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    # -- autograd -------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not self.device.is_floating(self.data.dtype):
            raise TypeError(f"requires_grad: only floating-point tensors can require "
                            f"gradients, got dtype {backends.dtype_name(self.data.dtype)}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use detach()")
        self.requires_grad = requires_grad
        return self

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory)."""
        return Tensor._from_op(self.data, self.device, None, 0, False)

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `grad` is the upstream gradient; it may be omitted only for one-element tensors.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): tensor does not require grad and has no graph")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward(): grad can be implicit only for one-element "
                                   f"outputs; pass grad= for shape {self.shape}")
            seed = self.device.xp.ones_like(self.data)
        elif isinstance(grad, Tensor):
            if grad.device is not self.device:
                raise RuntimeError(f"backward(): grad is on device {grad.device}, the tensor "
                                   f"on {self.device}")
            seed = grad.data
            if seed.dtype != self.data.dtype:  # gradients keep the tensor's dtype
                seed = self.device.xp.astype(seed, self.data.dtype)
        else:
            seed = self.device.asarray(backends.host_array(grad, None), dtype=self.data.dtype)
        if tuple(seed.shape) != self.shape:
            raise ValueError(f"backward(): grad of shape {tuple(seed.shape)} does not match "
                             f"tensor of shape {self.shape}")
        run_backward(self, seed, retain_graph)

    def _receive_grad(self, g) -> None:
        """Accumulate a gradient array into this leaf's `.grad`, after its hooks."""
        if self._leaf_hooks:
            for hook in self._leaf_hooks:
                replaced = hook(g)
                if replaced is not None:
                    g = replaced
        if self.grad is None:
            self.grad = Tensor._from_op(g, self.device, None, 0, False)
        else:
            self.grad.data = self.grad.data + g

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        The hook gets the gradient as a Tensor and may return a Tensor to replace it.
        Returns a handle whose `remove()` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: tensor does not require grad")
        device = self.device

        def array_hook(g):
            out = hook(Tensor._from_op(g, device, None, 0, False))
            return None if out is None else (out.data if isinstance(out, Tensor) else out)

        if self._ctx is None:
            if self._leaf_hooks is None:
                self._leaf_hooks = []
            hooks = self._leaf_hooks
            hooks.append(array_hook)
        else:
            hooks = self._output_hooks()
            # Before retain_grad's store, so that .grad shows the gradient after every hook.
            store = next((i for i, h in enumerate(hooks) if getattr(h, "retains_grad", False)),
                         len(hooks))
            hooks.insert(store, array_hook)
        return _HookHandle(hooks, array_hook)

    def _output_hooks(self) -> list:
        """The hook list of this non-leaf tensor (kept by the op that made it)."""
        ctx = self._ctx
        if ctx.output_hooks is None:
            ctx.output_hooks = {}
        return ctx.output_hooks.setdefault(self._out_index, [])

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        if self._ctx is None:
            return
        hooks = self._output_hooks()
        if any(getattr(h, "retains_grad", False) for h in hooks):
            return  # already retained
        import weakref

        ref = weakref.ref(self)

        def store(g):
            t = ref()
            if t is not None:
                t.grad = (Tensor._from_op(g, t.device, None, 0, False) if t.grad is None
                          else Tensor._from_op(t.grad.data + g, t.device, None, 0, False))

        store.retains_grad = True
        hooks.append(store)

    # -- devices and dtypes ---------------------------------------------------------
    def to(self, device=None, dtype=None) -> Tensor:
        """A copy on another device and/or dtype (differentiable); self if nothing changes."""
        from minigrad.ops.conversion import to_device

        out = self
        if dtype is not None and backends.dtype_name(dtype) != backends.dtype_name(self.dtype):
            out = out.astype(dtype)
        if device is not None and backends.get_device(device) is not self.device:
            out = to_device(out, backends.get_device(device))
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def astype(self, dtype) -> Tensor:
        from minigrad.ops.conversion import astype

        return astype(self, dtype)

    def float(self) -> Tensor:
        return self.astype("float32")

    def double(self) -> Tensor:
        return self.astype("float64")

    # -- operators ------------------------------------------------------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(self, other)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.rsub(self, other)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(self, other)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.rdiv(self, other)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.rpow(self, other)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(ops.as_tensor(other, self), self)

    def __neg__(self):
        return ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, key):
        return ops.getitem(self, key)

    # Comparisons give boolean tensors that carry no gradient.
    def __eq__(self, other):
        return ops.compare("equal", self, other)

    def __ne__(self, other):
        return ops.compare("not_equal", self, other)

    def __lt__(self, other):
        return ops.compare("less", self, other)

    def __le__(self, other):
        return ops.compare("less_equal", self, other)

    def __gt__(self, other):
        return ops.compare("greater", self, other)

    def __ge__(self, other):
        return ops.compare("greater_equal", self, other)

    __hash__ = object.__hash__

    # -- methods mirroring the functional ops ---------------------------------------
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def sin(self):
        return ops.sin(self)

    def cos(self):
        return ops.cos(self)

    def abs(self):
        return ops.abs(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def gelu(self, approximate: str = "none"):
        from minigrad.nn.functional.gelu import gelu  # a fused op: above the primitive ops

        return gelu(self, approximate)

    def erf(self):
        return ops.erf(self)

    def silu(self):
        return ops.silu(self)

    def clip(self, min=None, max=None):
        return ops.clip(self, min, max)

    def sum(self, axis=None, keepdims: bool = False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return ops.min(self, axis, keepdims)

    def var(self, axis=None, keepdims: bool = False, correction: int = 0):
        return ops.var(self, axis, keepdims, correction)

    def logsumexp(self, axis=None, keepdims: bool = False):
        return ops.logsumexp(self, axis, keepdims)

    def argmax(self, axis=None, keepdims: bool = False):
        return ops.argmax(self, axis, keepdims)

    def reshape(self, *shape):
        return ops.reshape(self, _shape_args(shape))

    def view(self, *shape):
        return ops.reshape(self, _shape_args(shape))

    def flatten(self):
        return ops.reshape(self, (-1,))

    def transpose(self, *axes):
        return ops.transpose(self, _shape_args(axes) if axes else None)

    def permute(self, *axes):
        return ops.transpose(self, _shape_args(axes))

    def swapaxes(self, axis1: int, axis2: int):
        return ops.swapaxes(self, axis1, axis2)

    @property
    def T(self):
        return ops.transpose(self, None)

    @property
    def mT(self):
        return ops.swapaxes(self, -1, -2)

    def squeeze(self, axis=None):
        return ops.squeeze(self, axis)

    def unsqueeze(self, axis: int):
        return ops.unsqueeze(self, axis)

    def expand(self, *shape):
        return ops.broadcast_to(self, _shape_args(shape))

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, tuple(shape))

    def split(self, split_size_or_sections, axis: int = 0):
        return ops.split(self, split_size_or_sections, axis)

    def tril(self, diagonal: int = 0):
        return ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0):
        return ops.triu(self, diagonal)

    def masked_fill(self, mask, value):
        return ops.masked_fill(self, mask, value)

    def matmul(self, other):
        return ops.matmul(self, other)


class _HookHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _shape_args(args) -> tuple:
    """Accept both f(2, 3) and f((2, 3))."""
    if len(args) == 1 and isinstance(args[0], tuple | list):
        return tuple(args[0])
    return tuple(args)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _cast(device, data, dtype):
    dtype = device.dtype(dtype)
    return data if data.dtype == dtype else device.xp.astype(data, dtype)


# Bound at the end: the op modules build Tensors, so they import this module first.
from minigrad import autograd, ops  # noqa: E402

autograd.Tensor = Tensor  # Function.__call__ wraps op outputs without an import per call
