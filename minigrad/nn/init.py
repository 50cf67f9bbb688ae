"""Weight initialisers. Each fills a tensor in place (its Parameter identity and any
optimizer view of its array survive) with draws from `generator` (default: the
tensor's device's default generator), and returns it.

The scaled ones keep activation variance steady through depth: Xavier/Glorot
(variance 2 / (fan_in + fan_out)) for tanh/linear nets, Kaiming/He
(variance gain^2 / fan) for ReLU-family nets. Fans follow PyTorch's convention for a
weight of shape (out, in, *kernel): fan_in = in * prod(kernel), fan_out = out * prod(kernel).
"""

from __future__ import annotations

import math

from minigrad.random import default_generator
from minigrad.tensor import Tensor


def _fill(tensor: Tensor, values) -> Tensor:
    tensor.data[...] = values
    return tensor


def _generator(tensor: Tensor, generator, initialiser: str):
    gen = generator or default_generator(tensor.device)
    if gen.device is not tensor.device:
        raise ValueError(f"{initialiser}: generator is on {gen.device} but the tensor is on "
                         f"{tensor.device}; use a generator on the tensor's device")
    return gen


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with U(a, b)."""
    u = _generator(tensor, generator, "uniform_").uniform(tensor.shape, tensor.dtype)
    return _fill(tensor, a + (b - a) * u)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with N(mean, std^2)."""
    z = _generator(tensor, generator, "normal_").normal(tensor.shape, tensor.dtype)
    return _fill(tensor, mean + std * z)


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activation variance steady through the nonlinearity."""
    if nonlinearity in ("linear", "identity", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope * slope))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected "
                     "linear, identity, sigmoid, tanh, relu, leaky_relu or selu")


def fans(shape: tuple, initialiser: str = "fans") -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"{initialiser}: fan in and fan out need a tensor with at least "
                         f"2 dims, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(tensor.shape, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str, initialiser: str):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{initialiser}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(tensor.shape, initialiser)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan); `a` is the leaky_relu slope."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan); `a` is the leaky_relu slope."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return normal_(tensor, 0.0, std, generator)
