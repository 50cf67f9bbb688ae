"""The differentiable ops, one module per family; each op is a `Function` subclass with
a hand-written backward, plus a functional form re-exported here."""

from minigrad.ops._util import as_tensor
from minigrad.ops.activations import (
    elu,
    erf,
    glu,
    leaky_relu,
    logsigmoid,
    relu,
    sigmoid,
    silu,
    softplus,
    tanh,
)
from minigrad.ops.arithmetic import add, div, mul, neg, pow, rdiv, rpow, rsub, sub
from minigrad.ops.compare import compare
from minigrad.ops.conversion import astype, to_device
from minigrad.ops.cumulative import cumsum
from minigrad.ops.indexing import (
    assign,
    gather,
    getitem,
    index_add,
    index_select,
    masked_fill,
    narrow,
    scatter_add,
    setitem,
    take_along_dim,
    where,
)
from minigrad.ops.join import cat, chunk, concatenate, split, stack
from minigrad.ops.matmul import einsum, matmul, outer
from minigrad.ops.reductions import (
    ValuesIndices,
    amax,
    amin,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    std,
    sum,
    var,
)
from minigrad.ops.shape import (
    broadcast_to,
    clone,
    expand,
    flatten,
    flip,
    matrix_transpose,
    permute,
    repeat,
    repeat_interleave,
    reshape,
    roll,
    squeeze,
    swapaxes,
    swapdims,
    t,
    tile,
    transpose,
    unflatten,
    unsqueeze,
)
from minigrad.ops.sorting import argsort, sort, topk
from minigrad.ops.triangular import tril, triu
from minigrad.ops.unary import (
    abs,
    clip,
    cos,
    exp,
    expm1,
    log,
    log1p,
    maximum,
    minimum,
    rsqrt,
    sign,
    sin,
    sqrt,
    square,
)

clamp = clip

__all__ = [
    "ValuesIndices", "abs", "add", "amax", "amin", "argmax", "argmin", "argsort", "as_tensor",
    "assign",
    "astype", "broadcast_to", "cat", "chunk", "clamp", "clip", "clone", "compare",
    "concatenate", "cos", "cumsum", "div", "einsum", "elu", "erf", "exp", "expand", "expm1",
    "flatten", "flip", "gather", "getitem", "glu", "index_add", "index_select",
    "leaky_relu", "log", "log1p", "logsigmoid", "logsumexp", "masked_fill", "matmul",
    "matrix_transpose", "max", "maximum", "mean", "min", "minimum", "mul", "narrow", "neg",
    "norm", "outer", "permute", "pow", "prod", "rdiv", "relu", "repeat", "repeat_interleave",
    "reshape", "roll", "rpow", "rsqrt", "rsub", "scatter_add", "setitem", "sigmoid", "sign", "silu",
    "sin", "softplus", "sort", "split", "sqrt", "square", "squeeze", "stack", "std", "sub",
    "sum", "swapaxes", "swapdims", "t", "take_along_dim", "tanh", "tile", "to_device", "topk",
    "transpose", "tril", "triu", "unflatten", "unsqueeze", "var", "where",
]
