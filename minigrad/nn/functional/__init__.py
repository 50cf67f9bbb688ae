"""Fused transformer ops (`import minigrad.nn.functional as F`).

One module per op. Each holds the fused `Function` (one graph node, a backward written
out by hand, stable and memory-lean), the public function, and a `<name>_composite`
twin built from primitive minigrad ops: the version to read first, and the reference
the tests hold the fused one to. A device may replace a fused op's array code with its
own kernel, found by the op's declared name (see `minigrad.nn.functional._fused`).
"""

from minigrad.nn.functional.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_composite,
)
from minigrad.nn.functional.cross_entropy import cross_entropy, cross_entropy_composite
from minigrad.nn.functional.dropout import dropout, dropout_composite
from minigrad.nn.functional.embedding import embedding, embedding_composite
from minigrad.nn.functional.gelu import gelu, gelu_composite
from minigrad.nn.functional.layer_norm import layer_norm, layer_norm_composite
from minigrad.nn.functional.linear import linear, linear_composite
from minigrad.nn.functional.log_softmax import log_softmax, log_softmax_composite
from minigrad.nn.functional.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    kl_div,
    mse_loss,
    nll_loss,
)
from minigrad.nn.functional.normalize import normalize
from minigrad.nn.functional.pad import pad
from minigrad.nn.functional.rms_norm import rms_norm, rms_norm_composite
from minigrad.nn.functional.softmax import softmax, softmax_composite
from minigrad.ops.activations import (
    elu,
    glu,
    leaky_relu,
    logsigmoid,
    relu,
    sigmoid,
    silu,
    softplus,
    tanh,
)
from minigrad.ops.indexing import one_hot

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "elu", "glu", "kl_div",
    "leaky_relu", "logsigmoid", "mse_loss", "nll_loss", "normalize", "one_hot", "pad",
    "softplus",
    "cross_entropy", "cross_entropy_composite", "dropout", "dropout_composite", "embedding",
    "embedding_composite", "gelu", "gelu_composite", "layer_norm", "layer_norm_composite",
    "linear", "linear_composite", "log_softmax", "log_softmax_composite", "relu", "rms_norm",
    "rms_norm_composite", "scaled_dot_product_attention",
    "scaled_dot_product_attention_composite", "sigmoid", "silu", "softmax",
    "softmax_composite", "tanh",
]
