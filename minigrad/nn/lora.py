"""LoRA (Hu et al. 2021): train a low-rank update of frozen Linear layers.

A `LoRALinear` keeps its base layer's weight W (out, in) and bias b frozen and learns
A (r, in) and B (out, r), with r much smaller than in and out:

    y = x W^T + b + s * dropout(x) A^T B^T,     s = alpha / r

B starts at zero, so the adapted model starts out computing exactly what the base model
does; A starts like a Linear weight (Kaiming-uniform). Backward reaches A and B only
(the base needs no weight gradient), so the optimizer holds moments for A and B alone.

`merge()` folds the update into the weight, W <- W + s B A, so inference costs what the
base costs; `unmerge()` takes it out again (both up to float rounding of W + s B A).

`inject_lora` puts adapters on the Linear layers whose names match patterns (presets:
attention, mlp, all), freezes everything else and reports the parameter counts;
`remove_lora` merges them and puts plain Linear layers back.
`save_adapters` / `load_adapters` write and read A and B alone (a safetensors file, with
rank, alpha and the adapted layers' names in its metadata), so one base checkpoint can
carry many small adapters.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
from dataclasses import dataclass

from minigrad.autograd import no_grad
from minigrad.io.safetensors import read_safetensors, save_safetensors
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.dropout import Dropout
from minigrad.nn.linear import Linear
from minigrad.nn.module import Module, copy_into
from minigrad.nn.parameter import new_parameter

# Name patterns by preset; a pattern matches a layer's qualified name, or its tail after a dot.
TARGET_PRESETS = {
    "attention": ("attn.c_attn", "attn.c_proj"),
    "mlp": ("mlp.c_fc", "mlp.c_proj"),
    "all": ("*",),
}
ADAPTER_METADATA = "minigrad.lora"


class LoRALinear(Module):
    """A Linear layer plus a trainable rank-`rank` update, scaled by alpha / rank.

    The base layer's weight and bias become this module's `weight` and `bias` (the same
    Parameter objects, so state-dict names do not change); the adapter adds `lora_A` and
    `lora_B`. `enabled = False` computes the base layer alone."""

    def __init__(self, base: Linear, rank: int, alpha: float | None = None,
                 dropout: float = 0.0, generator=None):
        super().__init__()
        if not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0:
            raise ValueError(f"LoRALinear: rank must be a positive int, got {rank!r}")
        alpha = float(rank if alpha is None else alpha)
        if not alpha > 0:
            raise ValueError(f"LoRALinear: alpha must be positive, got {alpha}")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        self.weight = base.weight
        self.register_parameter("bias", base.bias)
        device, dtype = base.weight.device, base.weight.dtype
        self.lora_A = new_parameter((rank, self.in_features), device, dtype)
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5), generator=generator)
        self.lora_B = new_parameter((self.out_features, rank), device, dtype)  # zeros
        self.dropout = Dropout(dropout)
        self.merged = False
        self.enabled = True

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)  # (..., out)
        if self.merged or not self.enabled:
            return y
        down = F.linear(self.dropout(x), self.lora_A) * self.scaling  # (..., r)
        return y + F.linear(down, self.lora_B)

    def delta_weight(self):
        """s B A, shape (out, in): what merging adds to the weight (no graph)."""
        return (self.lora_B.detach() @ self.lora_A.detach()) * self.scaling

    def merge(self) -> None:
        """W <- W + s B A: the layer computes the same with one matmul."""
        if self.merged:
            raise RuntimeError("LoRALinear.merge: the adapter is already merged")
        with no_grad():
            copy_into(self.weight, self.weight.detach() + self.delta_weight())
        self.merged = True

    def unmerge(self) -> None:
        """W <- W - s B A: back to the base weight and a separate adapter."""
        if not self.merged:
            raise RuntimeError("LoRALinear.unmerge: the adapter is not merged")
        with no_grad():
            copy_into(self.weight, self.weight.detach() - self.delta_weight())
        self.merged = False

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, rank={self.rank}, alpha={self.alpha:g}, "
                f"merged={self.merged}")


@dataclass
class LoRAReport:
    """What `inject_lora` (or `load_adapters`) did: the adapted layers and the counts."""

    modules: list[str]
    trainable: int
    total: int

    def __str__(self) -> str:
        share = self.trainable / self.total if self.total else 0.0
        return (f"LoRA on {len(self.modules)} layers: {self.trainable:,} trainable of "
                f"{self.total:,} parameters ({share:.2%})")


def expand_targets(targets) -> list[str]:
    """Patterns from presets and/or patterns: "attention", ["attention", "mlp"],
    "attention,mlp", "h.0.attn.c_attn", "*c_fc"."""
    if isinstance(targets, str):
        targets = [t for t in targets.split(",") if t.strip()]
    patterns = []
    for target in targets:
        patterns.extend(TARGET_PRESETS.get(target.strip(), (target.strip(),)))
    if not patterns:
        raise ValueError("inject_lora: no targets given; use a preset "
                         f"({', '.join(TARGET_PRESETS)}) or a layer name pattern")
    return patterns


def inject_lora(model: Module, rank: int, alpha: float | None = None, dropout: float = 0.0,
                targets="attention", generator=None) -> LoRAReport:
    """Replace each Linear whose qualified name matches `targets` by a `LoRALinear`
    wrapping it, freeze every other parameter and return a `LoRAReport`."""
    if lora_modules(model):
        raise ValueError("inject_lora: the model already has LoRA adapters")
    patterns = expand_targets(targets)
    linears = _linears(model)
    chosen = [name for name in linears if any(_matches(name, p) for p in patterns)]
    if not chosen:
        raise ValueError(f"inject_lora: no Linear layer matches {', '.join(patterns)}; the "
                         f"model's Linear layers: {', '.join(linears) or '(none)'}")
    return _inject(model, chosen, rank, alpha, dropout, generator)


def _inject(model: Module, names, rank, alpha, dropout, generator) -> LoRAReport:
    """Adapters on the Linear layers called `names`; everything else frozen."""
    linears = _linears(model)
    missing = [name for name in names if name not in linears]
    if missing:
        raise ValueError(f"inject_lora: the model has no Linear layer {', '.join(missing)}")
    adapters = {name: LoRALinear(linears[name], rank, alpha, dropout, generator)
                for name in names}  # bad settings raise before anything is frozen
    model.requires_grad_(False)
    for name, adapter in adapters.items():
        _replace(model, name, adapter)
    return lora_report(model)


def _linears(model: Module) -> dict[str, Linear]:
    return {name: m for name, m in model.named_modules() if name and isinstance(m, Linear)}


def lora_modules(model: Module) -> dict[str, LoRALinear]:
    """Qualified name -> LoRALinear, for every adapter in the model."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_report(model: Module) -> LoRAReport:
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return LoRAReport(list(lora_modules(model)), trainable, sum(p.numel() for p in params))


