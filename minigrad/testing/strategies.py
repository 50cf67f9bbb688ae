"""Hypothesis strategies for testing ops and their gradients (needs `hypothesis`).

Finite differences only agree with a backward where the op is smooth around the point,
so inputs come from a `Domain`: an interval, the kinks to keep away from (``|x|`` and
``relu`` at 0, ``clip`` at its bounds), and whether values must be pairwise distinct
(``max``/``min`` and ``maximum``/``minimum``, where ties make the gradient a choice).
`safe_domain(op_name)` knows the domain of every minigrad op::

    from hypothesis import given

    import minigrad
    from minigrad.testing import strategies as mt

    @given(mt.arrays(mt.shapes(), domain=mt.safe_domain("log")))
    def test_log(a):
        minigrad.gradcheck(minigrad.log, minigrad.tensor(a, requires_grad=True))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@dataclass(frozen=True)
class Domain:
    """Where inputs are drawn: [low, high], at least `margin` from every kink and, when
    `distinct`, at least `margin` from each other (across all arrays of one call)."""

    low: float = -3.0
    high: float = 3.0
    kinks: tuple = ()
    margin: float = 0.05
    distinct: bool = False

    def elements(self) -> st.SearchStrategy:
        """Strategy for one float64 value of this domain."""
        values = st.floats(self.low, self.high, allow_nan=False, allow_infinity=False)
        return values.map(self.push_from_kinks) if self.kinks else values

    def push_from_kinks(self, x: float) -> float:
        for k in self.kinks:
            if abs(x - k) < self.margin:
                x = k + self.margin if x >= k else k - self.margin
        return x


def real(limit: float = 3.0) -> Domain:
    """Any value in [-limit, limit]: for ops smooth everywhere (tanh, gelu, add, ...)."""
    return Domain(-limit, limit)


def positive(low: float = 0.2, high: float = 3.0) -> Domain:
    """Bounded away from 0 from above: log, sqrt, the base of pow."""
    return Domain(low, high)


def nonzero(margin: float = 0.5, limit: float = 3.0) -> Domain:
    """|x| >= margin: divisors."""
    return Domain(-limit, limit, kinks=(0.0,), margin=margin)


def away_from(*kinks: float, margin: float = 0.05, limit: float = 3.0) -> Domain:
    """At least `margin` from each kink (keep margin below half the kinks' spacing)."""
    return Domain(-limit, limit, kinks=tuple(kinks), margin=margin)


def distinct(gap: float = 0.05, limit: float = 3.0) -> Domain:
    """Values pairwise at least `gap` apart, so no max/min ties."""
    return Domain(-limit, limit, margin=gap, distinct=True)


_SAFE_DOMAINS = {
    "log": positive(), "sqrt": positive(), "pow": positive(),
    "div": nonzero(), "rdiv": nonzero(),
    "exp": real(2.0), "rpow": real(2.0),
    "abs": away_from(0.0), "relu": away_from(0.0),
    "max": distinct(), "min": distinct(), "maximum": distinct(), "minimum": distinct(),
}


def safe_domain(op_name: str) -> Domain:
    """The domain where `op_name` is smooth, with values kept moderate; `real()` for ops
    that are smooth everywhere. For `clip(min, max)` use ``away_from(min, max)``."""
    return _SAFE_DOMAINS.get(op_name, real())


def separate(*arrays: np.ndarray, gap: float = 0.05) -> tuple:
    """Move values (jointly over all arrays) so that any two differ by at least `gap`,
    keeping their order; returns float64 copies."""
    sizes = [a.size for a in arrays]
    flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])
    order = np.argsort(flat, kind="stable")
    steps = gap * np.arange(flat.size)
    # v[k] - k*gap made non-decreasing  =>  consecutive sorted values >= gap apart
    flat[order] = np.maximum.accumulate(flat[order] - steps) + steps
    pieces = np.split(flat, np.cumsum(sizes)[:-1])
    return tuple(p.reshape(a.shape) for p, a in zip(pieces, arrays))


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 3) -> st.SearchStrategy:
    """Array shapes (tuples); min_side=0 allows empty axes."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3,
                         min_side: int = 1, max_side: int = 3) -> st.SearchStrategy:
    """Tuples of `num_shapes` shapes that broadcast together (size-1 axes, missing
    leading axes, 0-d)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda result: result.input_shapes)


def arrays(shape, dtype="float64", domain: Domain | None = None) -> st.SearchStrategy:
    """NumPy arrays of `shape` (a tuple or a strategy of tuples). Float arrays take their
    values from `domain` (default `real()`); other dtypes use hypothesis' defaults."""
    if np.dtype(dtype).kind != "f":
        return hnp.arrays(dtype, shape)
    domain = domain or real()
    drawn = hnp.arrays(np.float64, shape, elements=domain.elements())
    if domain.distinct:
        drawn = drawn.map(lambda a: separate(a, gap=domain.margin)[0])
    return drawn.map(lambda a: a.astype(dtype))


def tensors(shape, dtype="float64", domain: Domain | None = None, device=None,
            requires_grad: bool = True) -> st.SearchStrategy:
    """minigrad Tensors with values from `arrays(shape, dtype, domain)`."""
    import minigrad

    return arrays(shape, dtype, domain).map(
        lambda a: minigrad.tensor(a, device=device, requires_grad=requires_grad))
