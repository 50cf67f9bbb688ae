"""minigrad: a reverse-mode autograd engine on NumPy, written to be read.

A `Tensor` wraps an array on a device (NumPy on the CPU, CuPy on a GPU); every op is a
`Function` with a hand-written backward. See README.md for a tour.
"""

from minigrad import io, nn, ops, optim
from minigrad.autograd import Function, enable_grad, is_grad_enabled, no_grad
from minigrad.backends import Device, get_device
from minigrad.creation import (
    arange,
    empty,
    eye,
    full,
    full_like,
    linspace,
    multinomial,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from minigrad.instruments import viz  # `minigrad.viz.draw`, `minigrad.viz.record_modules`
from minigrad.instruments.anomaly import detect_anomaly
from minigrad.instruments.profiler import profile
from minigrad.ops import *  # noqa: F403  (the functional forms of all ops)
from minigrad.random import Generator, default_generator, manual_seed
from minigrad.tensor import Tensor
from minigrad.testing.gradcheck import GradcheckError, gradcheck

float16, bfloat16, float32, float64 = "float16", "bfloat16", "float32", "float64"
int8, int16, int32, int64, uint8, bool_ = "int8", "int16", "int32", "int64", "uint8", "bool"

device = get_device

__version__ = "0.1.0"


__all__ = [
    "io", "nn", "optim",
    "Device", "Function", "Generator", "GradcheckError", "Tensor", "arange", "empty", "eye",
    "full_like", "linspace", "multinomial",
    "default_generator", "detect_anomaly", "device", "enable_grad", "full", "get_device",
    "gradcheck", "is_grad_enabled", "manual_seed", "no_grad", "ones", "profile", "viz",
    "ones_like", "rand", "randint", "randn", "tensor", "zeros", "zeros_like", *ops.__all__,
]
