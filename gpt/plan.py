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

import dataclasses
import itertools
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
    if not math.isfinite(flops):
        raise ValueError(f"plan: {tokens:.3g} tokens is too many: their training FLOPs "
                         "overflow a float")
    return Plan(tokens, parameters, *suggest_shape(parameters), flops, peak_flops, mfu,
                flops / (peak_flops * mfu))


def _human_time(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600),
                       ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} seconds"


# -- parallel layouts (`python -m gpt plan --parallel`) ---------------------------------
# Per-rank memory, communication and step time of every dp x tp x pp (x ZeRO-1, x
# activation recomputation) layout of N GPUs, from the standard cost models:
#
# - Memory per parameter (Rajbhandari et al. 2020, ZeRO): mixed-precision Adam keeps
#   2 bytes of fp16 weights, 2 of fp16 gradients and 12 of optimizer state (fp32 master
#   weights, m, v): 16 bytes; fp32 training 4 + 4 + 8, also 16. ZeRO-1 divides the
#   optimizer state by dp. Tensor parallelism divides a block's weights by tp, pipeline
#   parallelism the blocks by pp (the embedding stays whole, on the first stage).
# - Activations per layer and micro-batch (Korthikanti et al. 2022): s b h (34 + 5 a s / h)
#   bytes in 16-bit (s sequence, b micro-batch, h width, a heads); with tensor parallelism
#   s b h (10 + 24 / t + 5 a s / (h t)); with full recomputation only the layer input,
#   2 s b h. A GPipe stage holds its layers' activations for all M micro-batches, a 1F1B
#   stage for at most pp of them (Narayanan et al. 2021).
# - Compute: 6 N D (training_flops), plus one forward (2 N D) when recomputing.
# - Communication (ring collectives: an all-reduce of n bytes moves 2 (k - 1) / k n per
#   rank): data parallel one gradient all-reduce per step (ZeRO-1's reduce-scatter plus
#   all-gather move the same); tensor parallel 4 all-reduces of b s h activations per
#   layer and micro-batch (2 forward, 2 backward); pipeline parallel an activation and
#   its gradient per micro-batch at each stage boundary.
# - Step time: compute / (N x peak x mfu), stretched by the pipeline bubble
#   (M + pp - 1) / M, plus communication / bandwidth (no overlap assumed).

MODEL_PRESETS = {
    # name: (n_layer, n_head, n_embd, vocab, sequence, mlp, tied)
    "mini": (8, 8, 512, 8192, 512, "gelu", True),  # the seeds' 10-50M mini-LLM (~30M)
    "gpt2": (12, 12, 768, 50257, 1024, "gelu", True),  # GPT-2 small, 124M
    "gpt2-xl": (48, 25, 1600, 50257, 1024, "gelu", True),  # GPT-2 1.5B
    "llama-7b": (32, 32, 4096, 32000, 4096, "swiglu", False),  # LLaMA 7B
}
LLAMA_7B_MLP = 11008
PRECISIONS = {"mixed": (2, 2, 12, 2), "fp32": (4, 4, 8, 4)}  # weights, grads, Adam, activations


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    n_head: int
    n_embd: int
    vocab: int
    sequence: int
    mlp: str = "gelu"
    tied: bool = True
    mlp_hidden: int | None = None  # None: 4 n_embd (GELU)

    @classmethod
    def preset(cls, name: str) -> ModelShape:
        if name not in MODEL_PRESETS:
            raise ValueError(f"plan: unknown --model {name!r}; presets: "
                             f"{', '.join(MODEL_PRESETS)}")
        shape = cls(*MODEL_PRESETS[name])
        return dataclasses.replace(shape, mlp_hidden=LLAMA_7B_MLP) if name == "llama-7b" \
            else shape

    @property
    def hidden(self) -> int:
        return self.mlp_hidden or 4 * self.n_embd

    def layer_parameters(self) -> int:
        """One block: GPT-2 style (biases, LayerNorm) or Llama style (SwiGLU, RMSNorm,
        no biases)."""
        d, f = self.n_embd, self.hidden
        if self.mlp == "swiglu":
            return 4 * d * d + 3 * d * f + 2 * d
        return 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d

    def embedding_parameters(self) -> int:
        """Token embedding, learned positions (GPT-2), untied head, final norm."""
        d = self.n_embd
        if self.mlp == "swiglu":  # Llama: rotary positions, RMSNorm
            return self.vocab * d * (1 if self.tied else 2) + d
        return self.vocab * d * (1 if self.tied else 2) + self.sequence * d + 2 * d

    def parameters(self) -> int:
        return self.n_layer * self.layer_parameters() + self.embedding_parameters()


def activation_bytes_per_layer(shape: ModelShape, micro_batch: int, tp: int = 1,
                               recompute: bool = False, bytes_per_value: int = 2) -> float:
    """Korthikanti et al. 2022, eq. 1-2 (16-bit values; scaled for other widths)."""
    s, b, h, a = shape.sequence, micro_batch, shape.n_embd, shape.n_head
    if recompute:
        per_value = 2  # the layer's input, kept for the recomputed forward
    else:
        per_value = 10 + 24 / tp + 5 * a * s / (h * tp)
    return s * b * h * per_value * bytes_per_value / 2


def ring_bytes(nbytes: float, ranks: int) -> float:
    """What each rank sends in a ring all-reduce of nbytes among `ranks`."""
    return 2 * (ranks - 1) / ranks * nbytes


