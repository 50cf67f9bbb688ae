"""Graph mechanics: how backward() walks, sums, frees and seeds the graph, grad mode, and
the Tensor methods around autograd (detach, requires_grad_, item, numpy). Values are
checked against hand-derived derivatives."""

import threading

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function


def leaf(values, device="cpu", dtype="float64"):
    return mg.tensor(np.asarray(values, dtype=dtype), device=device, requires_grad=True)


# -- how gradients add up ----------------------------------------------------------------
def test_diamond_sums_both_paths(device):
    # y = 3x feeds two branches: z = y^2 + exp(y); dz/dx = 3 (2y + e^y)
    x = leaf([0.1, -0.2, 0.3], device)
    y = x * 3.0
    (y * y + y.exp()).sum().backward()
    y_np = 3 * x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), 3 * (2 * y_np + np.exp(y_np)), rtol=1e-12)


def test_tensor_used_twice_in_one_op(device):
    x = leaf([1.0, -2.0, 3.0], device)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])
    x.grad = None
    (x / x).sum().backward()  # constant 1: the two uses cancel
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 0.0], atol=1e-15)


def test_leaf_used_by_many_ops_and_an_intermediate_used_twice(device):
    # f = sum(a * b + a * c) with b = a + 1, c = b * 2: df/da = b + a + 2c + 2a... by hand:
    # f = a(a + 1) + a * 2(a + 1) = 3a^2 + 3a  ->  df/da = 6a + 3
    a = leaf([0.5, 2.0], device)
    b = a + 1.0
    c = b * 2.0
    (a * b + a * c).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 6 * a.numpy() + 3)


def test_grad_accumulates_across_backward_calls_until_reset(device):
    x = leaf([1.0, 2.0], device)
    for _ in range(3):
        (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_only_inputs_that_require_grad_get_one(device):
    x = leaf([1.0, 2.0], device)
    c = mg.tensor([3.0, 4.0], dtype="float64", device=device)
    out = x * c
    assert out.requires_grad and not c.requires_grad
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    assert c.grad is None


def test_unused_output_of_a_multi_output_op_counts_as_zero(device):
    x = leaf([1.0, 2.0, 3.0, 4.0], device)
    first, _ = x.split(2)
    (first * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0, 0.0, 0.0])


def test_backward_from_an_intermediate_reaches_only_its_leaves(device):
    x, w = leaf([1.0, 2.0], device), leaf([3.0, 4.0], device)
    h = x * 2.0
    (h * w).sum()  # a larger graph exists around h
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    assert w.grad is None


def test_deep_chain_of_100000_ops_needs_no_recursion():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(y.numpy(), [100_001.0, 100_002.0])


# -- seeding: the upstream gradient ------------------------------------------------------
@pytest.mark.parametrize("as_type", [mg.Tensor, np.array, list])
def test_non_scalar_backward_takes_an_explicit_gradient(device, as_type):
    x = leaf([[1.0, 2.0], [3.0, 4.0]], device)
    y = x * x
    upstream = [[1.0, 0.0], [0.5, -1.0]]
    seed = mg.tensor(upstream, dtype="float64", device=device) if as_type is mg.Tensor else (
        as_type(upstream))
    y.backward(seed)
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() * np.array(upstream))


def test_one_element_output_of_any_rank_has_an_implicit_gradient(device):
    x = leaf([[2.0]], device)
    (x * 3.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[3.0]])


def test_explicit_gradient_in_another_dtype_keeps_the_leaf_dtype(device):
    x = leaf([1.0, 2.0], device, dtype="float32")
    (x * 2.0).backward(mg.tensor(np.ones(2), device=device))  # a float64 upstream
    assert mg.backends.dtype_name(x.grad.dtype) == "float32"


def test_backward_on_a_leaf_seeds_its_own_grad(device):
    x = leaf([1.0, 2.0], device)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


# -- freeing the graph, retain_graph -------------------------------------------------------
def test_graph_is_freed_after_backward(device):
    x = leaf([1.0, 2.0], device)
    y = (x.exp() * x).sum()
    y.backward()
    assert y._ctx.saved is None
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward(device):
    x = leaf([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * x.numpy())


def test_retain_graph_through_a_shared_subgraph(device):
    x = leaf([0.5, 1.5], device)
    shared = x.tanh()
    first, second = (shared * 2.0).sum(), (shared * 3.0).sum()
    first.backward(retain_graph=True)
    second.backward()
    np.testing.assert_allclose(x.grad.numpy(), 5 * (1 - np.tanh(x.numpy()) ** 2), rtol=1e-12)


# -- grad mode -----------------------------------------------------------------------------
def test_no_grad_context_records_no_graph(device):
    x = leaf([1.0], device)
    with mg.no_grad():
        y = x * 2.0
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0])
    with mg.no_grad(), mg.enable_grad():
        y = x * 2.0
    assert y.requires_grad


