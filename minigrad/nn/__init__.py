"""Neural-network building blocks: `Module` and `Parameter`, the layers a GPT needs,
initialisers (`nn.init`), fused functional ops (`nn.functional`), training
utilities (`nn.utils.clip_grad_norm_`) and LoRA adapters (`nn.lora`, `nn.LoRALinear`)."""

from minigrad.nn import functional, init, lora, utils
from minigrad.nn.activation import GELU, Identity, ReLU, SiLU, Softmax, Tanh
from minigrad.nn.container import ModuleDict, ModuleList, Sequential
from minigrad.nn.dropout import Dropout
from minigrad.nn.embedding import Embedding
from minigrad.nn.linear import Linear
from minigrad.nn.lora import LoRALinear
from minigrad.nn.module import IncompatibleKeys, Module, RemovableHandle
from minigrad.nn.normalization import LayerNorm, RMSNorm
from minigrad.nn.parameter import Parameter

__all__ = [
    "GELU", "Dropout", "Embedding", "Identity", "IncompatibleKeys", "LayerNorm", "Linear",
    "LoRALinear", "Module", "ModuleDict", "ModuleList", "Parameter", "RMSNorm", "ReLU",
    "RemovableHandle", "Sequential", "SiLU", "Softmax", "Tanh", "functional", "init", "lora",
    "utils",
]
