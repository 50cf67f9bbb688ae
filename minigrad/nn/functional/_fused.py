"""`FusedFunction`: the base of the fused ops, the one seam where a device's kernel
replaces an op's array-API code.

A fused op is one graph node for what would otherwise be a chain of primitive ops, with
a backward worked out by hand. Its array-API code (`array_forward` / `array_backward`)
runs on every backend. Each fused op declares its `name` ("layer_norm", "gelu", ...);
a device may register a kernel under that name in `device.fused_ops` (NumPy's in
`minigrad/backends/numpy_kernels.py`, CuPy's in `minigrad/backends/cuda/`; none on
'strict') with one protocol:

    kernel.supports(fn, *arrays) -> bool   (e.g. attention without a mask or dropout)
    kernel.forward(fn, *arrays)  -> output array(s)
    kernel.backward(fn, *grads)  -> input gradient(s)

They get the Function itself as `fn`: its parameters (`fn.eps`, `fn.causal`, ...),
`fn.save_for_backward`, `fn.saved` and `fn.needs_input_grad`, exactly what the
array-API code uses. `fn.kernel` is the kernel the forward ran (None: the array-API
code), so the backward takes the same path.
"""

from __future__ import annotations

from minigrad.autograd import Function


class FusedFunction(Function):
    kernel = None

    def __init_subclass__(cls, **kwargs):
        # Declared, not derived from the class name: renaming a class must not detach
        # the kernels registered under its name.
        if "name" not in cls.__dict__:
            raise TypeError(f"fused op {cls.__name__} must declare its name "
                            "(name = '...', the key of its kernels in Device.fused_ops)")
        super().__init_subclass__(**kwargs)

    def forward(self, *arrays):
        kernel = self.device.fused_ops.get(self.name)
        if kernel is not None and kernel.supports(self, *arrays):
            self.kernel = kernel
            return kernel.forward(self, *arrays)
        return self.array_forward(*arrays)

    def backward(self, *grads):
        if self.kernel is not None:
            return self.kernel.backward(self, *grads)
        return self.array_backward(*grads)

    def array_forward(self, *arrays):
        raise NotImplementedError

    def array_backward(self, *grads):
        raise NotImplementedError
