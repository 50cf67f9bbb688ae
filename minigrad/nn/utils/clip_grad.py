"""`clip_grad_norm_`: rescale gradients so their global norm is at most max_norm;
`clip_grad_value_`: clamp each gradient element into [-clip_value, clip_value].

The total is the norm of all gradients taken together, as if concatenated into one
vector (the norm of the per-parameter norms, as PyTorch computes it; for the 2-norm the
square root of the sum of the per-parameter sums of squares), so clipping keeps the
update's direction. Everything stays on the device: the returned norm is a
0-d tensor and the factor min(1, max_norm / (norm + 1e-6)) multiplies the gradients
without the host deciding whether clipping is needed (the factor is 1 when it is not).
"""

from __future__ import annotations

import math

from minigrad.tensor import Tensor


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Scale the `.grad` of `parameters` in place so their total `norm_type`-norm is at
    most `max_norm`; return the norm before clipping (a 0-d tensor; no host sync).
    PyTorch's argument order.

    With error_if_nonfinite=True a NaN or infinite norm raises, naming the parameters
    whose gradients are not finite (looking costs one host transfer); otherwise such
    gradients are scaled by a NaN factor, as in PyTorch. `foreach` is accepted for
    PyTorch compatibility and changes nothing (the gradients are always handled
    together).
    """
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return Tensor(0.0, device=params[0].device if params else None)
    devices = {p.grad.device.name for p in with_grad}
    if len(devices) > 1:
        raise ValueError(f"clip_grad_norm_: gradients on several devices ({sorted(devices)}); "
                         "clip each device's parameters separately")
    device = with_grad[0].grad.device
    xp = device.xp
    dtype = xp.result_type(*[p.grad.dtype for p in with_grad])
    grads = [p.grad.data if p.grad.dtype == dtype else xp.astype(p.grad.data, dtype)
             for p in with_grad]
    if norm_type == 2.0:  # sqrt of the sum of the per-gradient sums of squares
        total = xp.sqrt(xp.sum(device.sums_of_squares(grads)))
    else:
        total = _norm(xp, xp.stack([_norm(xp, g, norm_type) for g in grads]), norm_type)
    if error_if_nonfinite:
        _raise_if_nonfinite(device, total, params, norm_type)
    if max_norm == math.inf:  # nothing to clip: report the norm only
        return Tensor._from_op(total, device, None, 0, False)
    scale = xp.clip(max_norm / (total + 1e-6), max=1.0)
    factors: dict = {}  # the scale in each gradient dtype
    for p in with_grad:
        g = p.grad
        if g.dtype not in factors:
            factors[g.dtype] = xp.astype(scale, g.dtype)
        # Rebinding, not `*=`: a gradient array may be shared with another tensor.
        g.data = g.data * factors[g.dtype]
    return Tensor._from_op(total, device, None, 0, False)


def _norm(xp, x, norm_type: float):
    """The norm_type-norm (inf or another p; the 2-norm is `Device.sums_of_squares`) of all
    elements of x (0 for an empty x)."""
    if norm_type == math.inf:
        magnitude = xp.abs(x)
        return xp.max(magnitude) if x.size else xp.sum(magnitude)
    return xp.sum(xp.abs(x) ** norm_type) ** (1.0 / norm_type)


def _raise_if_nonfinite(device, total, params, norm_type: float) -> None:
    if math.isfinite(device.to_host(total).item()):
        return
    xp = device.xp
    indexed = [(i, p) for i, p in enumerate(params) if p.grad is not None]
    finite = device.to_host(xp.stack([xp.all(xp.isfinite(p.grad.data)) for _, p in indexed]))
    bad = [f"#{i} (shape {p.shape})" for (i, p), ok in zip(indexed, finite.tolist()) if not ok]
    raise RuntimeError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients is not "
                       f"finite; non-finite gradients in parameter(s) {', '.join(bad)}. Pass "
                       "error_if_nonfinite=False to scale them anyway.")


def clip_grad_value_(parameters, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every element of the `.grad` of `parameters` into [-clip_value, clip_value]
    (NaNs stay NaN), as PyTorch's; parameters without a gradient are skipped. `foreach`
    changes nothing, as in `clip_grad_norm_`."""
    clip_value = float(clip_value)
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if p.grad is not None:
            g = p.grad
            # Rebinding, not in place: a gradient array may be shared with another tensor.
            g.data = g.device.xp.clip(g.data, -clip_value, clip_value)
