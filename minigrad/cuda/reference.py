"""Array-API twins of the CUDA kernels: same signatures, same math, any device.

They are the references the kernel tests compare against (on NumPy in CI, on CuPy with
a GPU), the documentation of what each kernel computes, and the fallback where a kernel
does not apply (e.g. AdamW on float16 parameters). Each takes the minigrad Device whose
arrays it gets, and uses only `device.xp` and the Device primitives.
"""

from __future__ import annotations

import math


class CrossEntropyReference:
    """cross_entropy.cu: per-row losses and log-sum-exp; gradient from them."""

    def __init__(self, device):
        self.device, self.xp = device, device.xp

    def _is_target(self, targets, n_classes: int):
        """(N, C) boolean: column c of row i is row i's target."""
        classes = self.xp.reshape(self.device.arange(0, n_classes, dtype=targets.dtype),
                                  (1, n_classes))
        return self.xp.expand_dims(targets, axis=1) == classes

    def forward(self, logits, targets, ignore_index: int = -100, label_smoothing: float = 0.0):
        xp = self.xp
        n_classes = logits.shape[1]
        lse = row_logsumexp(xp, logits)
        is_target = self._is_target(targets, n_classes)
        picked = xp.sum(xp.where(is_target, logits, xp.zeros_like(logits)), axis=1)
        loss = lse - (1 - label_smoothing) * picked
        if label_smoothing:  # (without: a -inf logit would give 0 * -inf = nan)
            loss = loss - label_smoothing / n_classes * xp.sum(logits, axis=1)
        return xp.where(targets != ignore_index, loss, xp.zeros_like(loss)), lse

    def backward(self, logits, targets, lse, grad_losses, ignore_index: int = -100,
                 label_smoothing: float = 0.0):
        xp = self.xp
        n_classes = logits.shape[1]
        g = xp.where(targets != ignore_index, grad_losses, xp.zeros_like(grad_losses))
        p = xp.exp(logits - xp.expand_dims(lse, axis=1))
        target = xp.astype(self._is_target(targets, n_classes), logits.dtype)
        return xp.expand_dims(g, axis=1) * (p - label_smoothing / n_classes
                                            - (1 - label_smoothing) * target)


class LayerNormReference:
    """layer_norm.cu: y, mean, rstd; dx and the weight/bias gradients."""

    def __init__(self, device):
        self.xp = device.xp

    def forward(self, x, weight=None, bias=None, eps: float = 1e-5):
        xp = self.xp
        mean = xp.mean(x, axis=1)
        centered = x - xp.expand_dims(mean, axis=1)
        rstd = 1 / xp.sqrt(xp.mean(centered * centered, axis=1) + eps)
        y = centered * xp.expand_dims(rstd, axis=1)
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
        return y, mean, rstd

    def backward(self, dy, x, weight, mean, rstd, param_grads: bool = True):
        xp = self.xp
        xhat = (x - xp.expand_dims(mean, axis=1)) * xp.expand_dims(rstd, axis=1)
        u = dy if weight is None else dy * weight
        dx = xp.expand_dims(rstd, axis=1) * (
            u - xp.mean(u, axis=1, keepdims=True)
            - xhat * xp.mean(u * xhat, axis=1, keepdims=True))
        if not param_grads:
            return dx, None, None
        return dx, xp.sum(dy * xhat, axis=0), xp.sum(dy, axis=0)


class GeluReference:
    """gelu.cu: exact (erf) and tanh GELU, the backward recomputed from x."""

    _SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

    def __init__(self, device):
        self.device, self.xp = device, device.xp

    def forward(self, x, approximate: str = "none"):
        if approximate == "tanh":
            return 0.5 * x * (1 + self._tanh_term(x))
        return x * self._cdf(x)

    def backward(self, x, dy, approximate: str = "none"):
        if approximate == "tanh":
            t = self._tanh_term(x)
            du = self._SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        density = self.xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return dy * (self._cdf(x) + x * density)

    def _tanh_term(self, x):
        return self.xp.tanh(self._SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))

    def _cdf(self, x):
        return 0.5 * (1 + self.device.erf(x / math.sqrt(2)))


class AttentionReference:
    """attention.cu: softmax attention with the (Tq, Tk) matrix materialised."""

    def __init__(self, device):
        self.device, self.xp = device, device.xp

    def supports(self, q, k, v) -> bool:
        return True

    def _probabilities(self, q, k, lse, causal: bool, scale: float):
        """Scores and (given lse) probabilities; lse computed when None."""
        xp = self.xp
        s = xp.matmul(q, xp.matrix_transpose(k)) * scale  # (B, H, Tq, Tk)
        if causal:
            tq, tk = s.shape[-2:]
            rows = xp.reshape(self.device.arange(0, tq), (tq, 1))
            cols = xp.reshape(self.device.arange(0, tk), (1, tk))
            s = xp.where(cols <= rows, s, xp.full_like(s, -math.inf))
        if lse is None:
            lse = row_logsumexp(xp, s)
        return xp.exp(s - xp.expand_dims(lse, axis=-1)), lse

    def forward(self, q, k, v, causal: bool = False, scale: float | None = None):
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        p, lse = self._probabilities(q, k, None, causal, scale)
        return self.xp.matmul(p, v), lse

    def backward(self, q, k, v, out, lse, dout, causal: bool = False,
                 scale: float | None = None):
        xp = self.xp
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        p, _ = self._probabilities(q, k, lse, causal, scale)
        delta = xp.sum(dout * out, axis=-1, keepdims=True)  # (B, H, Tq, 1)
        ds = p * (xp.matmul(dout, xp.matrix_transpose(v)) - delta)
        dq = xp.matmul(ds, k) * scale
        dk = xp.matmul(xp.matrix_transpose(ds), q) * scale
        dv = xp.matmul(xp.matrix_transpose(p), dout)
        return dq, dk, dv


