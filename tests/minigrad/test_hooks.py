"""Gradient hooks (`Tensor.register_hook`), `retain_grad`, and module forward hooks.

Hooks see the gradient of their tensor (summed over all its uses), can replace it, and
go away when their handle is removed; `retain_grad` keeps a non-leaf's gradient, as
the hooks left it. Values are checked against hand-derived gradients and against torch.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn


def values(t) -> np.ndarray:
    return t.numpy()


# -- hooks on leaves ------------------------------------------------------------------
def test_leaf_hook_sees_the_gradient(device):
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    seen = []
    x.register_hook(lambda g: seen.append(values(g)))
    (x * x).sum().backward()  # d/dx sum(x^2) = 2x
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [2.0, 4.0, 6.0])
    np.testing.assert_allclose(values(x.grad), [2.0, 4.0, 6.0])


def test_leaf_hook_replaces_the_gradient(device):
    x = mg.tensor([1.0, -2.0], requires_grad=True, device=device)
    x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(values(x.grad), [30.0, 30.0])


def test_leaf_used_twice_calls_its_hook_once_with_the_summed_gradient(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    seen = []
    x.register_hook(lambda g: seen.append(values(g)))
    (x * 2.0 + x * 3.0).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 5.0])


def test_leaf_hook_that_clips_acts_on_the_total_gradient():
    # Clipping each use separately would give 1 + 1 = 2; the total 5 clips to 1.
    x = mg.tensor([1.0], requires_grad=True)
    x.register_hook(lambda g: g.clip(max=1.0))
    (x * 2.0 + x * 3.0).sum().backward()
    np.testing.assert_allclose(values(x.grad), [1.0])


def test_removed_hook_is_not_called():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    x.sum().backward()
    handle.remove()
    handle.remove()  # removing twice is harmless
    x.sum().backward()
    assert calls == [1]
    np.testing.assert_allclose(values(x.grad), [2.0, 2.0])  # accumulated over both passes


def test_hooks_run_in_order_each_seeing_the_previous_replacement():
    x = mg.tensor([1.0], requires_grad=True)
    seen = []

    def add_one(g):
        seen.append(values(g)[0])
        return g + 1.0

    def double(g):
        seen.append(values(g)[0])
        return g * 2.0

    x.register_hook(add_one)
    x.register_hook(double)
    (x * 3.0).sum().backward()
    assert seen == [3.0, 4.0]
    np.testing.assert_allclose(values(x.grad), [8.0])


def test_register_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="register_hook"):
        mg.tensor([1.0]).register_hook(lambda g: g)


def test_retain_grad_on_a_tensor_without_grad_raises():
    # As in PyTorch; it used to be a silent no-op.
    with pytest.raises(RuntimeError, match="retain_grad"):
        mg.tensor([1.0]).retain_grad()


# -- hooks on non-leaf tensors --------------------------------------------------------
def test_non_leaf_hook_changes_what_flows_to_the_inputs(device):
    x = mg.tensor([1.0, 2.0], requires_grad=True, device=device)
    h = x * 3.0
    seen = []

    def halve(g):
        seen.append(values(g))
        return g * 0.5

    h.register_hook(halve)
    (h * h).sum().backward()  # dL/dh = 2h = [6, 12]; halved: [3, 6]; dh/dx = 3
    np.testing.assert_allclose(seen[0], [6.0, 12.0])
    np.testing.assert_allclose(values(x.grad), [9.0, 18.0])
    assert h.grad is None  # not retained


def test_hook_on_one_output_of_a_multi_output_op():
    x = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    a, b = x.split(2)
    b.register_hook(lambda g: g * 0.0)
    (a * 2.0 + b * 5.0).sum().backward()
    np.testing.assert_allclose(values(x.grad), [2.0, 2.0, 0.0, 0.0])


# -- retain_grad ------------------------------------------------------------------------
def test_retain_grad_keeps_a_non_leaf_gradient(device):
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    h = x.tanh()
    h.retain_grad()
    other = x * 2.0  # not retained
    (h * 3.0 + other).sum().backward()
    np.testing.assert_allclose(values(h.grad), np.full((2, 2), 3.0))
    assert other.grad is None
    expected = 3.0 * (1 - np.tanh(values(x)) ** 2) + 2.0
    np.testing.assert_allclose(values(x.grad), expected, rtol=1e-6)


def test_retain_grad_on_a_leaf_changes_nothing():
    x = mg.tensor([1.0], requires_grad=True)
    x.retain_grad()
    (x * 4.0).sum().backward()
    np.testing.assert_allclose(values(x.grad), [4.0])


def test_retain_grad_twice_does_not_double_the_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    h.retain_grad()
    h.retain_grad()
    (h * 3.0).sum().backward()
    np.testing.assert_allclose(values(h.grad), [3.0, 3.0])


@pytest.mark.parametrize("hook_first", [True, False])
def test_retained_gradient_is_the_one_after_every_hook(hook_first):
    # As in torch: .grad of a retained tensor shows what flows on, whatever the order of
    # retain_grad() and register_hook().
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    if hook_first:
        h.register_hook(lambda g: g * 10.0)
        h.retain_grad()
    else:
        h.retain_grad()
        h.register_hook(lambda g: g * 10.0)
    (h * 3.0).sum().backward()
    np.testing.assert_allclose(values(h.grad), [30.0, 30.0])
    np.testing.assert_allclose(values(x.grad), [30.0, 30.0])


def test_retained_gradient_accumulates_over_backward_passes():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    h.retain_grad()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(values(h.grad), 2 * 2 * values(h))


def test_retain_grad_of_a_tensor_used_twice_holds_the_sum():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    h.retain_grad()
    (h * 2.0 + h.sum()).sum().backward()  # each element: 2 + 2 (sum feeds 2 outputs)
    np.testing.assert_allclose(values(h.grad), [4.0, 4.0])


@given(scale=st.floats(-3.0, 3.0, allow_nan=False, width=32),
       data=st.lists(st.floats(-2.0, 2.0, allow_nan=False, width=32), min_size=1, max_size=5))
def test_hooks_and_retain_grad_match_torch(scale, data, torch):
    x = mg.tensor(data, requires_grad=True)
    h = (x * x).tanh()
    h.retain_grad()
    h.register_hook(lambda g: g * scale)
    (h * x).sum().backward()

    tx = torch.tensor(data, requires_grad=True)
    th = (tx * tx).tanh()
    th.retain_grad()
    th.register_hook(lambda g: g * scale)
    (th * tx).sum().backward()
    np.testing.assert_allclose(values(h.grad), th.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values(x.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# -- module forward hooks ----------------------------------------------------------------
class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(mg.tensor([2.0]))

    def forward(self, x):
        return x * self.weight


def test_forward_hooks_see_inputs_and_output_and_can_replace_them():
    module = Scale()
    calls = []
    pre = module.register_forward_pre_hook(
        lambda m, inputs: calls.append(("pre", m, values(inputs[0]))) or (inputs[0] + 1.0,))
    post = module.register_forward_hook(
        lambda m, inputs, out: calls.append(("post", values(inputs[0]), values(out))) or out * 10)
    out = module(mg.tensor([1.0]))
    assert calls[0][0] == "pre" and calls[0][1] is module
    np.testing.assert_allclose(calls[0][2], [1.0])
    np.testing.assert_allclose(calls[1][1], [2.0])  # forward got the replaced input
    np.testing.assert_allclose(calls[1][2], [4.0])
    np.testing.assert_allclose(values(out), [40.0])
    out.sum().backward()  # the replacements stay differentiable: d(10 (x+1) w)/dw = 20
    np.testing.assert_allclose(values(module.weight.grad), [20.0])
    pre.remove()
    post.remove()
    np.testing.assert_allclose(values(module(mg.tensor([1.0]))), [2.0])
    assert len(calls) == 2


def test_forward_hook_handle_as_context_manager():
    module = Scale()
    seen = []
    with module.register_forward_hook(lambda m, inputs, out: seen.append(values(out))):
        module(mg.tensor([3.0]))
    module(mg.tensor([3.0]))
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [6.0])