@dataclass
class LayoutPlan:
    dp: int
    tp: int
    pp: int
    zero: bool
    recompute: bool
    schedule: str  # the pipeline's: gpipe or 1f1b
    micro_batches: int
    weights_gb: float
    grads_gb: float
    optimizer_gb: float
    activations_gb: float
    comm_gb: float  # bytes sent per rank per step
    bubble: float
    step_seconds: float
    fits: bool

    @property
    def memory_gb(self) -> float:
        return self.weights_gb + self.grads_gb + self.optimizer_gb + self.activations_gb

    @property
    def name(self) -> str:
        return (f"dp={self.dp},tp={self.tp},pp={self.pp}" + (",zero=1" if self.zero else "")
                + (f",schedule={self.schedule}" if self.schedule != "gpipe" else "")
                + (" +recompute" if self.recompute else ""))


def plan_layout(shape: ModelShape, dp: int, tp: int, pp: int, zero: bool, recompute: bool,
                global_batch: int, micro_batch: int, gpu_memory_gb: float,
                gpu_flops: float, bandwidth: float, mfu: float = 0.4,
                precision: str = "mixed", schedule: str = "gpipe") -> LayoutPlan:
    """The costs of one layout (sizes in GB = 1e9 bytes, bandwidth in bytes/s)."""
    weight_b, grad_b, adam_b, act_b = PRECISIONS[precision]
    micro_batches = global_batch // (dp * micro_batch)
    layers = -(-shape.n_layer // pp)  # the first stage's share (the largest)
    params = layers * shape.layer_parameters() / tp + shape.embedding_parameters()
    gb = 1e9
    # Micro-batches whose activations a stage holds at once.
    in_flight = 1 if pp == 1 else micro_batches if schedule == "gpipe" else min(pp,
                                                                                 micro_batches)
    activations = (layers * in_flight * activation_bytes_per_layer(
        shape, micro_batch, tp, recompute, act_b))
    tokens = global_batch * shape.sequence
    flops = training_flops(shape.parameters(), tokens) * (8 / 6 if recompute else 1)
    bubble = (pp - 1) / (micro_batches + pp - 1)
    compute = flops / (dp * tp * pp * gpu_flops * mfu) / (1 - bubble)
    boundary = micro_batch * shape.sequence * shape.n_embd * act_b  # one activation tensor
    comm = ((ring_bytes(params * grad_b, dp) if dp > 1 else 0.0)
            + (4 * layers * micro_batches * ring_bytes(boundary, tp) if tp > 1 else 0.0)
            + (2 * micro_batches * boundary if pp > 1 else 0.0))
    plan = LayoutPlan(dp, tp, pp, zero, recompute, schedule, micro_batches, params * weight_b / gb,
                      params * grad_b / gb, params * adam_b / (dp if zero else 1) / gb,
                      activations / gb, comm / gb, bubble, compute + comm / bandwidth, False)
    plan.fits = plan.memory_gb <= gpu_memory_gb
    return plan


def plan_layouts(shape: ModelShape, gpus: int, global_batch: int, micro_batch: int,
                 gpu_memory_gb: float, gpu_flops: float, bandwidth: float, mfu: float = 0.4,
                 precision: str = "mixed") -> list[LayoutPlan]:
    """Every layout of `gpus` that divides the model and the batch, the fitting ones
    first, fastest first."""
    if precision not in PRECISIONS:
        raise ValueError(f"plan: --precision must be one of {', '.join(PRECISIONS)}")
    plans = []
    for tp in range(1, gpus + 1):
        for pp in range(1, gpus // tp + 1):
            if gpus % (tp * pp) or shape.n_head % tp or pp > shape.n_layer:
                continue
            dp = gpus // (tp * pp)
            if global_batch % (dp * micro_batch):
                continue
            for zero, recompute, schedule in itertools.product(
                    (False, True) if dp > 1 else (False,), (False, True),
                    ("gpipe", "1f1b") if pp > 1 else ("gpipe",)):
                plans.append(plan_layout(shape, dp, tp, pp, zero, recompute, global_batch,
                                         micro_batch, gpu_memory_gb, gpu_flops, bandwidth,
                                         mfu, precision, schedule))
    if not plans:
        raise ValueError(f"plan: no layout of {gpus} GPUs divides the model ({shape.n_head} "
                         f"heads, {shape.n_layer} layers) and the global batch {global_batch} "
                         f"into micro-batches of {micro_batch}")
    return sorted(plans, key=lambda p: (not p.fits, p.step_seconds, p.memory_gb))


def format_layouts(shape: ModelShape, plans: list[LayoutPlan], gpus: int,
                   gpu_memory_gb: float, limit: int = 12) -> str:
    head = (f"model: {shape.parameters() / 1e6:,.1f}M parameters ({shape.n_layer} layers, width "
            f"{shape.n_embd}, {shape.n_head} heads, sequence {shape.sequence}); {gpus} GPUs "
            f"of {gpu_memory_gb:g} GB")
    columns = ("layout", "weights", "grads", "optim", "activ", "total", "comm/step", "bubble",
               "step s", "fits")
    rows = [columns] + [(p.name, *(f"{v:.2f}" for v in (p.weights_gb, p.grads_gb,
                                                         p.optimizer_gb, p.activations_gb,
                                                         p.memory_gb, p.comm_gb)),
                         f"{p.bubble:.0%}", f"{p.step_seconds:.3g}", "yes" if p.fits else "no")
                        for p in plans[:limit]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    shown = "" if len(plans) <= limit else f"\n({len(plans) - limit} more layouts not shown)"
    return (head + "\nper-rank memory in GB; comm/step: GB each rank sends per step\n"
            + "\n".join(lines) + shown)
