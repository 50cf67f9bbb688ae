"""Creating tensors: from data, filled (zeros, ones, full, empty, eye, *_like), ranges
(arange, linspace) and random draws (with an explicit, seedable generator), multinomial
sampling included."""

from __future__ import annotations

from minigrad import backends
from minigrad.random import default_generator
from minigrad.tensor import Tensor

DEFAULT_FLOAT = "float32"


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor from Python data, a NumPy array or a device array. Python floats become
    float32; NumPy arrays keep their dtype (and share memory on the CPU)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


def _make(array, device, requires_grad: bool) -> Tensor:
    out = Tensor._from_op(array, device, None, 0, False)
    return out.requires_grad_() if requires_grad else out


def zeros(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad: bool = False) -> Tensor:
    device = backends.get_device(device)
    return _make(device.zeros(_shape(shape), dtype), device, requires_grad)


def ones(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad: bool = False) -> Tensor:
    device = backends.get_device(device)
    return _make(device.ones(_shape(shape), dtype), device, requires_grad)


def full(shape, value, dtype=DEFAULT_FLOAT, device=None,
         requires_grad: bool = False) -> Tensor:
    device = backends.get_device(device)
    return _make(device.full(tuple(shape), value, dtype), device, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def empty(*shape, dtype=DEFAULT_FLOAT, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are unspecified (whatever the memory held): fill it before
    reading it."""
    device = backends.get_device(device)
    return _make(device.xp.empty(_shape(shape), dtype=device.dtype(dtype), **device.placement),
                 device, requires_grad)


def full_like(t: Tensor, value, dtype=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, value, dtype=dtype or t.dtype, device=t.device,
                requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=DEFAULT_FLOAT, device=None,
        requires_grad: bool = False) -> Tensor:
    """The (n, m) identity matrix (m = n by default)."""
    device = backends.get_device(device)
    array = device.xp.eye(n, m, dtype=device.dtype(dtype), **device.placement)
    return _make(array, device, requires_grad)


def linspace(start, end, steps: int, dtype=DEFAULT_FLOAT, device=None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    device = backends.get_device(device)
    array = device.xp.linspace(start, end, steps, dtype=device.dtype(dtype), **device.placement)
    return _make(array, device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None) -> Tensor:
    """Like range(): integers by default, floats when any bound is a float."""
    device = backends.get_device(device)
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, stop, step))
        dtype = DEFAULT_FLOAT if floats else "int64"
    return _make(device.arange(start, stop, step, dtype), device, False)


def randn(*shape, dtype=DEFAULT_FLOAT, device=None, generator=None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    gen = generator or default_generator(device)
    return _make(gen.normal(_shape(shape), dtype), gen.device, requires_grad)


def rand(*shape, dtype=DEFAULT_FLOAT, device=None, generator=None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    gen = generator or default_generator(device)
    return _make(gen.uniform(_shape(shape), dtype), gen.device, requires_grad)


def randint(low: int, high: int, shape, dtype="int64", device=None, generator=None) -> Tensor:
    """Uniform integers in [low, high)."""
    gen = generator or default_generator(device)
    return _make(gen.integers(low, high, tuple(shape), dtype), gen.device, False)


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False,
                generator=None) -> Tensor:
    """Category indices drawn with probabilities proportional to the rows of `probs`
    ((C,) or (N, C), non-negative, not necessarily normalised), as torch.multinomial.

    With replacement: inverse-CDF sampling, the index of the first running total above
    u * total for uniform u. Without: the Gumbel-top-k trick (the k largest of
    log p + Gumbel noise are a draw of k distinct categories)."""
    from minigrad.autograd import no_grad

    gen = generator or default_generator(probs.device)
    if gen.device is not probs.device:
        raise ValueError(f"multinomial: generator on {gen.device}, probs on {probs.device}")
    if probs.ndim not in (1, 2) or probs.shape[-1] == 0:
        raise ValueError(f"multinomial: probs must be (C,) or (N, C) with C > 0, got "
                         f"{probs.shape}")
    n_classes = probs.shape[-1]
    if not replacement and num_samples > n_classes:
        raise ValueError(f"multinomial: {num_samples} samples without replacement from "
                         f"{n_classes} categories")
    with no_grad():
        p = probs.detach()
        rows = p.reshape(-1, n_classes)  # (N, C)
        if replacement:
            cdf = rows.cumsum(dim=-1)  # (N, C)
            u = Tensor(gen.uniform((rows.shape[0], num_samples, 1), p.dtype), device=p.device)
            below = (cdf.unsqueeze(1) <= u * cdf[:, -1:].unsqueeze(1))  # (N, S, C)
            out = below.astype("int64").sum(dim=-1).clip(max=n_classes - 1)  # (N, S)
        else:
            u = Tensor(gen.uniform(rows.shape, p.dtype), device=p.device)
            gumbel = -(-(u.clip(min=1e-30)).log()).log()
            out = (rows.log() + gumbel).topk(num_samples, dim=-1).indices
    return out.reshape(probs.shape[:-1] + (num_samples,))
