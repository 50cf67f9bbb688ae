"""embedding(ids, weight): rows of a (V, D) table picked by integer ids, as one fused node.

Forward: out[..., :] = weight[ids[...], :], one `take` along the rows. Backward: row v
of dweight is the sum of the upstream gradients of every position whose id is v; ids
repeat, so this is a scatter-add (the backend's `index_add`), never an assignment.

Ids outside [0, V) raise IndexError on 'cpu' and 'strict', where reading the ids is
free (`Device.check_indices`). A GPU backend never copies them to the host for it: it
checks on the device or, as the CuPy backend does, not at all.
"""

from __future__ import annotations

import math

from minigrad.nn.functional._checks import check_floating, check_integer
from minigrad.nn.functional._fused import FusedFunction
from minigrad.ops.indexing import where
from minigrad.tensor import Tensor


class Embedding(FusedFunction):
    name = "embedding"

    def __init__(self, padding_idx: int | None = None):
        self.padding_idx = padding_idx

    def array_forward(self, ids, weight):
        xp = self.xp
        vocab, dim = weight.shape
        flat = xp.reshape(ids, (math.prod(ids.shape),))  # (N,)
        self.device.check_indices(flat, vocab, self.name)
        self.save_for_backward(flat)
        self.weight_meta = (weight.shape, weight.dtype)
        return xp.reshape(xp.take(weight, flat, axis=0), ids.shape + (dim,))

    def array_backward(self, g):
        (flat,) = self.saved
        shape, dtype = self.weight_meta
        dweight = self.device.zeros(shape, dtype)
        self.device.index_add(dweight, flat, self.xp.reshape(g, (flat.shape[0], shape[1])))
        if self.padding_idx is not None:
            dweight[self.padding_idx, ...] = 0  # the padding row is never learned
        return None, dweight


def embedding(ids: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """weight[ids]: ids an integer tensor of any shape, weight (V, D) -> (*ids.shape, D).
    The row `padding_idx` (if given) gets no gradient, as in PyTorch."""
    padding_idx = _check_arguments("embedding", ids, weight, padding_idx)
    return Embedding(padding_idx)(ids, weight)


def embedding_composite(ids: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """The same as plain integer-array indexing (whose backward also scatter-adds); the
    padding positions take their row detached."""
    padding_idx = _check_arguments("embedding_composite", ids, weight, padding_idx)
    out = weight[ids]
    if padding_idx is None:
        return out
    return where((ids != padding_idx).unsqueeze(-1), out, out.detach())


def _check_arguments(op: str, ids: Tensor, weight: Tensor, padding_idx) -> int | None:
    """padding_idx as a non-negative row (or None), after checking the arguments."""
    check_integer(op, "ids", ids)
    check_floating(op, weight=weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be (num_embeddings, dim), got shape "
                         f"{weight.shape}")
    if ids.device is not weight.device:
        raise ValueError(f"{op}: ids on {ids.device}, weight on {weight.device}")
    if padding_idx is None:
        return None
    vocab = weight.shape[0]
    if not -vocab <= padding_idx < vocab:
        raise ValueError(f"{op}: padding_idx {padding_idx} is out of range for {vocab} rows")
    return padding_idx % vocab
