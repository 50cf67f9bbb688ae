"""Op-specific behaviour of minigrad.nn.functional: numerical stability, options, errors,
what the fused ops save, and the device-kernel hook. (Values and gradients against the
composite twins, finite differences and PyTorch: test_functional_ops.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad.nn.functional.attention import causal_bias


def tensor(a, device="cpu", dtype=None, grad=False):
    """A tensor from host data; floats default to float32 as minigrad's do."""
    a = np.asarray(a)
    if dtype is None and a.dtype.kind == "f":
        dtype = "float32"
    return minigrad.tensor(a, dtype=dtype, device=device, requires_grad=grad)


# -- stability ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_is_stable_for_huge_logits(device, dtype, torch):
    logits = np.array([[1e4, -1e4, 0.0, 1e4 - 1.0], [-3e4, -3e4 + 2.0, -3e4, -3e4]])
    targets = np.array([0, 1])
    reference = torch.tensor(logits, dtype=getattr(torch, dtype), requires_grad=True)
    for fused, torch_fn in [(F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)]:
        out = fused(tensor(logits, device, dtype), axis=-1).numpy()
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, torch_fn(reference, -1).detach().numpy(), rtol=1e-6)
    x = tensor(logits, device, dtype, grad=True)
    loss = F.cross_entropy(x, tensor(targets, device), label_smoothing=0.1)
    loss.backward()
    expected = torch.nn.functional.cross_entropy(reference, torch.tensor(targets),
                                                 label_smoothing=0.1)
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), reference.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # -inf - -inf
def test_softmax_of_an_all_minus_inf_row_is_nan_as_in_torch():
    out = F.softmax(tensor([[-np.inf, -np.inf], [0.0, 1.0]]), axis=-1).numpy()
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


# -- cross_entropy ------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the 0 / 0
def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradients(device):
    x = tensor(np.ones((3, 4)), device, grad=True)
    loss = F.cross_entropy(x, tensor([-100, -100, -100], device))
    loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4), np.float32))


@pytest.mark.parametrize("bad", [4, -1])
def test_cross_entropy_rejects_targets_out_of_range(device, bad):
    with pytest.raises(IndexError, match=rf"cross_entropy: index {bad} is out of range"):
        F.cross_entropy(tensor(np.zeros((2, 4)), device), tensor([0, bad], device))


def test_cross_entropy_argument_errors():
    logits, targets = tensor(np.zeros((2, 3))), tensor([0, 1])
    with pytest.raises(ValueError, match=r"cross_entropy: logits \(2, 3\) and targets \(3,\)"):
        F.cross_entropy(logits, tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"targets of probabilities shaped like logits "
                                         r"\(2, 3\)"):
        F.cross_entropy(logits, tensor([0.0, 1.0]))  # float targets are probabilities
    with pytest.raises(ValueError, match=r"weight has shape \(2,\), expected \(3,\)"):
        F.cross_entropy(logits, targets, weight=tensor(np.ones(2)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(logits, targets, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(logits, targets, label_smoothing=1.5)


def test_cross_entropy_saves_one_n_by_c_array_and_no_one_hot():
    x = tensor(np.zeros((5, 7)), grad=True)
    loss = F.cross_entropy(x, tensor([1, 2, 3, 4, 5]))
    big = [a for a in loss._ctx.saved if a.size >= 5 * 7]
    assert len(big) == 1 and big[0].dtype == np.float32  # exp(x - max), nothing else (N, C)


# -- layer_norm / rms_norm ----------------------------------------------------------------
def test_norms_save_no_normalised_copy_of_the_input():
    x = tensor(np.random.default_rng(0).standard_normal((6, 8)), grad=True)
    w = tensor(np.ones(8), grad=True)
    for out in (F.layer_norm(x, 8, w, w), F.rms_norm(x, 8, w)):
        full = [a for a in out._ctx.saved if a is not None and a.size == x.numel()]
        assert len(full) == 1 and np.shares_memory(full[0], x.data)  # the input itself


def test_norm_argument_errors():
    x = tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"layer_norm: input of shape \(2, 3\) does not end "
                                         r"with normalized_shape \(4,\)"):
        F.layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"rms_norm: weight has shape \(2,\)"):
        F.rms_norm(x, 3, tensor(np.ones(2)))
    with pytest.raises(TypeError, match="layer_norm: dtypes differ"):
        F.layer_norm(x, 3, tensor(np.ones(3), dtype="float64"))


# -- dropout ------------------------------------------------------------------------------
def test_dropout_is_the_identity_in_eval_mode_or_with_p_zero(device):
    x = tensor(np.ones((3, 3)), device)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_is_reproducible_under_a_seed_and_keeps_the_expected_value(device):
    x = tensor(np.ones(200_000), device)

    def draw(seed):
        return F.dropout(x, 0.3, generator=minigrad.Generator(seed, device=device)).numpy()

    first, again, other = draw(1), draw(1), draw(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert set(np.unique(first)) == {np.float32(0.0), np.float32(1 / 0.7)}
    assert abs((first > 0).mean() - 0.7) < 0.01  # 200k draws: 5 sigma is 0.005
    assert abs(first.mean() - 1.0) < 0.015


def test_dropout_backward_is_the_same_mask_and_scale(device):
    x = tensor(np.random.default_rng(0).uniform(1, 2, (50, 40)), device, grad=True)
    out = F.dropout(x, 0.5, generator=minigrad.Generator(0, device=device))
    (keep,) = out._ctx.saved
    assert keep.dtype == minigrad.get_device(device).dtype("bool")  # 1 byte per element
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), out.numpy() / x.numpy(), rtol=1e-6)


