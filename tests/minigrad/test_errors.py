"""Bad input raises an exception that names the op and the shapes, dtypes or values
involved, on every device (never a bare traceback from inside the array library)."""

import numpy as np
import pytest

import minigrad as mg


def t(shape, device, dtype="float32", requires_grad=False):
    return mg.tensor(np.ones(shape, dtype=dtype), device=device, requires_grad=requires_grad)


# (id, call(device), exception type, pattern the message must match)
ERRORS = [
    ("matmul inner dims", lambda d: t((3, 4), d) @ t((5, 6), d),
     ValueError, r"matmul: \(3, 4\) @ \(5, 6\): inner dimensions 4 and 5"),
    ("matmul batch dims", lambda d: t((2, 2, 3), d) @ t((3, 3, 2), d),
     ValueError, r"matmul: \(2, 2, 3\) @ \(3, 3, 2\): batch dims"),
    ("matmul 0-d", lambda d: t((), d) @ t((2, 2), d), ValueError, r"matmul: \(\) @ \(2, 2\)"),
    ("add broadcast", lambda d: t((3, 4), d) + t((5, 6), d),
     ValueError, r"add: inputs \(3, 4\) float32, \(5, 6\) float32"),
    ("mul broadcast", lambda d: t((2,), d) * t((3,), d), ValueError, r"mul: .*\(2,\).*\(3,\)"),
    ("where broadcast", lambda d: mg.where(t((2,), d) > 0, t((3,), d), t((2,), d)),
     ValueError, r"where: .*\(3,\)"),
    ("different devices", lambda d: t((2,), d) + t((2,), "strict" if d == "cpu" else "cpu"),
     RuntimeError, r"add: inputs are on different devices"),
    ("reshape", lambda d: t((2, 3), d).reshape(4, 2),
     ValueError, r"reshape: cannot reshape tensor of shape \(2, 3\) \(6 elements\) to \(4, 2\)"),
    ("reshape two wildcards", lambda d: t((2, 3), d).reshape(-1, -1),
     ValueError, r"reshape: .*\(-1, -1\)"),
    ("permute repeated dim", lambda d: t((2, 3), d).permute(0, 0),
     ValueError, r"permute: dims \(0, 0\) are not a permutation .* shape \(2, 3\)"),
    ("permute dim out of range", lambda d: t((2, 3), d).permute(0, 5),
     ValueError, r"permute: dims \(0, 5\)"),
    ("transpose", lambda d: t((2, 3), d).transpose(0, 2),
     ValueError, r"transpose: axis 2 is out of range for a tensor with 2 dims"),
    ("squeeze", lambda d: t((2, 3), d).squeeze(2),
     ValueError, r"squeeze: axis 2 is out of range for a tensor with 2 dims"),
    ("unsqueeze", lambda d: t((2, 3), d).unsqueeze(5), ValueError, r"unsqueeze: dim 5"),
    ("broadcast_to", lambda d: t((2, 3), d).expand(3, 3),
     ValueError, r"broadcast_to: cannot broadcast shape \(2, 3\) to \(3, 3\)"),
    ("broadcast_to -1 on a new axis", lambda d: t((3,), d).expand(-1, 3),
     ValueError, r"broadcast_to: .*\(-1, 3\)"),
    ("sum axis", lambda d: t((2, 3), d).sum(axis=2),
     ValueError, r"sum: axis 2 is out of range for a tensor with 2 dims"),
    ("mean repeated axis", lambda d: t((2, 3), d).mean(axis=(0, -2)),
     ValueError, r"mean: repeated axis"),
    ("amax of empty", lambda d: t((0, 3), d).amax(dim=0),
     ValueError, r"amax: reduction over an empty dim of shape \(0, 3\)"),
    ("getitem out of bounds", lambda d: t((2, 3), d)[0, 7],
     IndexError, r"getitem: index \[0, 7\] into shape \(2, 3\).*7"),
    ("getitem too many indices", lambda d: t((2, 3), d)[0, 1, 2],
     IndexError, r"getitem: index \[0, 1, 2\] into shape \(2, 3\)"),
    ("getitem index array out of bounds", lambda d: t((2, 3), d)[[0, 5]],
     IndexError, r"getitem: index \[array\(2,\)\] into shape \(2, 3\)"),
    ("getitem float index array", lambda d: t((2, 3), d)[mg.tensor([0.5], device=d)],
     IndexError, r"getitem: index arrays must be integer or boolean, got float32"),
    ("concatenate shapes", lambda d: mg.concatenate([t((2, 3), d), t((2, 2), d)]),
     ValueError, r"concatenate: shapes \(2, 3\), \(2, 2\) differ outside axis 0"),
    ("concatenate 0-d", lambda d: mg.concatenate([t((), d), t((), d)]),
     ValueError, r"concatenate: a 0-d tensor has no axis 0"),
    ("concatenate nothing", lambda d: mg.concatenate([]), ValueError, r"concatenate: needs"),
    ("stack shapes", lambda d: mg.stack([t((2, 3), d), t((3, 2), d)]),
     ValueError, r"stack: all tensors need the same shape, got \(2, 3\), \(3, 2\)"),
    ("split sizes", lambda d: t((2, 3), d).split([1, 1], axis=1),
     ValueError, r"split: sizes \[1, 1\] do not add up to 3.* shape \(2, 3\)"),
    ("split size", lambda d: t((4,), d).split(0), ValueError, r"split: split size must be"),
    ("where condition", lambda d: mg.where(t((2,), d), t((2,), d), t((2,), d)),
     TypeError, r"where: cond must be a boolean Tensor, got float32"),
    ("masked_fill mask", lambda d: t((2,), d).masked_fill(t((2,), d), 0.0),
     TypeError, r"masked_fill: mask must be boolean, got float32"),
    ("masked_fill mask shape", lambda d: t((2,), d).masked_fill(t((3, 2), d) > 0, 0.0),
     ValueError, r"masked_fill: mask of shape \(3, 2\) does not broadcast to .* \(2,\)"),
    ("clip bounds", lambda d: t((2,), d).clip(), ValueError, r"clip: give min, max or both"),
    ("gelu approximation", lambda d: t((2,), d).gelu("fast"),
     ValueError, r"gelu: approximate must be 'none' or 'tanh', got 'fast'"),
    ("requires_grad on integers", lambda d: mg.tensor([1, 2], device=d, requires_grad=True),
     TypeError, r"requires_grad: only floating-point .* int64"),
    ("implicit gradient", lambda d: (t((2, 3), d, requires_grad=True) * 2.0).backward(),
     RuntimeError, r"backward\(\): grad can be implicit only .* shape \(2, 3\)"),
    ("gradient shape", lambda d: (t((2, 3), d, requires_grad=True) * 2.0).backward(np.ones(3)),
     ValueError, r"backward\(\): grad of shape \(3,\) does not match tensor of shape \(2, 3\)"),
    ("backward without graph", lambda d: t((1,), d).backward(),
     RuntimeError, r"backward\(\): tensor does not require grad"),
    ("item", lambda d: t((2, 3), d).item(), ValueError, r"item\(\): tensor of shape \(2, 3\)"),
    ("tensor from a string", lambda d: mg.tensor("abc", device=d),
     TypeError, r"tensor: cannot make a tensor from str"),
    ("unknown device", lambda d: mg.tensor([1.0], device="tpu"),
     ValueError, r"unknown device 'tpu'"),
]


@pytest.mark.parametrize(("call", "error", "pattern"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_bad_input_gets_a_named_error(device, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(device)


def test_errors_name_the_op_not_the_array_library(device):
    with pytest.raises(ValueError) as info:
        t((3, 4), device) + t((5, 6), device)
    assert "array_api_strict" not in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)  # the library's error stays attached
