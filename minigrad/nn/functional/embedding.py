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
from minigrad.tensor import Tensor


class Embedding(FusedFunction):
    name = "embedding"

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
        return None, dweight


def embedding(ids: Tensor, weight: Tensor) -> Tensor:
    """weight[ids]: ids an integer tensor of any shape, weight (V, D) -> (*ids.shape, D)."""
    _check_arguments("embedding", ids, weight)
    return Embedding()(ids, weight)


def embedding_composite(ids: Tensor, weight: Tensor) -> Tensor:
    """The same as plain integer-array indexing (whose backward also scatter-adds)."""
    _check_arguments("embedding_composite", ids, weight)
    return weight[ids]


def _check_arguments(op: str, ids: Tensor, weight: Tensor) -> None:
    check_integer(op, "ids", ids)
    check_floating(op, weight=weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be (num_embeddings, dim), got shape "
                         f"{weight.shape}")
    if ids.device is not weight.device:
        raise ValueError(f"{op}: ids on {ids.device}, weight on {weight.device}")
