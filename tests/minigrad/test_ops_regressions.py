"""Regression tests for the bugs of issue 11, each against PyTorch's behaviour: dtype
promotion by NumPy scalars, backward seeds from host data, empty contractions and
normalisations, var with a large correction, the gradient of 0 ** x, and ops that
returned their input instead of a new graph node. (The empty softmax, attention and
norm cases also run in the op table: `op_specs` draws them.)"""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")


def leaf(values, dtype="float64", device="cpu"):
    return mg.tensor(np.asarray(values, dtype=dtype), device=device, requires_grad=True)


# 1. A NumPy scalar keeps a float32 tensor float32, and its leaf's gradient too.
@pytest.mark.parametrize("op", [
    lambda x, c: x * c, lambda x, c: c * x, lambda x, c: x / c, lambda x, c: c / x,
    lambda x, c: x - c, lambda x, c: c - x, lambda x, c: x + c, lambda x, c: x**c,
    lambda x, c: c**x, lambda x, c: x.clip(-c, c), lambda x, c: mg.maximum(x, c),
], ids=["mul", "rmul", "div", "rdiv", "sub", "rsub", "add", "pow", "rpow", "clip", "maximum"])
def test_numpy_scalars_do_not_promote_float32(device, op):
    x = leaf([0.5, 1.0, 2.0], "float32", device)
    y = op(x, np.float64(0.5))
    assert mg.backends.dtype_name(y.dtype) == "float32"
    y.sum().backward()
    assert mg.backends.dtype_name(x.grad.dtype) == "float32"


def test_a_0d_float64_tensor_does_not_promote_float32_but_a_1d_one_does():
    x = leaf([1.0, 2.0], "float32")
    scale = leaf(3.0)  # 0-d float64
    y = x * scale
    assert mg.backends.dtype_name(y.dtype) == "float32"  # as torch: same category, 0-d
    y.sum().backward()
    assert mg.backends.dtype_name(scale.grad.dtype) == "float64"
    np.testing.assert_allclose(scale.grad.numpy(), 3.0)
    assert mg.backends.dtype_name((x * leaf([3.0])).dtype) == "float64"
    want = torch.ones(2, dtype=torch.float32) * torch.tensor(3.0, dtype=torch.float64)
    assert want.dtype == torch.float32


# 2. A seed given as a list or float is taken in the tensor's dtype, not via float32.
def test_backward_seed_from_a_list_keeps_float64_precision(device):
    x = leaf([1.0, 2.0, 3.0], device=device)
    (x * 1.0).backward([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(x.grad.numpy(), np.array([0.1, 0.2, 0.3]))


# 3. A matmul contracting over 0 elements gives zero gradients.
@pytest.mark.parametrize("shapes", [((4, 3, 0), (0, 4)), ((3, 0), (0, 2)), ((0,), (0, 2)),
                                    ((2, 3, 0), (2, 0, 5))])
def test_matmul_backward_with_an_empty_contraction(device, shapes):
    a, b = (leaf(np.zeros(s), device=device) for s in shapes)
    out = a @ b
    out.backward(np.ones(out.shape))
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    ta, tb = (torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes)
    (ta @ tb).backward(torch.ones(out.shape, dtype=torch.float64))
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())


# 4-6. Softmax over no elements, attention without keys, norms over no elements.
EMPTY = {
    "softmax": (lambda f, x: f(x, -1), F.softmax, F.softmax_composite, (2, 0)),
    "log_softmax": (lambda f, x: f(x, 1), F.log_softmax, F.log_softmax_composite, (3, 0, 2)),
    "layer_norm": (lambda f, x: f(x, (0,), mg.ones(0, dtype="float64", device=x.device), None),
                   F.layer_norm, F.layer_norm_composite, (2, 0)),
    "rms_norm": (lambda f, x: f(x, (2, 0)), F.rms_norm, F.rms_norm_composite, (3, 2, 0)),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's mean of an empty slice
@pytest.mark.parametrize("name", EMPTY)
def test_ops_over_an_empty_axis_return_empty_results(device, name):
    call, fused, composite, shape = EMPTY[name]
    for op in (fused, composite):
        x = leaf(np.zeros(shape), device=device)
        out = call(op, x)
        assert out.shape == shape
        out.backward(np.zeros(shape))
        assert x.grad.shape == shape


@pytest.mark.parametrize("op", [F.scaled_dot_product_attention,
                                F.scaled_dot_product_attention_composite])
def test_attention_without_keys_gives_zeros(device, op):
    rng = np.random.default_rng(0)
    q = leaf(rng.standard_normal((2, 3, 4)), device=device)
    k, v = leaf(np.zeros((2, 0, 4)), device=device), leaf(np.zeros((2, 0, 5)), device=device)
    out = op(q, k, v)
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q.numpy()), torch.zeros(2, 0, 4, dtype=torch.float64),
        torch.zeros(2, 0, 5, dtype=torch.float64))
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(q.grad.numpy(), np.zeros(q.shape))
    assert k.grad.shape == (2, 0, 4) and v.grad.shape == (2, 0, 5)