def test_dropout_with_p_one_zeros_everything():
    x = tensor(np.ones(10), grad=True)
    out = F.dropout(x, 1.0)
    out.sum().backward()
    assert not out.numpy().any() and not x.grad.numpy().any()


def test_dropout_argument_errors():
    x = tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\]"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="dropout: generator on strict, input on cpu"):
        F.dropout(x, 0.5, generator=minigrad.Generator(0, device="strict"))


# -- embedding ----------------------------------------------------------------------------
def test_embedding_accumulates_the_gradient_of_repeated_ids(device):
    weight = tensor(np.zeros((4, 2)), device, grad=True)
    out = F.embedding(tensor([[1, 3], [1, 1]], device), weight)
    assert out.shape == (2, 2, 2)
    out.backward(tensor(np.arange(8.0).reshape(2, 2, 2), device, dtype="float32"))
    np.testing.assert_array_equal(weight.grad.numpy(),
                                  [[0, 0], [0 + 4 + 6, 1 + 5 + 7], [0, 0], [2, 3]])


@pytest.mark.parametrize("bad", [4, -1])
def test_embedding_rejects_ids_out_of_range(device, bad):
    with pytest.raises(IndexError, match=rf"embedding: index {bad} is out of range for size 4"):
        F.embedding(tensor([0, bad], device), tensor(np.zeros((4, 2)), device))


def test_embedding_argument_errors():
    with pytest.raises(TypeError, match="embedding: ids must be an integer tensor"):
        F.embedding(tensor([0.0]), tensor(np.zeros((4, 2))))
    with pytest.raises(ValueError, match=r"embedding: weight must be \(num_embeddings, dim\)"):
        F.embedding(tensor([0]), tensor(np.zeros(4)))


# -- linear -------------------------------------------------------------------------------
def test_linear_argument_errors():
    with pytest.raises(ValueError, match=r"linear: input \(3, 4\) and weight \(5, 6\)"):
        F.linear(tensor(np.zeros((3, 4))), tensor(np.zeros((5, 6))))
    with pytest.raises(ValueError, match=r"linear: bias has shape \(4,\), expected \(5,\)"):
        F.linear(tensor(np.zeros((3, 6))), tensor(np.zeros((5, 6))), tensor(np.zeros(4)))


# -- attention ----------------------------------------------------------------------------
def test_attention_query_that_sees_no_key_gets_zeros_as_in_torch(device, torch):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 3, 4)) for _ in range(3))
    mask = np.ones((3, 3), bool)
    mask[1] = False  # query 1 sees nothing
    ours = [tensor(a, device, "float64", grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ours, attn_mask=tensor(mask, device))
    out.sum().backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    expected = torch.nn.functional.scaled_dot_product_attention(
        *theirs, attn_mask=torch.tensor(mask))
    expected.sum().backward()
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert not out.numpy()[:, :, 1].any()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_causal_mask_is_built_once_per_shape_device_and_dtype():
    cpu = minigrad.get_device("cpu")
    first = causal_bias(cpu, 3, 5, "float32")
    assert causal_bias(cpu, 3, 5, "float32") is first
    assert causal_bias(cpu, 3, 5, "float64") is not first
    expected = np.where(np.arange(5)[None, :] <= np.arange(3)[:, None], 0.0, -np.inf)
    np.testing.assert_array_equal(first, expected)


def test_attention_dropout_is_reproducible_under_a_seed():
    q = tensor(np.random.default_rng(0).standard_normal((2, 4, 3)))

    def attend(seed):
        return F.scaled_dot_product_attention(q, q, q, dropout_p=0.5,
                                              generator=minigrad.Generator(seed)).numpy()

    np.testing.assert_array_equal(attend(3), attend(3))
    assert not np.array_equal(attend(3), attend(4))


def test_attention_argument_errors():
    q = tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: q \(2, 3, 4\), "
                                         r"k \(2, 3, 5\)"):
        F.scaled_dot_product_attention(q, tensor(np.zeros((2, 3, 5))), q)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\) does not broadcast to the "
                                         r"attention scores \(2, 3, 3\)"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=tensor(np.ones((2, 3), bool)))
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\)"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)


