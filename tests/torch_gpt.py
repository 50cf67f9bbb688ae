"""A PyTorch twin of `gpt.model.GPT`, for parity tests only.

Written independently in plain PyTorch (explicit attention math, explicit norms) with the
same parameter names and layout as the minigrad model, so a state dict copies across
one to one and the two models can be compared op for op: logits, loss, gradients and
optimizer steps. Every variant of `GPTConfig` is mirrored (positions, norm, MLP, norm
placement, weight tying, QK-norm, logit soft-capping), and PaLM's z-loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-5
RMS_NORM_EPS = 1e-6
ROPE_BASE = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_NORM_EPS) * self.weight


def make_norm(config) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd)
    return nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=config.bias)


def rope_tables(block_size: int, head_dim: int):
    """cos, sin of shape (block_size, head_dim), rotate-half layout, in float64."""
    inv_freq = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """x (B, nh, T, hs) rotated by position: x cos + rotate_half(x) sin."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.qk_norm = config.qk_norm
        if config.qk_norm:
            self.q_norm = RMSNorm(config.n_embd // config.n_head)
            self.k_norm = RMSNorm(config.n_embd // config.n_head)

    def forward(self, x, rope=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos[:T], sin[:T]), apply_rope(k, cos[:T], sin[:T])
        att = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = self.attn_dropout(att) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.kind = config.mlp
        hidden = config.mlp_hidden
        fc_out = 2 * hidden if self.kind == "swiglu" else hidden
        self.c_fc = nn.Linear(config.n_embd, fc_out, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        h = self.c_fc(x)
        if self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        elif self.kind == "relu":
            h = F.relu(h)
        else:
            h = F.gelu(h, approximate="tanh")
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.pre_norm = config.norm_placement == "pre"
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x, rope=None):
        if self.pre_norm:
            x = x + self.attn(self.ln_1(x), rope)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x, rope))
        return self.ln_2(x + self.mlp(x))


class TorchGPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.positions == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        else:
            cos, sin = rope_tables(config.block_size, config.n_embd // config.n_head)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        if config.norm_placement == "pre":
            self.ln_f = make_norm(config)
        if not config.tie_weights:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, ids, targets=None):
        B, T = ids.shape
        x = self.wte(ids)
        rope = None
        if self.config.positions == "learned":
            x = x + self.wpe(torch.arange(T))
        else:
            dtype = self.wte.weight.dtype
            rope = (self.rope_cos.to(dtype), self.rope_sin.to(dtype))
        x = self.drop(x)
        for block in self.h:
            x = block(x, rope)
        if self.config.norm_placement == "pre":
            x = self.ln_f(x)
        head = self.wte.weight if self.config.tie_weights else self.lm_head.weight
        logits = x @ head.T
        if self.config.logit_softcap:
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T),
                                   ignore_index=-100)
        return logits, loss

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Same split as the minigrad model: only matrices of Linear layers decay."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            is_embedding = name.startswith(("wte.", "wpe."))
            (decay if p.ndim >= 2 and not is_embedding else no_decay).append(p)
        return [g for g in ({"params": decay, "weight_decay": weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}) if g["params"]]


def z_loss(logits):
    """PaLM's auxiliary loss: the mean over positions of logsumexp(logits)^2."""
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def from_minigrad(model, dtype=torch.float64) -> TorchGPT:
    """A TorchGPT with a copy of a minigrad GPT's weights, in `dtype`."""
    twin = TorchGPT(model.config).to(dtype)
    weights = {name: torch.from_numpy(p.numpy().copy()).to(dtype)
               for name, p in model.named_parameters()}
    twin.load_state_dict(weights, strict=True)
    return twin
