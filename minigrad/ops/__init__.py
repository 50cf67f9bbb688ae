"""The differentiable ops, one module per family; each op is a `Function` subclass with
a hand-written backward, plus a functional form re-exported here."""

from minigrad.ops._util import as_tensor
from minigrad.ops.activations import erf, relu, sigmoid, silu, tanh
from minigrad.ops.arithmetic import add, div, mul, neg, pow, rdiv, rpow, rsub, sub
from minigrad.ops.compare import compare
from minigrad.ops.conversion import astype, to_device
from minigrad.ops.indexing import getitem, masked_fill, where
from minigrad.ops.join import cat, concatenate, split, stack
from minigrad.ops.matmul import matmul
from minigrad.ops.reductions import argmax, logsumexp, max, mean, min, sum, var
from minigrad.ops.shape import (
    broadcast_to,
    expand,
    permute,
    reshape,
    squeeze,
    swapaxes,
    transpose,
    unsqueeze,
)
from minigrad.ops.triangular import tril, triu
from minigrad.ops.unary import abs, clip, cos, exp, log, maximum, minimum, sin, sqrt

__all__ = [
    "abs", "add", "argmax", "as_tensor", "astype", "broadcast_to", "cat", "clip", "compare",
    "concatenate", "cos", "div", "erf", "exp", "expand", "getitem", "log", "logsumexp",
    "masked_fill", "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg",
    "permute", "pow", "rdiv", "relu", "reshape", "rpow", "rsub", "sigmoid", "silu", "sin",
    "split", "sqrt", "squeeze", "stack", "sub", "sum", "swapaxes", "tanh", "to_device",
    "transpose", "tril", "triu", "unsqueeze", "var", "where",
]
