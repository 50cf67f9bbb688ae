"""Gradient checking: compare an op's hand-written backward with finite differences.

`gradcheck(fn, *inputs)` differentiates `fn` twice and compares:

- analytically, with `backward()`, in the inputs' own dtype on their own device;
- numerically, with central differences ``(f(x + eps) - f(x - eps)) / (2 eps)`` on
  float64 copies of the inputs, so the reference is as exact as finite differences get.

Three ways to compare, from most to least thorough (all need 2 evaluations of `fn` per
input element except the directional one):

- full Jacobian (small outputs): one backward per output element; a failure names the
  output element and the input element.
- vector-Jacobian product (the default for larger outputs): one backward with a random
  cotangent ``u``; compares ``u^T J`` with the finite differences of ``<u, f(x)>``. A
  wrong Jacobian entry shows up with probability one.
- directional (``directional=True``, for large inputs; Chainer's `check_backward`): one
  random unit direction ``d`` over all inputs, two evaluations in all; compares
  ``<u^T J, d>`` with the finite difference of ``<u, f(x)>`` along ``d``.

On a mismatch it raises `GradcheckError` whose message says which input, the worst
index, the analytic and numeric values and their absolute and relative errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minigrad import backends
from minigrad.autograd import no_grad
from minigrad.tensor import Tensor

# Tolerances are never tighter than these floors for the dtype the analytic gradient is
# computed in: float32 rounding alone puts ~1e-6 relative error in every gradient.
_TOLERANCE_FLOORS = {  # dtype -> (atol, rtol)
    "float64": (0.0, 0.0),
    "float32": (1e-4, 2e-3),
    "float16": (1e-2, 5e-2),
    "bfloat16": (5e-2, 1e-1),
}
_FULL_JACOBIAN_MAX_OUTPUTS = 16


class GradcheckError(AssertionError):
    """A gradient check failed; the message is the full report.

    Attributes: `input_index`, `index` (the worst element, or None for a directional
    check), `analytic`, `numeric`, `abs_error`, `rel_error`."""

    def __init__(self, report: str, mismatch: Mismatch | None = None):
        super().__init__(report)
        self.report = report
        m = mismatch or Mismatch()
        self.input_index, self.index = m.input_index, m.index
        self.analytic, self.numeric = m.analytic, m.numeric
        self.abs_error, self.rel_error = m.abs_error, m.rel_error


@dataclass
class Mismatch:
    """The worst disagreement found for one input."""

    input_index: int | None = None
    index: tuple | None = None
    analytic: float = float("nan")
    numeric: float = float("nan")
    abs_error: float = float("nan")
    rel_error: float = float("nan")
    n_bad: int = 0
    n_total: int = 0
    output_index: tuple | None = None


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              directional: bool = False, seed: int = 0, raise_exception: bool = True,
              full_jacobian: bool | None = None) -> bool:
    """Check the gradients of ``fn(*inputs)`` for every input tensor that requires grad.

    fn: returns a Tensor (or a tuple of Tensors, checked as one flattened vector).
    inputs: Tensors (those with requires_grad are checked) and any other arguments.
    eps: finite-difference step (applied to float64 copies of the inputs).
    atol, rtol: an entry passes when ``|analytic - numeric| <= atol + rtol * |numeric|``;
        for float32 and lower-precision inputs they are raised to per-dtype floors.
    directional: one random direction instead of one perturbation per element.
    seed: seeds the random cotangent and direction.
    full_jacobian: compare whole Jacobians (None: when the output has at most 16
        elements).
    Returns True when the gradients agree; otherwise raises `GradcheckError`, or returns
    False when ``raise_exception=False``.
    """
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors with "
                         "requires_grad=True")
    problem = _Problem(fn, inputs, checked, eps, seed)
    if directional:
        failure = problem.check_directional(atol, rtol)
    else:
        full = (problem.out_size <= _FULL_JACOBIAN_MAX_OUTPUTS if full_jacobian is None
                else full_jacobian) and problem.out_size > 0
        failure = problem.check_elementwise(atol, rtol, full)
    if failure is None:
        return True
    if raise_exception:
        raise failure
    return False


class _Problem:
    """fn, its inputs, and the two ways of differentiating it."""

    def __init__(self, fn, inputs, checked, eps, seed):
        self.fn, self.inputs, self.checked, self.eps = fn, inputs, checked, eps
        self.rng = np.random.default_rng(seed)
        self.leaves = list(inputs)
        for i in checked:  # fresh leaves: the caller's .grad stays untouched
            self.leaves[i] = Tensor._from_op(inputs[i].data, inputs[i].device, None, 0, False)
            self.leaves[i].requires_grad = True
        self.out = _as_one_tensor(fn(*self.leaves), "gradcheck")
        self.out_size = self.out.numel()
        self.hosts = {i: inputs[i].numpy().astype(np.float64) for i in checked}
        self.cotangent = self.rng.standard_normal(self.out.shape)

    # -- the two derivatives --------------------------------------------------------
    def analytic(self, cotangent: np.ndarray, retain: bool) -> dict:
        """The gradient of <cotangent, fn(x)> with respect to each checked input."""
        for i in self.checked:
            self.leaves[i].grad = None
        if self.out.requires_grad:
            self.out.backward(cotangent, retain_graph=retain)
        return {i: self.leaves[i].grad for i in self.checked}

    def evaluate(self, hosts: dict) -> np.ndarray:
        """fn at float64 copies of the inputs (host arrays), as a float64 host array."""
        args = list(self.inputs)
        for i, host in hosts.items():
            args[i] = Tensor(host, device=self.inputs[i].device)
        with no_grad():
            out = _as_one_tensor(self.fn(*args), "gradcheck")
        return out.numpy().astype(np.float64)

    def numeric_jacobian(self, i: int) -> np.ndarray:
        """(output size, input size): central differences, one element at a time."""
        host = self.hosts[i].copy()
        flat = host.reshape(-1)
        hosts = dict(self.hosts)
        hosts[i] = host
        columns = []
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + self.eps
            plus = self.evaluate(hosts)
            flat[k] = original - self.eps
            minus = self.evaluate(hosts)
            flat[k] = original
            columns.append(((plus - minus) / (2 * self.eps)).reshape(-1))
        return np.stack(columns, axis=1) if columns else np.zeros((self.out_size, 0))

    # -- the checks -----------------------------------------------------------------
    def check_elementwise(self, atol, rtol, full: bool) -> GradcheckError | None:
        if full:  # one backward per output element: the rows of the Jacobian
            cotangents = [np.eye(1, self.out_size, k).reshape(self.out.shape)
                          for k in range(self.out_size)]
        else:
            cotangents = [self.cotangent]
        passes = [self.analytic(u, retain=full) for u in cotangents]
        for i in self.checked:
            problem = next((p for p in (self.grad_problem(i, g[i]) for g in passes) if p), "")
            if problem:
                return GradcheckError(self.header(i, full) + problem, Mismatch(input_index=i))
            numeric_j = self.numeric_jacobian(i)  # (out size, input size)
            if full:
                analytic = np.stack([self.grad_array(i, g[i]).reshape(-1) for g in passes]
                                    ).reshape(numeric_j.shape)
                numeric = numeric_j
            else:
                analytic = self.grad_array(i, passes[0][i])
                numeric = (self.cotangent.reshape(-1) @ numeric_j).reshape(analytic.shape)
            atol_i, rtol_i = self.tolerances(i, atol, rtol)
            mismatch = _worst(analytic, numeric, atol_i, rtol_i)
            if mismatch is not None:
                mismatch.input_index = i
                if full:  # an entry of the (output, input) Jacobian
                    out_k, in_k = mismatch.index
                    mismatch.output_index = _unravel(out_k, self.out.shape)
                    mismatch.index = _unravel(in_k, self.hosts[i].shape)
                return GradcheckError(self.report(i, full, mismatch, atol_i, rtol_i), mismatch)
        return None

    def check_directional(self, atol, rtol) -> GradcheckError | None:
        directions = {i: self.rng.standard_normal(self.hosts[i].shape) for i in self.checked}
        norm = np.sqrt(sum(float(np.sum(d * d)) for d in directions.values())) or 1.0
        directions = {i: d / norm for i, d in directions.items()}
        grads = self.analytic(self.cotangent, retain=False)
        for i in self.checked:
            problem = self.grad_problem(i, grads[i])
            if problem:
                return GradcheckError(self.header(i, False) + problem, Mismatch(input_index=i))
        tolerances = [self.tolerances(i, atol, rtol) for i in self.checked]
        atol_d = max(a for a, _ in tolerances)
        rtol_d = max(r for _, r in tolerances)
        analytic = sum(float(np.sum(self.grad_array(i, grads[i]) * d))
                       for i, d in directions.items())
        numeric = self.directional_derivative(directions)
        mismatch = _worst(np.array([analytic]), np.array([numeric]), atol_d, rtol_d)
        if mismatch is None:
            return None
        lines = [f"gradcheck failed: directional derivative along one random unit direction "
                 f"over inputs {self.checked}",
                 _values_line(mismatch), f"  tolerance: atol={atol_d:g}, rtol={rtol_d:g}",
                 "  per input (direction restricted to that input):"]
        mismatch.index, worst_error = None, -1.0
        for i, d in directions.items():  # localise: which input's gradient is off
            a = float(np.sum(self.grad_array(i, grads[i]) * d))
            n = self.directional_derivative({i: d})
            lines.append(f"    input {i}: analytic {a:.6g}, numeric {n:.6g}, "
                         f"abs error {abs(a - n):.3g}")
            if abs(a - n) > worst_error:
                mismatch.input_index, worst_error = i, abs(a - n)
        return GradcheckError("\n".join(lines), mismatch)

    def directional_derivative(self, directions: dict) -> float:
        def at(sign):
            hosts = {i: h + sign * self.eps * directions[i] if i in directions else h
                     for i, h in self.hosts.items()}
            return float(np.sum(self.cotangent * self.evaluate(hosts)))

        return (at(1.0) - at(-1.0)) / (2 * self.eps)

    # -- helpers --------------------------------------------------------------------
    def grad_array(self, i: int, grad) -> np.ndarray:
        """An input's analytic gradient as float64 host data (zeros if none reached it)."""
        if grad is None:
            return np.zeros(self.hosts[i].shape)
        return grad.numpy().astype(np.float64)

    def grad_problem(self, i: int, grad) -> str:
        """A description of a gradient with the wrong shape or dtype, or ''."""
        if grad is None:
            return ""
        want_shape, want_dtype = self.inputs[i].shape, backends.dtype_name(self.inputs[i].dtype)
        if grad.shape != want_shape:
            return f"\n  gradient has shape {grad.shape}, expected {want_shape}"
        if backends.dtype_name(grad.dtype) != want_dtype:
            return (f"\n  gradient has dtype {backends.dtype_name(grad.dtype)}, expected "
                    f"{want_dtype} (the input's dtype)")
        return ""

    def tolerances(self, i: int, atol: float, rtol: float) -> tuple[float, float]:
        floor_a, floor_r = _TOLERANCE_FLOORS.get(backends.dtype_name(self.inputs[i].dtype),
                                                 (0.0, 0.0))
        return max(atol, floor_a), max(rtol, floor_r)

    def header(self, i: int, full: bool) -> str:
        t = self.inputs[i]
        how = "full Jacobian" if full else "vector-Jacobian product with a random cotangent"
        return (f"gradcheck failed for input {i} (shape {t.shape}, "
                f"{backends.dtype_name(t.dtype)}), {how}:")

    def report(self, i, full, m: Mismatch, atol, rtol) -> str:
        where = f"d output{list(m.output_index)} / d input{list(m.index)}" if full else (
            f"gradient{list(m.index)}")
        return "\n".join([
            self.header(i, full),
            f"  worst entry: {where}",
            _values_line(m),
            f"  {m.n_bad} of {m.n_total} entries exceed atol={atol:g} + rtol={rtol:g} * "
            "|numeric|",
        ])


