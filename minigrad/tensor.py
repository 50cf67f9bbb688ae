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
                 "_leaf_hooks", "name", "_version", "__weakref__")
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

    def numel(self) -> int:
        return _prod(self.data.shape)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

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
        if self.numel() != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.numel()} "
                             "elements, not 1")
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
        """The same data, cut from the graph (shares memory, and so the version counter
        that in-place ops bump)."""
        out = Tensor._from_op(self.data, self.device, None, 0, False)
        out._version = self._counter()
        return out

    # -- in-place ops (PyTorch's trailing underscore) --------------------------------
    def _counter(self):
        counter = getattr(self, "_version", None)
        if counter is None:
            counter = self._version = autograd.VersionCounter()
        return counter

    @property
    def version(self) -> int:
        """How many in-place ops have written this tensor's memory (PyTorch's `_version`)."""
        counter = getattr(self, "_version", None)
        return 0 if counter is None else counter.value

    def _write(self, op: str, compute, *others, needs_value: bool = False,
               direct=None) -> Tensor:
        """Run the in-place op `op`: compute(current) is the new value as a Tensor, built
        from ops; it is written into this tensor's memory and the version counter bumped.

        While grad is recorded and something requires it, the op also goes into the
        graph as PyTorch does: the old value becomes a hidden tensor (same memory, the
        old graph node) that the op's node takes as input, and this tensor now stands for
        the op's output. Nodes that used the old value and saved it, or that used this
        tensor before, raise at backward (`autograd.check_versions`). `needs_value`: the
        op saves its input, so it gets a copy of the old value. `direct()`, if given,
        writes the memory itself when nothing is recorded (instead of compute + copy)."""
        grad_mode = autograd.is_grad_enabled()
        if grad_mode and self.requires_grad and self._ctx is None:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad cannot be modified in "
                               "place while grad is recorded; wrap the update in "
                               "`with minigrad.no_grad():` (as an optimizer step does)")
        autograd.Function.epoch += 1
        tick = autograd.Function.epoch
        counter = self._counter()
        recording = grad_mode and (self.requires_grad or any(
            isinstance(o, Tensor) and o.requires_grad for o in others))
        if recording:
            old = Tensor._from_op(self.data, self.device, self._ctx, self._out_index,
                                  self.requires_grad)
            old._version = autograd.VersionCounter(counter.value + 1, [*counter.ticks, tick])
            new = compute(old.clone() if needs_value else old)
        elif direct is not None:
            direct()
            counter.bump(tick)
            return self
        else:
            with autograd.no_grad():
                new = compute(self)
        if new.shape != self.shape:
            raise RuntimeError(f"{op}: the result of shape {new.shape} does not fit the "
                               f"tensor of shape {self.shape}")
        if new.dtype != self.dtype and self.is_floating_point() < new.is_floating_point():
            raise TypeError(f"{op}: a {backends.dtype_name(new.dtype)} result cannot be "
                            f"written into a {backends.dtype_name(self.dtype)} tensor")
        self.data[...] = new.data if new.dtype == self.dtype else self.device.xp.astype(
            new.data, self.dtype)
        counter.bump(tick)
        if recording:
            counter.rebased_at = tick
            self._ctx, self._out_index, self.requires_grad = new._ctx, new._out_index, True
        return self

    def add_(self, other, alpha=1):
        return self._write("add_", lambda s: s + (other if alpha == 1 else other * alpha),
                           other)

    def sub_(self, other, alpha=1):
        return self._write("sub_", lambda s: s - (other if alpha == 1 else other * alpha),
                           other)

    def mul_(self, other):
        return self._write("mul_", lambda s: s * other, other,
                           needs_value=isinstance(other, Tensor))

    def div_(self, other):
        return self._write("div_", lambda s: s / other, other,
                           needs_value=isinstance(other, Tensor))

    def clamp_(self, min=None, max=None):
        return self._write("clamp_", lambda s: s.clip(min, max), needs_value=True)

    clip_ = clamp_

    def fill_(self, value):
        """Every element set to value (a number or a 0-d tensor, whose gradient is the sum
        of this tensor's)."""
        def fill(s):
            full = ops.as_tensor(value, s).astype(s.dtype).expand(s.shape)
            return ops.where(_everywhere(s), full, s)  # no gradient to the old value

        return self._write("fill_", fill, value)

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src):
        """This tensor's values replaced by src's (broadcast, cast to this dtype); the
        gradient flows to src."""
        def copy(s):
            source = ops.as_tensor(src, s)
            source = source.to(self.device) if source.device is not s.device else source
            return ops.where(_everywhere(s), source.astype(s.dtype).expand(s.shape), s)

        return self._write("copy_", copy, src)

    def __setitem__(self, key, value):
        """x[key] = value, in place (basic and integer-array keys); recorded in the graph
        as `ops.setitem` when grad is (the written part gets no gradient, value gets it)."""
        self._write("setitem", lambda s: ops.setitem(s, key, value), value,
                    direct=lambda: ops.assign(self, key, value))

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad.

        `grad` is the upstream gradient; it may be omitted only for one-element tensors.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): tensor does not require grad and has no graph")
        if grad is None:
            if self.numel() != 1:
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
            # Host data straight to the tensor's dtype: no rounding through float32 first.
            seed = self.device.asarray(backends.host_array(grad, self.data.dtype))
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
        if not self.requires_grad:
            raise RuntimeError("retain_grad: tensor does not require grad")
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

    # -- methods mirroring the functional ops (PyTorch's names and meanings) ---------
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def log1p(self):
        return ops.log1p(self)

    def expm1(self):
        return ops.expm1(self)

    def sqrt(self):
        return ops.sqrt(self)

    def rsqrt(self):
        return ops.rsqrt(self)

    def square(self):
        return ops.square(self)

    def sign(self):
        return ops.sign(self)

    def sin(self):
        return ops.sin(self)

    def cos(self):
        return ops.cos(self)

    def abs(self):
        return ops.abs(self)

    def pow(self, exponent):
        return ops.pow(self, exponent)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def gelu(self, approximate: str = "none"):
        from minigrad.nn.functional.gelu import gelu  # a fused op: above the primitive ops

        return gelu(self, approximate)

    def softmax(self, dim: int):
        from minigrad.nn.functional.softmax import softmax

        return softmax(self, dim)

    def log_softmax(self, dim: int):
        from minigrad.nn.functional.log_softmax import log_softmax

        return log_softmax(self, dim)

    def erf(self):
        return ops.erf(self)

    def silu(self):
        return ops.silu(self)

    def clip(self, min=None, max=None):
        return ops.clip(self, min, max)

    clamp = clip

    def maximum(self, other):
        return ops.maximum(self, other)

    def minimum(self, other):
        return ops.minimum(self, other)

    def where(self, condition, other):
        """PyTorch's x.where(condition, y): x where condition holds, else y."""
        return ops.where(condition, self, other)

    # reductions: dim= / keepdim= (axis= / keepdims= accepted as aliases)
    def sum(self, dim=None, keepdim: bool = False, **aliases):
        return ops.sum(self, dim, keepdim, **aliases)

    def mean(self, dim=None, keepdim: bool = False, **aliases):
        return ops.mean(self, dim, keepdim, **aliases)

    def prod(self, dim=None, keepdim: bool = False, **aliases):
        return ops.prod(self, dim, keepdim, **aliases)

    def max(self, dim=None, keepdim: bool = False, **aliases):
        return ops.max(self, dim, keepdim, **aliases)

    def min(self, dim=None, keepdim: bool = False, **aliases):
        return ops.min(self, dim, keepdim, **aliases)

    def amax(self, dim=None, keepdim: bool = False, **aliases):
        return ops.amax(self, dim, keepdim, **aliases)

    def amin(self, dim=None, keepdim: bool = False, **aliases):
        return ops.amin(self, dim, keepdim, **aliases)

    def var(self, dim=None, **options):
        return ops.var(self, dim, **options)

    def std(self, dim=None, **options):
        return ops.std(self, dim, **options)

    def norm(self, p=2, dim=None, keepdim: bool = False, **aliases):
        return ops.norm(self, p, dim, keepdim, **aliases)

    def logsumexp(self, dim=None, keepdim: bool = False, **aliases):
        return ops.logsumexp(self, dim, keepdim, **aliases)

    def argmax(self, dim=None, keepdim: bool = False, **aliases):
        return ops.argmax(self, dim, keepdim, **aliases)

    def argmin(self, dim=None, keepdim: bool = False, **aliases):
        return ops.argmin(self, dim, keepdim, **aliases)

    def cumsum(self, dim: int):
        return ops.cumsum(self, dim)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = True):
        return ops.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = True):
        return ops.argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        return ops.topk(self, k, dim, largest, sorted)

    # shapes
    def size(self, dim: int | None = None):
        """The shape (a tuple), or the length of one dim, as PyTorch's size()."""
        if dim is None:
            return self.shape
        ndim = self.data.ndim
        if not -ndim <= dim < ndim:
            raise IndexError(f"size: dim {dim} is out of range for a tensor with {ndim} dims")
        return self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def reshape(self, *shape):
        return ops.reshape(self, _shape_args(shape))

    def view(self, *shape):
        return ops.reshape(self, _shape_args(shape))

    def view_as(self, other):
        return ops.reshape(self, other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return ops.flatten(self, start_dim, end_dim)

    def unflatten(self, dim: int, sizes):
        return ops.unflatten(self, dim, sizes)

    def transpose(self, dim0: int, dim1: int):
        """Swap two dims (PyTorch's transpose; `permute` reorders them all)."""
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return ops.permute(self, _shape_args(dims))

    def swapaxes(self, axis0: int, axis1: int):
        return ops.transpose(self, axis0, axis1)

    swapdims = swapaxes

    @property
    def T(self):
        """The dims reversed (a matrix transposed)."""
        return ops.t(self)

    @property
    def mT(self):
        """The last two dims swapped."""
        return ops.matrix_transpose(self)

    def t(self):
        if self.data.ndim > 2:
            raise ValueError(f"t(): expects a tensor with at most 2 dims, got shape "
                             f"{self.shape}")
        return ops.t(self)

    def squeeze(self, dim=None):
        return ops.squeeze(self, dim)

    def unsqueeze(self, dim: int):
        return ops.unsqueeze(self, dim)

    def expand(self, *shape):
        return ops.broadcast_to(self, _shape_args(shape))

    def expand_as(self, other):
        return ops.broadcast_to(self, other.shape)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, tuple(shape))

    def repeat(self, *sizes):
        return ops.repeat(self, _shape_args(sizes))

    def tile(self, *dims):
        return ops.tile(self, _shape_args(dims))

    def repeat_interleave(self, repeats: int, dim: int | None = None):
        return ops.repeat_interleave(self, repeats, dim)

    def flip(self, *dims):
        return ops.flip(self, _shape_args(dims))

    def roll(self, shifts, dims=None):
        return ops.roll(self, shifts, dims)

    def split(self, split_size_or_sections, dim: int | None = None, **aliases):
        return ops.split(self, split_size_or_sections, dim, **aliases)

    def chunk(self, chunks: int, dim: int = 0):
        return ops.chunk(self, chunks, dim)

    def narrow(self, dim: int, start: int, length: int):
        return ops.narrow(self, dim, start, length)

    def clone(self):
        return ops.clone(self)

    def tril(self, diagonal: int = 0):
        return ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0):
        return ops.triu(self, diagonal)

    # indexing
    def masked_fill(self, mask, value):
        return ops.masked_fill(self, mask, value)

    def gather(self, dim: int, index):
        return ops.gather(self, dim, index)

    def take_along_dim(self, indices, dim: int):
        return ops.take_along_dim(self, indices, dim)

    def index_select(self, dim: int, index):
        return ops.index_select(self, dim, index)

    def scatter_add(self, dim: int, index, src):
        return ops.scatter_add(self, dim, index, src)

    def index_add(self, dim: int, index, source, alpha=1):
        return ops.index_add(self, dim, index, source, alpha)

    def matmul(self, other):
        return ops.matmul(self, other)

    def outer(self, other):
        return ops.outer(self, other)

    def type_as(self, other):
        return self.astype(other.dtype)


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


def _everywhere(t: Tensor) -> Tensor:
    """A 0-d True: `where` with it picks its first operand at every position."""
    return Tensor._from_op(t.device.full((), True, "bool"), t.device, None, 0, False)


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
