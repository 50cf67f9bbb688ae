"""Loss of a model over batches of windows, without gradients.

The trainer evaluates on a fixed sample of validation windows; `python -m gpt eval`
takes every non-overlapping window of a text. Both sum on the device and fetch the
result once at the end."""

from __future__ import annotations

import math

import minigrad
from gpt.data.batches import SlidingWindows


def mean_loss(model, batches, device) -> float:
    """Mean next-token loss (nats per token) over an iterable of (inputs, targets) host
    arrays; batches may differ in size (each weighs by its windows)."""
    device = minigrad.get_device(device)
    was_training = model.training
    model.eval()
    total, windows = None, 0
    try:
        with minigrad.no_grad():
            for inputs, targets in batches:
                _, loss = model(minigrad.tensor(inputs, device=device),
                                minigrad.tensor(targets, device=device))
                weighted = loss * float(len(inputs))
                total = weighted if total is None else total + weighted
                windows += len(inputs)
    finally:
        model.train(was_training)
    if total is None:
        raise ValueError("evaluation: no batches to evaluate")
    return total.item() / windows


def text_loss(model, tokens, batch_size: int, device) -> tuple[float, float, int]:
    """(loss, perplexity, tokens scored) over every non-overlapping window of `tokens`;
    the window is block_size long, or shorter if the text is."""
    block = min(model.config.block_size, len(tokens) - 1)
    if block < 1:
        raise ValueError(f"evaluation: the text has {len(tokens)} token(s); at least 2 are "
                         "needed to score a next-token prediction")
    windows = SlidingWindows(tokens, block, block, batch_size, shuffle=False, drop_last=False)
    loss = mean_loss(model, windows, device)
    return loss, math.exp(loss), len(windows.starts) * block