# -- GELU ---------------------------------------------------------------------------------
GELU_POINTS = [-12.0, -3.0, -1.0, -1e-8, 0.0, 1e-8, 0.5, 2.0, 12.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_fused_matches_composite_at_extreme_inputs(device, dtype, approximate):
    """On 'cpu' the fused op runs the NumPy kernel, on 'strict' its array-API code."""
    results = []
    for op in (F.gelu, F.gelu_composite):
        x = tensor(GELU_POINTS, device, dtype, grad=True)
        out = op(x, approximate=approximate)
        out.backward(tensor(np.linspace(-1, 1, len(GELU_POINTS)), device, dtype))
        results.append((out.numpy(), x.grad.numpy()))
    tolerance = {"rtol": 1e-6, "atol": 1e-7} if dtype == "float32" else {"rtol": 1e-13,
                                                                         "atol": 1e-15}
    for fused, composite in zip(*results, strict=True):
        assert fused.dtype == composite.dtype == dtype
        np.testing.assert_allclose(fused, composite, **tolerance)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradients_pass_gradcheck_in_float64(device, approximate):
    x = tensor(np.linspace(-4, 4, 13), device, "float64", grad=True)
    for op in (F.gelu, F.gelu_composite):
        assert minigrad.gradcheck(lambda t, op=op: op(t, approximate=approximate), x)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_pytorch(approximate):
    torch = pytest.importorskip("torch")
    x = np.array(GELU_POINTS)
    g = np.linspace(-1, 1, len(GELU_POINTS))
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.gelu(tx, approximate=approximate).backward(torch.tensor(g))
    for op in (F.gelu, F.gelu_composite):
        mx = tensor(x, dtype="float64", grad=True)
        out = op(mx, approximate=approximate)
        out.backward(tensor(g, dtype="float64"))
        np.testing.assert_allclose(out.numpy(), torch.nn.functional.gelu(
            torch.tensor(x), approximate=approximate).numpy(), rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-13, atol=1e-300)


def test_gelu_layer_method_and_errors():
    x = tensor([-1.0, 0.5])
    np.testing.assert_array_equal(minigrad.nn.GELU("tanh")(x).numpy(),
                                  F.gelu(x, approximate="tanh").numpy())
    np.testing.assert_array_equal(x.gelu().numpy(), F.gelu(x).numpy())
    for op in (F.gelu, F.gelu_composite):
        with pytest.raises(ValueError, match=rf"{op.__name__}: approximate must be 'none' or "
                                             r"'tanh', got 'fast'"):
            op(x, approximate="fast")
    with pytest.raises(TypeError, match="gelu: x must be floating point"):
        F.gelu(tensor([1, 2]))


# -- device kernels -----------------------------------------------------------------------
class DoublingKernel:
    """A stand-in "softmax" kernel: forward 2x, backward 3x; supports 1-d inputs only."""

    def __init__(self):
        self.calls = []

    def supports(self, fn, x):
        return x.ndim == 1

    def forward(self, fn, x):
        self.calls.append(("forward", fn.axis))
        return x * 2

    def backward(self, fn, g):
        self.calls.append(("backward", fn.axis))
        return g * 3


def test_a_device_kernel_replaces_the_array_code(monkeypatch):
    kernel = DoublingKernel()
    monkeypatch.setitem(minigrad.get_device("cpu").fused_ops, "softmax", kernel)
    x = tensor(np.ones(3), grad=True)
    out = F.softmax(x, axis=0)
    out.sum().backward()
    assert kernel.calls == [("forward", 0), ("backward", 0)]
    np.testing.assert_array_equal(out.numpy(), [2, 2, 2])
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3, 3])


def test_inputs_a_kernel_does_not_support_take_the_array_code(monkeypatch):
    kernel = DoublingKernel()
    monkeypatch.setitem(minigrad.get_device("cpu").fused_ops, "softmax", kernel)
    x = tensor(np.zeros((2, 2)), grad=True)
    out = F.softmax(x, axis=1)
    out.sum().backward()
    assert kernel.calls == [] and out._ctx.kernel is None
    np.testing.assert_allclose(out.numpy(), 0.5)
    np.testing.assert_allclose(x.grad.numpy(), 0.0, atol=1e-7)


def test_fused_ops_declare_their_kernel_name():
    from minigrad.nn.functional._fused import FusedFunction

    with pytest.raises(TypeError, match="must declare its name"):
        type("Renamed", (FusedFunction,), {})
    assert type("Renamed", (FusedFunction,), {"name": "softmax"}).name == "softmax"
