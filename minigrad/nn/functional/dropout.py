"""dropout(x, p, training, generator): inverted dropout as one fused node.

In training each element is kept with probability 1 - p and scaled by 1 / (1 - p), so
the expected output equals x and evaluation needs no rescaling: there dropout is the
identity (the input itself is returned). Backward: dx = g * keep / (1 - p).
The keep mask is saved as booleans (a quarter of a float32 mask's memory). The draws
come from `generator` (or the device's default one), so a seed reproduces the mask.
"""

from __future__ import annotations

from minigrad.nn.functional._checks import check_floating
from minigrad.nn.functional._fused import FusedFunction
from minigrad.ops.indexing import where
from minigrad.random import Generator, default_generator
from minigrad.tensor import Tensor


class Dropout(FusedFunction):
    name = "dropout"

    def __init__(self, p: float, generator: Generator):
        self.p, self.generator = p, generator
        self.scale = keep_scale(p)

    def array_forward(self, x):
        keep = draw_keep_mask(self.generator, x.shape, x.dtype, self.p)
        self.save_for_backward(keep)
        return apply_keep_mask(self.xp, x, keep, self.scale)

    def array_backward(self, g):
        (keep,) = self.saved
        return apply_keep_mask(self.xp, g, keep, self.scale)


def keep_scale(p: float) -> float:
    """1 / (1 - p), the factor that keeps the expected value; 0 when p = 1 drops all."""
    return 1.0 / (1.0 - p) if p < 1.0 else 0.0


def draw_keep_mask(generator: Generator, shape: tuple, dtype, p: float):
    """Booleans, each True with probability 1 - p (uniform draws in [0, 1) that are >= p)."""
    return generator.uniform(shape, dtype) >= p


def apply_keep_mask(xp, a, keep, scale: float):
    """a * keep * scale as a new array: the forward and the backward are this product.
    (A float multiply: NumPy's where() is many times slower on a random mask.)"""
    out = xp.astype(keep, a.dtype)
    out *= a
    out *= scale
    return out


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            generator: Generator | None = None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) while
    training; return x unchanged when not training or p == 0."""
    generator = _check_arguments("dropout", x, p, generator)
    if not training or p == 0.0:
        return x
    return Dropout(float(p), generator)(x)


def dropout_composite(x: Tensor, p: float = 0.5, training: bool = True,
                      generator: Generator | None = None) -> Tensor:
    """The same from primitive ops. It draws exactly as the fused op does, so with equal
    generator states the two drop the same elements."""
    generator = _check_arguments("dropout_composite", x, p, generator)
    if not training or p == 0.0:
        return x
    keep = Tensor(generator.uniform(x.shape, x.dtype), device=x.device) >= p
    return where(keep, x * keep_scale(p), 0.0)


def _check_arguments(op: str, x: Tensor, p: float, generator: Generator | None) -> Generator:
    """The generator to draw from, after checking p and devices."""
    check_floating(op, x=x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")
    generator = generator if generator is not None else default_generator(x.device)
    if generator.device is not x.device:
        raise ValueError(f"{op}: generator on {generator.device}, input on {x.device}")
    return generator
