"""`Embedding`: a lookup table from token ids to vectors."""

from __future__ import annotations

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module
from minigrad.nn.parameter import new_parameter


class Embedding(Module):
    """weight (num_embeddings, embedding_dim) ~ N(0, 1), as in PyTorch; ids (...) ->
    vectors (..., embedding_dim)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, device=None, dtype="float32",
                 generator=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = new_parameter((num_embeddings, embedding_dim), device, dtype)
        init.normal_(self.weight, generator=generator)

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
