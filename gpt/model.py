"""A GPT (decoder-only transformer) on minigrad, in the style of nanoGPT.

    ids (B, T) -> token embedding (+ learned positions) -> n_layer blocks -> norm -> logits

Each block is causal self-attention plus an MLP, each wrapped in a residual connection,
with the norm before (pre-norm, GPT-2) or after (post-norm, the original transformer)
the residual sum. Variants, chosen in `GPTConfig`: learned or rotary positions, LayerNorm
or RMSNorm, a GELU, ReLU or SwiGLU MLP, an output head tied to the token embedding or not,
and grouped-query attention (`n_kv_head` < `n_head`: each key/value head serves a group of
query heads). `gpt.pretrained` maps GPT-2 and Llama checkpoints onto these options.

Parameter names follow nanoGPT (wte, wpe, h.0.attn.c_attn, ln_f, lm_head), so the PyTorch
twin in tests/torch_gpt.py loads our state dict as is.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import minigrad
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn import init

POSITIONS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu", "relu")
NORM_PLACEMENTS = ("pre", "post")
ROPE_SCALINGS = ("linear", "llama3")
INIT_STD = 0.02


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int  # the longest context the model sees
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms
    positions: str = "learned"
    norm: str = "layernorm"
    mlp: str = "gelu"
    norm_placement: str = "pre"
    tie_weights: bool = True  # the output head reuses the token embedding matrix
    n_kv_head: int | None = None  # key/value heads (grouped-query attention); None: n_head
    mlp_hidden_size: int | None = None  # MLP width; None: the default (see mlp_hidden)
    norm_eps: float | None = None  # None: the norm's default (LayerNorm 1e-5, RMSNorm 1e-6)
    rope_theta: float = 10000.0  # the rotary base
    rope_scaling: dict | None = None  # {"rope_type": "linear" or "llama3", ...}, as in HF
    qk_norm: bool = False  # RMSNorm over each head's queries and keys (Qwen3, Gemma 3)
    logit_softcap: float = 0.0  # > 0: logits = cap tanh(logits / cap) (Gemma 2); 0: off

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPTConfig: {name} must be a positive int, got {value!r}")
        for name, valid in (("positions", POSITIONS), ("norm", NORMS), ("mlp", MLPS),
                            ("norm_placement", NORM_PLACEMENTS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"GPTConfig: unknown {name} {getattr(self, name)!r}; "
                                 f"expected one of {', '.join(map(repr, valid))}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by "
                             f"n_head ({self.n_head})")
        if self.n_kv_head is not None and (self.n_kv_head <= 0 or self.n_head % self.n_kv_head):
            raise ValueError(f"GPTConfig: n_head ({self.n_head}) must be a multiple of "
                             f"n_kv_head ({self.n_kv_head})")
        scaling = (self.rope_scaling or {}).get("rope_type", "linear")
        if self.rope_scaling is not None and scaling not in ROPE_SCALINGS:
            raise ValueError(f"GPTConfig: unknown rope_scaling type {scaling!r}; expected one "
                             f"of {', '.join(map(repr, ROPE_SCALINGS))}")
        if self.positions == "rope" and self.head_dim % 2:
            raise ValueError(f"GPTConfig: rope needs an even head dim, got n_embd / n_head = "
                             f"{self.n_embd} / {self.n_head} = {self.head_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.logit_softcap < math.inf:
            raise ValueError(f"GPTConfig: logit_softcap must be a finite number >= 0 (0: off), "
                             f"got {self.logit_softcap}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def mlp_hidden(self) -> int:
        """MLP width: mlp_hidden_size if given, else 4 n_embd; for SwiGLU 2/3 of that
        (rounded up to a multiple of 8), so its three matrices hold about as many weights as
        the two of a GELU MLP."""
        if self.mlp_hidden_size is not None:
            return self.mlp_hidden_size
        if self.mlp == "swiglu":
            return -(-8 * self.n_embd // 3 // 8) * 8
        return 4 * self.n_embd

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"GPTConfig.from_dict: unknown keys {unknown}; "
                             f"valid keys: {', '.join(sorted(names))}")
        return cls(**d)


def make_norm(config: GPTConfig) -> nn.Module:
    eps = {} if config.norm_eps is None else {"eps": config.norm_eps}
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.n_embd, **eps)
    return nn.LayerNorm(config.n_embd, bias=config.bias, **eps)


def rope_inv_freq(head_dim: int, theta: float, scaling: dict | None = None) -> list[float]:
    """The hs/2 rotation frequencies theta^(-2i/hs), rescaled for a longer context:
    "linear" divides them all by `factor` (positions interpolated); "llama3" (Llama 3.1)
    divides only the low frequencies (wavelength > original context / low_freq_factor),
    keeps the high ones (wavelength < original context / high_freq_factor) and blends
    linearly in between."""
    inv_freq = [theta ** (-2 * i / head_dim) for i in range(head_dim // 2)]
    if scaling is None:
        return inv_freq
    factor = scaling["factor"]
    if scaling.get("rope_type", "linear") == "linear":
        return [f / factor for f in inv_freq]
    context = scaling["original_max_position_embeddings"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    scaled = []
    for f in inv_freq:
        wavelength = 2 * math.pi / f
        if wavelength < context / high:
            scaled.append(f)
        elif wavelength > context / low:
            scaled.append(f / factor)
        else:
            smooth = (context / wavelength - low) / (high - low)  # 0 at low, 1 at high
            scaled.append((1 - smooth) * f / factor + smooth * f)
    return scaled


class Rotary:
    """Rotary position embedding (RoFormer), "rotate-half" layout as in GPT-NeoX / Llama:
    dims i and i + hs/2 form a pair rotated by the angle pos * inv_freq[i] (see
    `rope_inv_freq`: base^(-2i/hs), maybe rescaled).

        rope(x) = x cos + rotate_half(x) sin,   rotate_half([x1, x2]) = [-x2, x1]

    The minus sign is folded into the sin table ([-sin, sin]), so rotating is a swap of
    halves plus two products. cos/sin tables are computed once per device and dtype, in
    float64 and then cast."""

    def __init__(self, head_dim: int, block_size: int, inv_freq: list[float]):
        self.head_dim, self.block_size, self.inv_freq = head_dim, block_size, inv_freq
        self._tables: dict = {}

    def tables(self, device, dtype) -> tuple:
        key = (device.name, minigrad.backends.dtype_name(dtype))
        if key not in self._tables:
            inv_freq = minigrad.tensor(self.inv_freq, dtype="float64", device=device)  # (hs/2,)
            pos = minigrad.arange(0, self.block_size, dtype="float64", device=device)
            angles = pos.unsqueeze(1) * inv_freq.unsqueeze(0)  # (T, hs/2)
            cos, sin = angles.cos(), angles.sin()
            self._tables[key] = (minigrad.cat([cos, cos], axis=-1).astype(dtype),  # (T, hs)
                                 minigrad.cat([-sin, sin], axis=-1).astype(dtype))
        return self._tables[key]

    def __call__(self, x, start: int):
        """x (B, nh, T, hs) at positions start .. start + T - 1."""
        T = x.shape[2]
        cos, sin = (t[start:start + T] for t in self.tables(x.device, x.dtype))  # (T, hs)
        x1, x2 = x.split(self.head_dim // 2, axis=-1)
        return x * cos + minigrad.cat([x2, x1], axis=-1) * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.dropout = config.n_head, config.kv_heads, config.dropout
        self.head_dim = config.head_dim
        qkv = (config.n_head + 2 * config.kv_heads) * config.head_dim  # q, then k, then v
        self.c_attn = nn.Linear(config.n_embd, qkv, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.qk_norm = config.qk_norm
        if config.qk_norm:  # one gain vector (hs,) shared by the heads, as in Qwen3
            self.q_norm, self.k_norm = nn.RMSNorm(self.head_dim), nn.RMSNorm(self.head_dim)

    def heads(self, x, rope=None, start=0, layer_cache=None):
        """q, k, v (B, nh, T, hs) for x (B, T, C); k, v include the cached past, if any.
        The cache holds the n_kv_head heads of k and v; each is repeated for its group of
        nh / n_kv_head query heads (query head h uses key/value head h // group)."""
        B, T, _ = x.shape
        hs, nkv = self.head_dim, self.n_kv_head
        q, k, v = self.c_attn(x).split([self.n_head * hs, nkv * hs, nkv * hs], axis=-1)
        q = q.reshape(B, T, self.n_head, hs).swapaxes(1, 2)  # (B, nh, T, hs)
        k, v = (t.reshape(B, T, nkv, hs).swapaxes(1, 2) for t in (k, v))  # (B, nkv, T, hs)
        if self.qk_norm:
            # QK-norm: unit-RMS queries and keys (times a learned gain) bound the attention
            # logits, whose growth is a known cause of loss spikes (Dehghani et al. 2023).
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rope(q, start), rope(k, start)
        if layer_cache is not None:
            k, v = layer_cache.append(k, v)  # (B, nkv, start + T, hs)
        if nkv != self.n_head:
            group = self.n_head // nkv
            k, v = (t.unsqueeze(2).broadcast_to((B, nkv, group) + t.shape[2:])
                    .reshape(B, self.n_head, -1, hs) for t in (k, v))  # (B, nh, Tk, hs)
        return q, k, v

    def forward(self, x, rope=None, start=0, layer_cache=None):
        B, T, C = x.shape
        q, k, v = self.heads(x, rope, start, layer_cache)
        y = F.scaled_dot_product_attention(
            q, k, v, **causal_mask(q, k), dropout_p=self.dropout if self.training else 0.0)
        # (B, T, nh, hs) -> (B, T, nh hs): C, or a tensor-parallel rank's share of it
        y = y.swapaxes(1, 2).reshape(B, T, -1)
        return self.resid_dropout(self.c_proj(y))

    def attention_probs(self, x, rope=None):
        """softmax(q k^T / sqrt(hs)) under the causal mask: (B, nh, T, T), for plots."""
        q, k, _ = self.heads(x, rope)
        scores = q @ k.swapaxes(-2, -1) * (1.0 / math.sqrt(q.shape[-1]))  # (B, nh, T, T)
        keep = causal_keep(q.device, q.shape[-2], k.shape[-2])
        return F.softmax(minigrad.where(keep, scores, -math.inf), axis=-1)


def z_loss(logits):
    """PaLM's auxiliary loss (Chowdhery et al. 2022, section 5): the squared log of the
    softmax normaliser, log Z = logsumexp(logits), averaged over all positions. Adding
    1e-4 z_loss to the training loss keeps log Z near 0 and the logits from drifting
    upwards, which the softmax alone does not care about. logits (..., V) -> 0-d."""
    return (logits.logsumexp(axis=-1) ** 2).mean()


def causal_keep(device, Tq: int, Tk: int):
    """(Tq, Tk) bool tensor, True where query i may see key j. The queries are the last Tq
    of the Tk positions (Tk > Tq when a KV cache holds the past): i sees j <= i + Tk - Tq,
    the lower triangle shifted right by Tk - Tq (aligned to the bottom-right corner)."""
    return minigrad.ones(Tq, Tk, dtype="bool", device=device).tril(Tk - Tq)


def causal_mask(q, k) -> dict:
    """The attention keyword arguments for q (.., Tq, hs) over k (.., Tk, hs)."""
    Tq, Tk = q.shape[-2], k.shape[-2]
    if Tq == Tk:
        return {"is_causal": True}
    if Tq == 1:
        return {}  # one new token sees every key before it
    return {"attn_mask": causal_keep(q.device, Tq, Tk)}


class MLP(nn.Module):
    """c_fc -> activation -> c_proj. SwiGLU (Shazeer 2020): c_fc makes gate and up in one
    GEMM, and the activation is silu(gate) * up."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.kind, self.hidden = config.mlp, config.mlp_hidden
        fc_out = 2 * self.hidden if self.kind == "swiglu" else self.hidden
        self.c_fc = nn.Linear(config.n_embd, fc_out, bias=config.bias)
        self.c_proj = nn.Linear(self.hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        h = self.c_fc(x)  # (B, T, hidden) or (B, T, 2 hidden)
        if self.kind == "swiglu":
            gate, up = h.split(self.hidden, axis=-1)
            h = F.silu(gate) * up
        elif self.kind == "relu":
            h = F.relu(h)
        else:
            h = F.gelu(h, approximate="tanh")  # GPT-2's GELU
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    """Pre-norm: x + f(norm(x)). Post-norm: norm(x + f(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.pre_norm = config.norm_placement == "pre"
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x, rope=None, start=0, layer_cache=None):
        if self.pre_norm:
            x = x + self.attn(self.ln_1(x), rope, start, layer_cache)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, rope, start, layer_cache))
        return self.ln_2(x + self.mlp(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, generator: minigrad.Generator | None = None):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.positions == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.rope = Rotary(config.head_dim, config.block_size,
                           rope_inv_freq(config.head_dim, config.rope_theta, config.rope_scaling)
                           ) if config.positions == "rope" else None
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        if config.norm_placement == "pre":  # post-norm blocks already end in a norm
            self.ln_f = make_norm(config)
        if not config.tie_weights:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.init_weights(generator)

    def init_weights(self, generator=None) -> None:
        """GPT-2: weights N(0, 0.02), the projections into the residual stream (c_proj)
        N(0, 0.02 / sqrt(2 n_layer)) so its variance does not grow with depth, biases 0,
        norm gains 1."""
        residual_std = INIT_STD / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                init.normal_(p, std=residual_std, generator=generator)
            elif p.ndim >= 2:
                init.normal_(p, std=INIT_STD, generator=generator)
            elif name.endswith(".bias"):
                init.zeros_(p)

    def forward(self, ids, targets=None, kv_cache=None):
        """ids (B, T) int -> (logits (B, T, V), mean cross-entropy against targets or None).

        With a `KVCache` (inference), ids continue the sequence the cache holds."""
        B, T = ids.shape
        start = 0 if kv_cache is None else kv_cache.length
        if start + T > self.config.block_size:
            raise ValueError(f"GPT: sequence of {start + T} tokens ({start} cached + {T} new) "
                             f"exceeds block_size {self.config.block_size}")
        x = self.embed(ids, start)
        for i, block in enumerate(self.h):
            x = block(x, self.rope, start, None if kv_cache is None else kv_cache.layers[i])
        logits = self.head(x)
        loss = None if targets is None else F.cross_entropy(
            logits.reshape(B * T, -1), targets.reshape(B * T))  # rows (B*T, V), as in PyTorch
        return logits, loss

    def embed(self, ids, start: int = 0):
        """ids (B, T) at positions start .. -> token (+ learned position) embeddings after
        dropout, (B, T, C): what the first block sees (and a first pipeline stage sends)."""
        T = ids.shape[1]
        x = self.wte(ids)  # (B, T, C)
        if self.rope is None:
            x = x + self.wpe.weight[start:start + T]  # + (T, C)
        return self.drop(x)

    def head(self, x):
        """The last block's output (B, T, C) -> logits (B, T, V): final norm (pre-norm
        models) and the output head."""
        logits = F.linear(self.final_norm(x), self.output_weight)  # (B, T, V)
        if self.config.logit_softcap:
            # Soft-capping: smooth, monotonic, and |logits| < cap, so no logit runs away.
            cap = self.config.logit_softcap
            logits = (logits * (1.0 / cap)).tanh() * cap
        return logits

    def final_norm(self, x):
        """ln_f for pre-norm models (post-norm blocks already end in a norm): the features
        (B, T, C) the output head, or a classification head, reads."""
        return self.ln_f(x) if self.config.norm_placement == "pre" else x

    @property
    def output_weight(self):
        """The (V, C) matrix of the output head: the token embedding when tied."""
        return self.wte.weight if self.config.tie_weights else self.lm_head.weight

    # -- accounting -----------------------------------------------------------------
    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count; non_embedding=True leaves out the token and position embeddings
        and an untied output head (Kaplan et al. 2020's N)."""
        embedding = ("wte.", "wpe.", "lm_head.")
        return sum(p.numel() for name, p in self.named_parameters()
                   if not (non_embedding and name.startswith(embedding)))

    def flops_per_token(self) -> int:
        """Training FLOPs (forward + backward) per token at full context, as in PaLM
        (Chowdhery et al. 2022, appendix B) and Chinchilla:

            6 (N + V C) + 12 n_layer n_embd T

        N is the non-embedding parameter count: each weight does a multiply-add (2 FLOPs)
        per token forward and twice that backward. V C is the output head's matmul
        (the embedding lookup itself is free). The last term is attention's q k^T and
        att @ v (2 T C FLOPs each per layer forward, x3 with backward), counted over the
        full T x T square as PaLM does, though the causal half is masked."""
        c = self.config
        return (6 * (self.num_parameters(non_embedding=True) + c.vocab_size * c.n_embd)
                + 12 * c.n_layer * c.n_embd * c.block_size)

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Param groups for AdamW over the trainable parameters (frozen ones, e.g. under
        LoRA, get no optimizer state): only the matrices of Linear layers decay; biases,
        norm gains and embeddings (the tied output head included) do not."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            is_embedding = name.startswith(("wte.", "wpe."))
            (decay if p.ndim >= 2 and not is_embedding else no_decay).append(p)
        return [g for g in ({"params": decay, "weight_decay": weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}) if g["params"]]

    # -- inspection -----------------------------------------------------------------
    def attention_maps(self, ids) -> list:
        """Attention probabilities (B, nh, T, T) of every layer for ids (B, T), no grad."""
        maps = []

        def record(attn, inputs, output):
            maps.append(attn.attention_probs(inputs[0], inputs[1]).detach())

        handles = [block.attn.register_forward_hook(record) for block in self.h]
        try:
            with minigrad.no_grad():
                self(ids)
        finally:
            for handle in handles:
                handle.remove()
        return maps
