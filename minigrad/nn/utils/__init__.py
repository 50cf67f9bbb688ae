"""Training utilities for modules' parameters."""

from minigrad.nn.utils.clip_grad import clip_grad_norm_

__all__ = ["clip_grad_norm_"]