@pytest.mark.parametrize("decorator", [mg.no_grad(), mg.no_grad], ids=["called", "bare"])
def test_no_grad_as_decorator_restores_the_mode_after_recursion(decorator):
    x = leaf([1.0])

    @decorator
    def twice(t, depth):
        return t * 2.0 if depth == 0 else twice(t, depth - 1)

    assert not twice(x, 3).requires_grad
    assert mg.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), mg.no_grad():
        1 / 0
    assert mg.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with mg.no_grad():
        worker = threading.Thread(target=lambda: seen.append(mg.is_grad_enabled()))
        worker.start()
        worker.join()
    assert seen == [True]


# -- Tensor methods around autograd --------------------------------------------------------
def test_detach_shares_data_but_cuts_the_graph():
    x = leaf([1.0, 2.0])
    d = (x * 2.0).detach()
    assert not d.requires_grad and d.is_leaf
    base = x.detach()
    assert np.shares_memory(base.data, x.data)
    (d * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])  # d is a constant


def test_requires_grad_():
    x = mg.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    with pytest.raises(TypeError, match="requires_grad.*int64"):
        mg.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="non-leaf"):
        (leaf([1.0]) * 2.0).requires_grad_(False)


def test_item_and_numpy(device):
    x = mg.tensor([[2.5]], device=device)
    assert x.item() == 2.5 and isinstance(x.item(), float)
    assert mg.tensor(3, device=device).item() == 3
    np.testing.assert_array_equal(mg.tensor([1.0, 2.0], device=device).numpy(), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"item\(\).*\(2,\) has 2 elements"):
        mg.tensor([1.0, 2.0], device=device).item()


def test_hooks_see_and_may_replace_gradients(device):
    x = leaf([1.0, 2.0], device)
    h = x * 3.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy()))
    handle = x.register_hook(lambda g: g * 10.0)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


# -- gradients keep each input's dtype ----------------------------------------------------
MIXED = {
    "add": lambda a, b: a + b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b, "maximum": mg.maximum, "where": lambda a, b: mg.where(a > 1, a, b),
    "concatenate": lambda a, b: mg.concatenate([a, b]), "stack": lambda a, b: mg.stack([a, b]),
}


@pytest.mark.parametrize("op", MIXED.values(), ids=MIXED.keys())
def test_mixed_precision_inputs_get_gradients_in_their_own_dtype(device, op):
    a = leaf([[1.5, 2.0], [0.5, 3.0]], device, "float32")
    b = leaf([[0.5, 1.0], [2.0, 1.5]], device, "float64")
    out = op(a, b)
    assert mg.backends.dtype_name(out.dtype) == "float64"
    out.backward(np.ones(out.shape))
    assert mg.backends.dtype_name(a.grad.dtype) == "float32"
    assert mg.backends.dtype_name(b.grad.dtype) == "float64"


@pytest.mark.parametrize("op", [lambda a, b: a @ b, lambda a, b: b @ a], ids=["ab", "ba"])
def test_matmul_of_mixed_float_dtypes_raises_as_in_pytorch(device, op):
    a = leaf([[1.5, 2.0], [0.5, 3.0]], device, "float32")
    b = leaf([[0.5, 1.0], [2.0, 1.5]], device, "float64")
    with pytest.raises(TypeError, match=r"matmul: .*float(32|64) @ .*float(64|32).*same dtype"):
        op(a, b)


def test_astype_and_device_moves_are_differentiable():
    x = leaf([1.0, 2.0], dtype="float32")
    y = x.astype("float64").to("strict") * 3.0
    y.sum().backward()
    assert x.grad.device == "cpu" and mg.backends.dtype_name(x.grad.dtype) == "float32"
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


# -- a user-defined op ---------------------------------------------------------------------
class Cube(Function):
    """x^3 with its hand-written backward 3x^2, as a user would write one."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x * x

    def backward(self, g):
        (x,) = self.saved
        return g * 3 * x * x


def test_a_user_defined_function(device):
    x = leaf([1.0, -2.0], device)
    out = Cube()(x)
    assert repr(out).endswith("grad_fn=cube)")
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])
    assert mg.gradcheck(lambda t: Cube()(t), leaf([0.3, -1.2], device))
