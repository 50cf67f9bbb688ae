"""`FusedFunction`: the base of the fused ops, which lets a device swap in its own kernel.

A fused op is one graph node for what would otherwise be a chain of primitive ops, with
a backward worked out by hand. Its array-API code (`array_forward` / `array_backward`)
runs on every backend. A device may also register a faster kernel under the op's name
in `device.kernels` (CuPy's CUDA kernels, NumPy's `minigrad/cpu_kernels.py`; none on
'strict'):

    kernel.forward(fn, *arrays) -> output array(s)
    kernel.backward(fn, *grads) -> input gradient(s)

They stand in for the two methods below and get the Function itself as `fn`: its
parameters (`fn.axis`, `fn.eps`, ...), `fn.save_for_backward`, `fn.saved` and
`fn.needs_input_grad`, exactly what the array-API code uses.
"""

from __future__ import annotations

from minigrad.autograd import Function


class FusedFunction(Function):
    kernel = None

    def forward(self, *arrays):
        self.kernel = self.device.kernels.get(self.name)
        if self.kernel is not None:
            return self.kernel.forward(self, *arrays)
        return self.array_forward(*arrays)

    def backward(self, *grads):
        if self.kernel is not None:
            return self.kernel.backward(self, *grads)
        return self.array_backward(*grads)

    def array_forward(self, *arrays):
        raise NotImplementedError

    def array_backward(self, *grads):
        raise NotImplementedError