def merge_lora(model: Module) -> None:
    """Fold every adapter into its layer's weight (see `LoRALinear.merge`)."""
    for m in _adapters(model, "merge_lora").values():
        m.merge()


def unmerge_lora(model: Module) -> None:
    for m in _adapters(model, "unmerge_lora").values():
        m.unmerge()


def remove_lora(model: Module) -> None:
    """Merge every adapter and put plain Linear layers back (holding the merged weights):
    the model becomes an ordinary one again, e.g. to export or to adapt afresh."""
    for name, m in _adapters(model, "remove_lora").items():
        if not m.merged:
            m.merge()
        linear = Linear(m.in_features, m.out_features, bias=m.bias is not None,
                        device=m.weight.device, dtype=m.weight.dtype)
        linear.weight = m.weight
        if m.bias is not None:
            linear.bias = m.bias
        _replace(model, name, linear)


@contextlib.contextmanager
def adapters_disabled(model: Module):
    """Inside, the model computes its base (the adapters are skipped): the frozen
    reference of preference tuning, with no second copy of the weights."""
    adapters = _adapters(model, "adapters_disabled").values()
    if any(m.merged for m in adapters):
        raise RuntimeError("adapters_disabled: merged adapters cannot be switched off; "
                           "call unmerge_lora(model) first")
    before = [m.enabled for m in adapters]
    for m in adapters:
        m.enabled = False
    try:
        yield model
    finally:
        for m, enabled in zip(adapters, before):
            m.enabled = enabled


def adapter_state_dict(model: Module) -> dict:
    """The adapters' A and B matrices under their state-dict names."""
    return {f"{name}.{kind}": getattr(m, kind).detach()
            for name, m in _adapters(model, "adapter_state_dict").items()
            for kind in ("lora_A", "lora_B")}


def save_adapters(model: Module, path) -> None:
    """Write the adapters alone (safetensors, atomic); rank, alpha, dropout and the
    adapted layers' names go into the metadata, so `load_adapters` can rebuild them."""
    adapters = _adapters(model, "save_adapters")
    if any(m.merged for m in adapters.values()):
        raise RuntimeError("save_adapters: unmerge the adapters first (merged weights are "
                           "the base plus the adapter)")
    first = next(iter(adapters.values()))
    settings = {"rank": first.rank, "alpha": first.alpha, "dropout": first.dropout.p,
                "modules": list(adapters)}
    save_safetensors(adapter_state_dict(model), path, {ADAPTER_METADATA: json.dumps(settings)})


def load_adapters(model: Module, path, generator=None) -> LoRAReport:
    """Put the adapters saved in `path` on `model` (a base model, e.g. loaded from a
    Hugging Face checkpoint, or one already carrying adapters at the same layers)."""
    tensors, metadata = read_safetensors(path)
    if ADAPTER_METADATA not in metadata:
        raise ValueError(f"load_adapters: {path} holds no LoRA adapters (no "
                         f"{ADAPTER_METADATA!r} metadata)")
    settings = json.loads(metadata[ADAPTER_METADATA])
    present = lora_modules(model)
    if not present:
        _inject(model, settings["modules"], settings["rank"], settings["alpha"],
                settings["dropout"], generator)
        present = lora_modules(model)
    if sorted(present) != sorted(settings["modules"]):
        raise ValueError(f"load_adapters: {path} adapts {', '.join(settings['modules'])}; the "
                         f"model's adapters are on {', '.join(present)}")
    for name, m in present.items():
        if m.merged:
            raise RuntimeError(f"load_adapters: the adapter on {name} is merged; unmerge first")
        for kind in ("lora_A", "lora_B"):
            key = f"{name}.{kind}"
            target = getattr(m, kind)
            if tuple(tensors[key].shape) != target.shape:
                raise ValueError(f"load_adapters: {key} is {tuple(tensors[key].shape)} in "
                                 f"{path}, {target.shape} in the model")
            copy_into(target, tensors[key])
    return lora_report(model)


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, "*." + pattern)


def _adapters(model: Module, caller: str) -> dict[str, LoRALinear]:
    adapters = lora_modules(model)
    if not adapters:
        raise ValueError(f"{caller}: the model has no LoRA adapters (see inject_lora)")
    return adapters


def _replace(model: Module, name: str, module: Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = dict(model.named_modules())[parent_name] if parent_name else model
    parent._modules[child] = module  # in place: a ModuleList keeps its order
