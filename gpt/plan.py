"""Scaling helper: how big a model a token budget calls for, and what training it costs.

- Compute-optimal size (Hoffmann et al. 2022, "Chinchilla"): about 20 training tokens
  per parameter, so N = D / 20 for D tokens.
- Training compute: about 6 N D FLOPs (forward 2 N per token, backward twice that;
  attention over the context adds a little, ignored here).
- Time: 6 N D / (this machine's measured matmul peak x the utilisation a training step
  reaches, `mfu`).

The suggested shape keeps width about 64 x depth, as GPT-2 small does (768 = 64 x 12),
with N ~ 12 n_layer n_embd^2 in the blocks (4 n_embd^2 in attention, 8 in the MLP).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

TOKENS_PER_PARAMETER = 20
FLOPS_PER_PARAMETER_TOKEN = 6
# Utilisation minigrad's training steps reach on a CPU: 0.2-0.3 of the matmul peak for the
# default `python -m gpt train` model (its progress bar shows mfu); pass yours with --mfu.
DEFAULT_MFU = 0.25


@dataclass
class Plan:
    tokens: int
    parameters: int
    n_layer: int
    n_head: int
    n_embd: int
    training_flops: float
    peak_flops: float
    mfu: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        rows = [
            ("training tokens", f"{self.tokens:,}"),
            (f"compute-optimal parameters ({TOKENS_PER_PARAMETER} tokens each)",
             f"{self.parameters:,}"),
            ("suggested shape", f"n_layer={self.n_layer} n_head={self.n_head} "
                                f"n_embd={self.n_embd}"),
            ("training FLOPs (6 x params x tokens)", f"{self.training_flops:.3g}"),
            ("measured matmul peak", f"{self.peak_flops / 1e9:.1f} GFLOP/s"),
            ("assumed utilisation (mfu)", f"{self.mfu:.0%}"),
            ("estimated training time", _human_time(self.seconds)),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def compute_optimal_parameters(tokens: int) -> int:
    return max(1, round(tokens / TOKENS_PER_PARAMETER))


def training_flops(parameters: int, tokens: int) -> float:
    return float(FLOPS_PER_PARAMETER_TOKEN) * parameters * tokens


def suggest_shape(parameters: int) -> tuple[int, int, int]:
    """(n_layer, n_head, n_embd) with about `parameters` weights in the blocks."""
    n_layer = max(1, round((parameters / (12 * 64**2)) ** (1 / 3)))
    width = math.sqrt(parameters / (12 * n_layer))
    head_dim = 64 if width >= 256 else 32
    n_embd = max(head_dim, round(width / head_dim) * head_dim)
    return n_layer, n_embd // head_dim, n_embd


def make_plan(tokens: int, peak_flops: float, mfu: float = DEFAULT_MFU) -> Plan:
    if tokens <= 0:
        raise ValueError(f"plan: the token count must be positive, got {tokens}")
    if not 0 < mfu <= 1:
        raise ValueError(f"plan: --mfu must be in (0, 1], got {mfu}")
    parameters = compute_optimal_parameters(tokens)
    flops = training_flops(parameters, tokens)
    return Plan(tokens, parameters, *suggest_shape(parameters), flops, peak_flops, mfu,
                flops / (peak_flops * mfu))


def _human_time(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600),
                       ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} seconds"
