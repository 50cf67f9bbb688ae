"""Conversions that stay in the graph: dtype casts and moves between devices."""

from __future__ import annotations

from minigrad import backends
from minigrad.autograd import Function
from minigrad.tensor import Tensor


class AsType(Function):
    name = "astype"

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, a):
        self.in_dtype = a.dtype
        return self.xp.astype(a, self.device.dtype(self.dtype))

    def backward(self, g):
        return self.xp.astype(g, self.in_dtype)


class ToDevice(Function):
    """An explicit copy to another device; the gradient is copied back."""

    def __init__(self, target):
        self.target = target

    def forward(self, a):
        return self.target.asarray(self.device.to_host(a))

    def backward(self, g):
        return self.device.asarray(self.target.to_host(g))


def astype(a: Tensor, dtype) -> Tensor:
    if backends.dtype_name(dtype) == backends.dtype_name(a.dtype):
        return a
    out = AsType(backends.dtype_name(dtype))(a)
    if not a.device.is_floating(out.dtype):
        out.requires_grad, out._ctx = False, None
    return out


def to_device(a: Tensor, device) -> Tensor:
    """Copy to `device`. The result lives on the target device; so does its graph node's
    output, while its input stays where it was."""
    out = ToDevice(device)(a)
    out.device = device
    return out