# 7. var / std with correction >= N divide by max(0, N - correction): inf or nan.
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch warns about the degrees of freedom
@pytest.mark.parametrize("values, correction", [([1.0, 2.0], 2), ([1.0, 2.0], 3),
                                                ([1.0, 1.0], 3), ([4.0], 1)])
def test_var_with_correction_at_least_n_is_inf_or_nan(values, correction):
    got = mg.tensor(values, dtype="float64").var(correction=correction).item()
    want = torch.tensor(values, dtype=torch.float64).var(correction=correction).item()
    np.testing.assert_equal(got, want)  # inf == inf, nan == nan; never negative
    got_std = mg.tensor(values, dtype="float64").std(correction=correction).item()
    np.testing.assert_equal(got_std, torch.tensor(values, dtype=torch.float64)
                            .std(correction=correction).item())


# 8. d(0 ** x)/dx is 0 for x >= 0 (and -inf below), as in PyTorch.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 0 ** -1 divides by zero
def test_gradient_of_zero_to_the_x():
    values = [-1.0, 0.0, 0.5, 2.0]
    x = leaf(values)
    (0.0**x).sum().backward()
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    (0.0**tx).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    # the tensor base takes the same rule
    base = leaf([0.0, 0.0, 0.0])
    exponent = leaf([0.0, 0.5, 2.0])
    (base**exponent).sum().backward()
    tb = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    te = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    (tb**te).sum().backward()
    np.testing.assert_array_equal(exponent.grad.numpy(), te.grad.numpy())


# 9. An op that changes nothing still makes a new node: hooks see only its own uses.
@pytest.mark.parametrize("noop", [
    lambda h: h.reshape(3), lambda h: h.view(3), lambda h: h.expand(3), lambda h: h.squeeze(),
    lambda h: h.flatten(), lambda h: h.permute(0), lambda h: h.clone(),
], ids=["reshape", "view", "expand", "squeeze", "flatten", "permute", "clone"])
def test_ops_that_change_nothing_return_a_new_node(noop):
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2
    y = noop(h)
    assert y is not h
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    (h.sum() + (y * 3).sum()).backward()
    np.testing.assert_array_equal(y.grad.numpy(), [3.0, 3.0, 3.0])  # torch: 3, not 4
    np.testing.assert_array_equal(seen[0], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0, 8.0])


# prod with zeros: the gradient at a lone zero is the product of the others, else 0.
@pytest.mark.parametrize("values", [[[2.0, 0.0, 3.0], [1.0, 4.0, 0.5]],
                                    [[0.0, 0.0, 3.0], [0.0, 1.0, 2.0]]])
def test_prod_gradient_with_zeros(device, values):
    x = leaf(values, device=device)
    x.prod(dim=1).sum().backward()
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    tx.prod(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# Float functions of integer and bool tensors give float32, PyTorch's default dtype
# (NumPy gave float64, and float16 for bool).
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), rsqrt(0): -inf, inf
@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "rsqrt", "log1p", "expm1", "sin",
                                  "cos", "tanh", "sigmoid", "erf", "logsumexp"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_float_functions_of_integer_tensors_are_float32(device, name, dtype):
    values = np.array([[1, 2, 0], [3, 1, 1]]).astype(dtype)
    got = getattr(mg.tensor(values, device=device), name)(
        *((1,) if name == "logsumexp" else ()))
    want = getattr(torch.from_numpy(values), name)(*((1,) if name == "logsumexp" else ()))
    assert mg.backends.dtype_name(got.dtype) == "float32"
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


