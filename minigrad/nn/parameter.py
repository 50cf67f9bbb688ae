"""`Parameter`: a tensor a `Module` registers as trainable state, and `zero_grads`.

A Parameter is a plain `Tensor` that requires grad and that `Module.__setattr__`
recognises: assigning one to a module attribute registers it, so `parameters()`,
`state_dict()` and optimizers find it. Optimizers and `load_state_dict` update
`p.data` in place, so a Parameter keeps its identity for the whole of training.
"""

from __future__ import annotations

from minigrad import backends
from minigrad.tensor import Tensor


class Parameter(Tensor):
    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None, device=None):
        super().__init__(data, dtype=dtype, device=device, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def zero_grads(parameters, set_to_none: bool = True) -> None:
    """Reset the `.grad` of each tensor: drop it (frees the memory; the next backward
    writes a fresh one) or, with set_to_none=False, replace it by zeros.

    The zeros are new arrays, never a write into the old ones: a gradient array may be
    shared by several tensors (autograd passes an upstream gradient on unchanged) or
    be the array the user passed to `backward(grad)`.
    """
    for p in parameters:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad = Tensor._from_op(p.device.xp.zeros_like(p.grad.data), p.device, None, 0,
                                     False)


def new_parameter(shape: tuple, device=None, dtype="float32") -> Parameter:
    """A zero-filled Parameter, for layers to fill with an initialiser."""
    device = backends.get_device(device)
    return Parameter(device.zeros(tuple(shape), dtype))