def _as_one_tensor(out, op: str) -> Tensor:
    """fn's result as one Tensor: tuples are flattened and concatenated, leaving out
    integer outputs (the indices of max(dim) or sort), which have no gradient."""
    from minigrad.ops import concatenate, reshape

    if isinstance(out, Tensor):
        return out
    if isinstance(out, tuple | list) and out and all(isinstance(t, Tensor) for t in out):
        floats = [t for t in out if t.is_floating_point()]
        return concatenate([reshape(t, (-1,)) for t in floats or out])
    raise TypeError(f"{op}: fn must return a Tensor or a tuple of Tensors, got "
                    f"{type(out).__name__}")


def _worst(analytic: np.ndarray, numeric: np.ndarray, atol, rtol) -> Mismatch | None:
    """The entry that exceeds its tolerance by the largest factor, or None if none does."""
    abs_error = np.abs(analytic - numeric)
    allowed = atol + rtol * np.abs(numeric)
    finite = np.isfinite(analytic) & np.isfinite(numeric)
    bad = ~finite | (abs_error > allowed)
    if not bad.any():
        return None
    excess = np.where(finite, abs_error / np.maximum(allowed, 1e-300), np.inf)
    flat = int(np.argmax(excess))
    index = np.unravel_index(flat, analytic.shape)
    a, n = float(analytic[index]), float(numeric[index])
    err = abs(a - n)
    return Mismatch(index=tuple(int(k) for k in index), analytic=a, numeric=n,
                    abs_error=err, rel_error=err / abs(n) if n else float("inf"),
                    n_bad=int(bad.sum()), n_total=int(bad.size))


def _values_line(m: Mismatch) -> str:
    return (f"  analytic {m.analytic:.8g}, numeric {m.numeric:.8g}, "
            f"abs error {m.abs_error:.3g}, rel error {m.rel_error:.3g}")


def _unravel(flat: int, shape: tuple) -> tuple:
    return tuple(int(k) for k in np.unravel_index(flat, shape)) if shape else ()