# mean, var and std need floating-point input, as in PyTorch (they returned float64).
@pytest.mark.parametrize("op", [lambda x: x.mean(), lambda x: x.var(0), lambda x: x.std(),
                                lambda x: x.mean(dim=0, keepdim=True)],
                         ids=["mean", "var", "std", "mean_dim"])
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_mean_var_std_of_integer_tensors_raise(op, dtype):
    x = mg.tensor(np.array([1, 0, 1]).astype(dtype))
    with pytest.raises(TypeError, match="floating-point"):
        op(x)
    with pytest.raises(RuntimeError):
        op(torch.tensor(np.array([1, 0, 1]).astype(dtype)))


# An int beside index arrays is a basic index (PyTorch), not broadcast with them (NumPy).
@pytest.mark.parametrize("key", [
    (1, slice(None), [2, 0, 2]), (slice(None), 0, slice(None), [1, 1]),
    (-1, Ellipsis, [0, 2]), ([1, 0], slice(None), 1), (0, [True, False, True])])
def test_int_beside_index_arrays_selects_first(device, key):
    values = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3)
    if len(key) == 4:
        values = values.reshape(2, 3, 3, 1).repeat(2, axis=-1)
    x = leaf(values, device=device)
    mkey = tuple(mg.tensor(np.array(k), device=device) if isinstance(k, list) else k
                 for k in key)
    tkey = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
    tx = torch.tensor(values, requires_grad=True)
    out, want = x[mkey], tx[tkey]
    assert out.shape == tuple(want.shape)
    np.testing.assert_array_equal(out.numpy(), want.detach().numpy())
    seed = np.arange(want.numel(), dtype=np.float64).reshape(tuple(want.shape))
    out.backward(seed)
    want.backward(torch.tensor(seed))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_setitem_with_an_int_beside_index_arrays():
    values = np.arange(8.0).reshape(2, 2, 2)
    v = np.arange(6.0).reshape(2, 3) + 10
    x, tx = leaf(values), torch.tensor(values, requires_grad=True)
    value, tvalue = leaf(v), torch.tensor(v, requires_grad=True)
    y, ty = x * 1.0, tx * 1.0
    y[1, :, mg.tensor(np.array([1, 0, 1]))] = value
    ty[1, :, torch.tensor([1, 0, 1])] = tvalue
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    seed = np.arange(8.0).reshape(2, 2, 2)
    y.backward(seed)
    ty.backward(torch.tensor(seed))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(value.grad.numpy(), tvalue.grad.numpy())
    with mg.no_grad():  # the in-place path without a graph
        z = mg.tensor(values.copy())
        z[1, :, mg.tensor(np.array([1, 0, 1]))] = mg.tensor(v)
    np.testing.assert_array_equal(z.numpy(), ty.detach().numpy())


# clamp with tensor bounds (broadcast): values and the gradients of all three.
def test_clamp_with_tensor_bounds(device):
    rng = np.random.default_rng(3)
    x, low = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)) - 1
    high = rng.standard_normal(5) + 1
    ours, theirs = [leaf(a, device=device) for a in (x, low, high)], [
        torch.tensor(a, requires_grad=True) for a in (x, low, high)]
    seed = rng.standard_normal((4, 5))
    ours[0].clamp(ours[1], ours[2]).backward(seed)
    theirs[0].clamp(theirs[1], theirs[2]).backward(torch.tensor(seed))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
    got = mg.clamp(mg.tensor(x, device=device), max=mg.tensor(high, device=device))
    np.testing.assert_array_equal(got.numpy(), torch.clamp(torch.tensor(x),
                                                           max=torch.tensor(high)).numpy())


# A module reached by two attributes appears under both names in state_dict.
def test_state_dict_lists_a_shared_module_under_each_name():
    class Tied(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = mg.nn.Linear(2, 2)
            self.b = self.a

    class TorchTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = self.a

    model = Tied()
    assert list(model.state_dict()) == list(TorchTied().state_dict())
    assert [n for n, _ in model.named_parameters()] == ["a.weight", "a.bias"]
    model.load_state_dict(model.state_dict())