def adamw(device):
    """adamw.cu as a function of equal-shaped arrays, updating param and the moments in
    place (the optimizer's kernel call convention)."""
    xp = device.xp

    def update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
               step) -> None:
        grad = xp.astype(grad, param.dtype)
        exp_avg[...] = beta1 * exp_avg + (1 - beta1) * grad
        exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
        denom = xp.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step) + eps
        param[...] = (param * (1 - lr * weight_decay)
                      - lr / (1 - beta1 ** step) * exp_avg / denom)

    return update


class PhiloxReference:
    """philox.cu: the same streams as the kernel for the same (seed, offset)."""

    def __init__(self, device):
        self.device, self.xp = device, device.xp

    def _words(self, n_counters: int, seed: int, offset: int):
        """The four 32-bit words (uint64 arrays) of counters offset .. offset + n - 1."""
        counters = self.device.arange(0, n_counters, dtype="uint64") + offset
        zero = self.xp.zeros_like(counters)
        return philox4x32_10(self.xp, (counters & MASK32, counters >> 32, zero, zero),
                             (seed & MASK32, seed >> 32))

    def uniform(self, shape, dtype: str, seed: int, offset: int):
        xp = self.xp
        n = math.prod(shape)
        if dtype == "float64":
            counters = -(-n // 2)
            w = self._words(counters, seed, offset)
            pairs = [_unit_double(xp, w[0], w[1]), _unit_double(xp, w[2], w[3])]
            out = _interleave(xp, pairs, n)
        else:
            counters = -(-n // 4)
            out = _interleave(xp, [_unit_float(xp, w) for w in self._words(counters, seed,
                                                                            offset)], n)
        return xp.astype(xp.reshape(out, tuple(shape)), self.device.dtype(dtype)), offset + counters

    def normal(self, shape, dtype: str, seed: int, offset: int):
        xp = self.xp
        n = math.prod(shape)
        if dtype == "float64":
            counters = -(-n // 2)
            w = self._words(counters, seed, offset)
            u1 = 1.0 - _unit_double(xp, w[0], w[1])
            u2 = _unit_double(xp, w[2], w[3])
            out = _interleave(xp, list(_box_muller(xp, u1, u2)), n)
        else:
            counters = -(-n // 4)
            w = [_unit_float(xp, word) for word in self._words(counters, seed, offset)]
            z = _box_muller(xp, 1 - w[0], w[1]) + _box_muller(xp, 1 - w[2], w[3])
            out = _interleave(xp, list(z), n)
        return xp.astype(xp.reshape(out, tuple(shape)), self.device.dtype(dtype)), offset + counters

    def integers(self, low: int, high: int, shape, dtype: str, seed: int, offset: int):
        xp = self.xp
        n = math.prod(shape)
        counters = -(-n // 4)
        draws = [xp.astype((w * (high - low)) >> 32, self.device.dtype("int64")) + low
                 for w in self._words(counters, seed, offset)]
        out = _interleave(xp, draws, n)
        return xp.astype(xp.reshape(out, tuple(shape)), self.device.dtype(dtype)), offset + counters


MASK32 = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def philox4x32_10(xp, counter, key):
    """Philox4x32 with 10 rounds on uint64 arrays holding 32-bit words.

    counter: four arrays (c0, c1, c2, c3); key: two words (arrays or ints) -> four arrays."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + _PHILOX_W[0]) & MASK32, (k1 + _PHILOX_W[1]) & MASK32
        p0, p1 = c0 * _PHILOX_M[0], c2 * _PHILOX_M[1]  # exact: 32 x 32 bits < 2^64
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1,
                          p0 & MASK32)
    return c0, c1, c2, c3


def _unit_float(xp, word):
    return xp.astype(word >> 8, xp.float32) * xp.asarray(2.0 ** -24, dtype=xp.float32)


def _unit_double(xp, w0, w1):
    high = xp.astype(w0 >> 5, xp.float64) * 67108864.0
    return (high + xp.astype(w1 >> 6, xp.float64)) * 2.0 ** -53


def _box_muller(xp, u1, u2):
    radius = xp.sqrt(-2 * xp.log(u1))
    angle = (2 * math.pi) * u2
    return radius * xp.cos(angle), radius * xp.sin(angle)


def _interleave(xp, streams: list, n: int):
    """[a0, b0, c0, .., a1, b1, ..]: stream e holds the e-th value of each counter."""
    return xp.reshape(xp.stack(streams, axis=1), (-1,))[:n]


def row_logsumexp(xp, a):
    """log sum exp over the last axis, shifted by a finite max."""
    shift = xp.max(a, axis=-1, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
    return xp.log(xp.sum(xp.exp(a - shift), axis=-1)) + shift[..., 0]


def reference_kernels(device) -> dict:
    """The twins by kernel name, for a Device (tests install them like the real ones)."""
    return {
        "cross_entropy": CrossEntropyReference(device),
        "layer_norm": LayerNormReference(device),
        "gelu": GeluReference(device),
        "attention": AttentionReference(device),
        "adamw": adamw(device),
        "philox": PhiloxReference(device),
    }
