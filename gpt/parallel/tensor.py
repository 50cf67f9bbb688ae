"""Tensor parallelism (Megatron-LM, Shoeybi et al. 2019): each block's matrices split
across the tp ranks of a replica, so each rank holds and multiplies 1/tp of them.

Attention: c_attn is column-parallel: rank r keeps its share of the query heads and of
the key/value heads (rows of q, k and v), so attention runs on its heads alone; c_proj
is row-parallel: it maps the rank's heads back to the full width, and the partial sums
are added across the ranks. The MLP likewise: c_fc column-parallel (gate and up halves
split alike for SwiGLU), c_proj row-parallel. Per block and direction that is two
all-reduces (`ReduceFromParallel` forward, `CopyToParallel` backward), and none in the
norms, embeddings and head, which every rank holds whole.

A split is described by (axis, sections): the weight's axis cut into sections (q, k, v
for c_attn) and each section into tp equal parts; rank r keeps part r of every section.
"""

from __future__ import annotations

from minigrad import nn
from minigrad.distributed import copy_to_parallel, reduce_from_parallel
from minigrad.nn import functional as F
from minigrad.nn.parameter import Parameter


def _take(array, axis: int, lo: int, hi: int):
    return array[(slice(None),) * axis + (slice(lo, hi),)]


def shard_of(xp, array, axis: int, sections: list, parts: int, index: int):
    """Part `index` of `parts` of each section of `array` along `axis`, joined."""
    pieces, start = [], 0
    for size in sections:
        n = size // parts
        pieces.append(_take(array, axis, start + index * n, start + (index + 1) * n))
        start += size
    return xp.concat(pieces, axis=axis)


def join_shards(xp, shards: list, axis: int, sections: list):
    """The inverse of shard_of over all parts (`shards` in part order)."""
    parts, pieces, offset = len(shards), [], 0
    for size in sections:
        n = size // parts
        pieces.extend(_take(s, axis, offset, offset + n) for s in shards)
        offset += n
    return xp.concat(pieces, axis=axis)


class _ShardedLinear(nn.Module):
    """A Linear layer's shard (weight (out, in), bias or None) and the ranks sharing it."""

    def __init__(self, weight, bias, comm):
        super().__init__()
        self.comm = comm
        self.weight = Parameter(weight)
        self.bias = None if bias is None else Parameter(bias)


class ColumnParallelLinear(_ShardedLinear):
    """y_r = x W_r^T + b_r: this rank's output features. Its input's gradient sums over
    the ranks (every rank's outputs depend on all of x)."""

    def forward(self, x):
        return F.linear(copy_to_parallel(x, comm=self.comm), self.weight, self.bias)


class RowParallelLinear(_ShardedLinear):
    """y = sum_r x_r W_r^T + b: this rank's input features; the bias is added once,
    after the sum (every rank holds it whole)."""

    def forward(self, x):
        y = reduce_from_parallel(F.linear(x, self.weight), comm=self.comm)
        return y if self.bias is None else y + self.bias


def splits(config) -> dict:
    """{parameter name within a block: (axis, sections)} for the tensor-parallel ones."""
    hs = config.head_dim
    qkv = [config.n_head * hs, config.kv_heads * hs, config.kv_heads * hs]
    fc = [config.mlp_hidden] * (2 if config.mlp == "swiglu" else 1)
    return {"attn.c_attn.weight": (0, qkv), "attn.c_attn.bias": (0, qkv),
            "attn.c_proj.weight": (1, [config.n_embd]),
            "mlp.c_fc.weight": (0, fc), "mlp.c_fc.bias": (0, fc),
            "mlp.c_proj.weight": (1, [config.mlp_hidden])}


def check_divisible(config, tp: int) -> None:
    for what, value in (("n_head", config.n_head), ("n_kv_head", config.kv_heads),
                        ("the MLP width", config.mlp_hidden)):
        if value % tp:
            raise ValueError(f"--parallel tp={tp}: {what} ({value}) must be divisible by tp")


def shard_blocks(blocks, config, comm) -> None:
    """Replace the four matrices of each block by this rank's column / row shards, in
    place (the block's attention then counts only its own heads)."""
    check_divisible(config, comm.size)
    table = splits(config)
    for block in blocks:
        for owner, name, kind in ((block.attn, "c_attn", ColumnParallelLinear),
                                  (block.attn, "c_proj", RowParallelLinear),
                                  (block.mlp, "c_fc", ColumnParallelLinear),
                                  (block.mlp, "c_proj", RowParallelLinear)):
            layer = getattr(owner, name)
            prefix = f"{'attn' if owner is block.attn else 'mlp'}.{name}."
            xp = layer.weight.device.xp
            weight = shard_of(xp, layer.weight.data, *table[prefix + "weight"], comm.size,
                              comm.rank)
            bias = layer.bias
            if bias is not None and prefix + "bias" in table:
                bias = shard_of(xp, bias.data, *table[prefix + "bias"], comm.size, comm.rank)
            elif bias is not None:
                bias = bias.data
            setattr(owner, name, kind(weight, bias, comm))
        block.attn.n_head //= comm.size
        block.attn.n_kv_head //= comm.size
        block.mlp.hidden //= comm.size
