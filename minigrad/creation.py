"""Creating tensors: from data, filled, ranges and random draws (with an explicit,
seedable generator)."""

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
