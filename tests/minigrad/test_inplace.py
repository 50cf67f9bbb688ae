"""In-place ops the way PyTorch teaches them: add_, mul_, zero_, fill_, copy_, clamp_ and
__setitem__ write a tensor's memory and bump its version counter; a leaf that requires
grad refuses them while grad is recorded; a node whose saved tensor was modified raises
at backward, naming the op and the versions."""

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")

VALUES = [1.0, -2.0, 3.0]


def leaves(values=VALUES):
    return (mg.tensor(values, dtype="float64", requires_grad=True),
            torch.tensor(values, dtype=torch.float64, requires_grad=True))


# (id, the same steps for minigrad and torch on a non-leaf h = 2 x)
STEPS = {
    "add_": lambda h, other: h.add_(other, alpha=2),
    "sub_": lambda h, other: h.sub_(1.5),
    "mul_ scalar": lambda h, other: h.mul_(3.0),
    "mul_ tensor": lambda h, other: h.mul_(other),
    "div_": lambda h, other: h.div_(other),
    "clamp_": lambda h, other: h.clamp_(-1.0, 4.0),
    "fill_": lambda h, other: h.fill_(0.5),
    "zero_": lambda h, other: h.zero_(),
    "copy_": lambda h, other: h.copy_(other),
    "setitem basic": lambda h, other: h.__setitem__(slice(1, None), other[:2] * 2),
    "setitem int array": lambda h, other: h.__setitem__([0, 2], other[1]),
    "setitem mask": lambda h, other: h.__setitem__(h > 0, 7.0),
    "two in a row": lambda h, other: h.mul_(other).add_(1.0),
}


@pytest.mark.parametrize("step", STEPS.values(), ids=STEPS.keys())
def test_in_place_ops_on_non_leaves_match_torch(step):
    (x, tx), (w, tw) = leaves(), leaves([0.5, 2.0, -1.0])
    h, th = x * 2, tx * 2
    out, _ = step(h, w), step(th, tw)
    assert out is h or out is None  # __setitem__ returns nothing
    np.testing.assert_allclose(h.numpy(), th.detach().numpy())
    (h * h).sum().backward()
    (th * th).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    w_grad = w.grad.numpy() if w.grad is not None else np.zeros(3)
    np.testing.assert_allclose(w_grad, tw.grad.numpy() if tw.grad is not None else 0.0)
    assert h.version == th._version


def test_a_leaf_that_requires_grad_refuses_in_place_ops_outside_no_grad():
    x, _ = leaves()
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad cannot be "
                                           "modified in place"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="setitem: a leaf tensor"):
        x[0] = 1.0
    with mg.no_grad():  # an optimizer step
        x.sub_(x * 0.5)
        x[0] = 9.0
    np.testing.assert_array_equal(x.numpy(), [9.0, -1.0, 1.5])
    assert x.version == 2 and x.is_leaf and x.requires_grad


def test_modifying_a_tensor_an_op_saved_raises_at_backward_with_the_versions():
    x, tx = leaves()
    w, tw = leaves([0.5, 2.0, -1.0])
    y, ty = x * w, tx * tw  # mul saves w
    with mg.no_grad():
        w.mul_(2.0)
    with torch.no_grad():
        tw.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation: op mul saved "
                                           r"a tensor of shape \(3,\) at version 0, now at "
                                           r"version 1"):
        y.sum().backward()


def test_modifying_an_output_its_op_saved_raises_too():
    x, tx = leaves()
    y, ty = x.exp(), tx.exp()  # exp saves its output
    y.add_(1.0), ty.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    with pytest.raises(RuntimeError, match=r"op exp saved .* at version 0, now at version 1"):
        y.sum().backward()


def test_ops_that_save_nothing_allow_modification_afterwards():
    x, _ = leaves()
    y = x * 2.0  # mul by a scalar saves nothing
    z = y + 1.0
    with mg.no_grad():
        x.mul_(10.0)
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_in_place_on_a_detached_view_bumps_the_shared_counter():
    x, _ = leaves()
    y = x.exp()
    y.detach().zero_()  # the same memory
    assert y.version == 1
    with pytest.raises(RuntimeError, match="op exp saved"):
        y.sum().backward()


def test_in_place_ops_check_shape_and_dtype():
    x = mg.zeros(3)
    with pytest.raises(RuntimeError, match=r"add_: the result of shape \(2, 3\) does not fit"):
        x.add_(mg.ones(2, 3))
    ints = mg.arange(3)
    with pytest.raises(TypeError, match="mul_: a float(32|64) result cannot be written into a "
                                        "int64"):
        ints.mul_(mg.ones(3))
    ints.add_(2)
    np.testing.assert_array_equal(ints.numpy(), [2, 3, 4])
