"""The smaller losses, with PyTorch's arguments and reductions, built from primitive ops
(whose backwards make theirs): mse_loss, nll_loss, binary_cross_entropy,
binary_cross_entropy_with_logits, kl_div. (cross_entropy is a fused op of its own.)"""

from __future__ import annotations

from minigrad.nn.functional._checks import check_floating, check_integer
from minigrad.nn.functional.cross_entropy import REDUCTIONS
from minigrad.ops.activations import logsigmoid
from minigrad.ops.indexing import where
from minigrad.tensor import Tensor


def _reduce(op: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _same_shape(op: str, input: Tensor, target: Tensor) -> None:
    check_floating(op, input=input, target=target)
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} must have the "
                         "same shape")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """(input - target)^2, averaged (or summed)."""
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce("mse_loss", diff * diff, reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-input[n, target_n] (log-probabilities (N, C) or (N, C, d1, ...), class dim 1),
    weighted by weight[target_n]; "mean" divides by the counted rows' total weight."""
    from minigrad.creation import arange

    check_floating("nll_loss", input=input, weight=weight)
    check_integer("nll_loss", "target", target)
    if input.ndim < 1 or (input.ndim == 1 and target.ndim) or (
            input.ndim > 1 and target.shape != (input.shape[0],) + input.shape[2:]):
        raise ValueError(f"nll_loss: input {input.shape} and target {target.shape}: expected "
                         "input (N, C) or (N, C, d1, ...) and target (N) or (N, d1, ...)")
    n_classes = input.shape[0 if input.ndim == 1 else 1]
    lead = target.shape
    if input.ndim > 2:
        input = input.permute((0, *range(2, input.ndim), 1))
    rows, t = input.reshape(-1, n_classes), target.reshape(-1)
    counted = t != ignore_index
    t = where(counted, t, 0)
    w = rows if weight is None else rows * weight
    loss = where(counted, -w[arange(t.shape[0], device=t.device), t], 0.0)
    if reduction == "none":
        return loss.reshape(lead)
    if reduction == "sum":
        return _reduce("nll_loss", loss, reduction)
    counts = counted.astype(input.dtype)
    total = counts.sum() if weight is None else (weight[t] * counts).sum()
    return _reduce("nll_loss", loss, "sum") / total


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p = input; each log is clamped
    at -100, as in PyTorch, so p = 0 or 1 gives a finite loss."""
    _same_shape("binary_cross_entropy", input, target)
    loss = -(target * input.log().clip(min=-100.0)
             + (1 - target) * (1 - input).log().clip(min=-100.0))
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy", loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """binary_cross_entropy(sigmoid(input), target) computed stably from the logits:
    -(pos_weight y log sigmoid(x) + (1 - y) log sigmoid(-x))."""
    _same_shape("binary_cross_entropy_with_logits", input, target)
    positive = target * logsigmoid(input)
    if pos_weight is not None:
        positive = positive * pos_weight
    loss = -(positive + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: target (log target - input), with input
    log-probabilities (0 where target is 0). reduction "batchmean" divides the sum by
    the batch size (the true KL divergence per sample)."""
    _same_shape("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        safe = where(target > 0, target, 1.0)
        loss = where(target > 0, target * (safe.log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce("kl_div", loss, reduction)
