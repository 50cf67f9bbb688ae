"""Neural-network building blocks: `Module` and `Parameter`, the layers a GPT needs,
initialisers (`nn.init`), fused functional ops (`nn.functional`) and training
utilities (`nn.utils.clip_grad_norm_`)."""

from minigrad.nn import functional, init, utils
from minigrad.nn.activation import GELU, ReLU, SiLU, Tanh
from minigrad.nn.container import ModuleDict, ModuleList, Sequential
from minigrad.nn.dropout import Dropout
from minigrad.nn.embedding import Embedding
from minigrad.nn.linear import Linear
from minigrad.nn.module import IncompatibleKeys, Module, RemovableHandle
from minigrad.nn.normalization import LayerNorm, RMSNorm
from minigrad.nn.parameter import Parameter

__all__ = [
    "GELU", "Dropout", "Embedding", "IncompatibleKeys", "LayerNorm", "Linear", "Module",
    "ModuleDict", "ModuleList", "Parameter", "RMSNorm", "ReLU", "RemovableHandle",
    "Sequential", "SiLU", "Tanh", "functional", "init", "utils",
]
