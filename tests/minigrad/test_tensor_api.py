"""The PyTorch user's Tensor API: where a name is PyTorch's, so is the meaning. Values
and gradients of every op are compared with PyTorch in the op table (`op_specs`); these
tests pin the calling conventions a PyTorch user relies on."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn

torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")


def pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return mg.tensor(a), torch.tensor(a)


def same(ours, theirs):
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert ours.shape == tuple(theirs.shape)


def test_transpose_swaps_two_dims_and_permute_reorders_all():
    x, tx = pair((2, 3, 4))
    same(x.transpose(0, 1), tx.transpose(0, 1))
    same(x.transpose(-1, 0), tx.transpose(-1, 0))
    same(x.permute(2, 0, 1), tx.permute(2, 0, 1))
    same(x.permute((1, 2, 0)), tx.permute((1, 2, 0)))
    same(x.mT, tx.mT)
    m, tm = pair((2, 3))
    same(m.transpose(0, 1), tm.transpose(0, 1))  # not the input unchanged
    same(m.T, tm.T)
    same(m.t(), tm.t())


def test_reductions_take_dim_and_keepdim_and_numpy_aliases():
    x, tx = pair((2, 3, 4))
    same(x.sum(dim=1, keepdim=True), tx.sum(dim=1, keepdim=True))
    same(x.sum(axis=1, keepdims=True), tx.sum(axis=1, keepdims=True))  # torch's aliases too
    same(x.mean((0, 2)), tx.mean((0, 2)))
    same(mg.amax(x, dim=(0, 1)), torch.amax(tx, dim=(0, 1)))
    with pytest.raises(TypeError, match="give dim or its alias axis, not both"):
        x.sum(dim=0, axis=1)


def test_max_and_min_over_a_dim_return_values_and_indices():
    x, tx = pair((3, 4))
    values, indices = x.max(dim=1)
    t_values, t_indices = tx.max(dim=1)
    same(values, t_values)
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    got = x.min(0, keepdim=True)
    want = tx.min(0, keepdim=True)
    same(got.values, want.values)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    same(x.max(), tx.max())
    same(x.max(mg.zeros(3, 4, dtype="float64")), tx.max(torch.zeros(3, 4, dtype=torch.float64)))


def test_max_over_a_dim_sends_the_gradient_to_one_element_amax_shares_it():
    values = [[1.0, 3.0, 3.0]]
    for ours, theirs in [(lambda t: t.max(dim=1).values, lambda t: t.max(dim=1).values),
                         (lambda t: t.amax(dim=1), lambda t: t.amax(dim=1))]:
        x = mg.tensor(values, dtype="float64", requires_grad=True)
        tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        ours(x).sum().backward()
        theirs(tx).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_var_and_std_default_to_the_unbiased_estimate():
    x, tx = pair((5, 3))
    same(x.var(), tx.var())
    same(x.std(dim=0), tx.std(dim=0))
    same(x.var(0, correction=0), tx.var(0, correction=0))
    same(x.var(1, unbiased=False, keepdim=True), tx.var(1, unbiased=False, keepdim=True))


def test_squeeze_of_a_dim_that_is_not_1_is_a_no_op():
    x, tx = pair((2, 1, 3))
    same(x.squeeze(0), tx.squeeze(0))
    same(x.squeeze(1), tx.squeeze(1))
    same(x.squeeze(), tx.squeeze())


def test_size_numel_and_dim():
    x = mg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and x.dim() == 3 and x.ndim == 3
    assert x.is_floating_point() and not mg.arange(3).is_floating_point()
    with pytest.raises(IndexError, match="size: dim 3 is out of range"):
        x.size(3)


def test_type_promotion_follows_pytorch():
    f32 = mg.ones(2)
    assert mg.backends.dtype_name((f32 * 2.5).dtype) == "float32"
    assert mg.backends.dtype_name((f32 + np.float64(1.0)).dtype) == "float32"
    assert mg.backends.dtype_name((f32 * mg.tensor(2.0, dtype="float64")).dtype) == "float32"
    assert mg.backends.dtype_name((f32 + mg.ones(2, dtype="float64")).dtype) == "float64"
    assert mg.backends.dtype_name((mg.arange(3) * np.int32(2)).dtype) == "int64"
    with pytest.raises(TypeError, match="matmul: .*same dtype"):
        mg.ones(2, 2) @ mg.ones(2, 2, dtype="float64")


def test_attention_takes_pytorch_arguments_and_grouped_heads():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal(s) for s in [(1, 4, 3, 2), (1, 2, 3, 2), (1, 2, 3, 5)])
    mask = rng.random((3, 3)) < 0.7
    mask[:, 0] = True
    ours = F.scaled_dot_product_attention(mg.tensor(q), mg.tensor(k), mg.tensor(v),
                                          attn_mask=mg.tensor(mask), scale=0.5,
                                          enable_gqa=True)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=torch.tensor(mask),
        scale=0.5, enable_gqa=True)
    same(ours, theirs)
    causal = F.scaled_dot_product_attention(mg.tensor(q), mg.tensor(q), mg.tensor(q), None, 0.0,
                                            True)
    same(causal, torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(q), torch.tensor(q), None, 0.0, True))


def test_embedding_padding_row_gets_no_gradient_and_starts_at_zero():
    layer = nn.Embedding(5, 3, padding_idx=1)
    np.testing.assert_array_equal(layer.weight.numpy()[1], 0.0)
    ids = mg.tensor([[1, 2, 1], [0, 1, 4]])
    layer(ids).sum().backward()
    weight = torch.zeros(5, 3, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(ids.numpy()), weight, padding_idx=1).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), weight.grad.numpy())


def test_multinomial_frequencies_follow_the_probabilities():
    gen = mg.Generator(0)
    probs = mg.tensor([[0.1, 0.0, 0.6, 0.3], [0.5, 0.5, 0.0, 0.0]], dtype="float64")
    draws = mg.multinomial(probs, 4000, replacement=True, generator=gen).numpy()
    for row, p in zip(draws, probs.numpy()):
        np.testing.assert_allclose(np.bincount(row, minlength=4) / 4000, p, atol=0.03)
    distinct = mg.multinomial(probs, 2, generator=gen).numpy()
    assert all(len(set(row)) == 2 for row in distinct)
    assert set(distinct[1]) == {0, 1}  # never a category of probability 0
    with pytest.raises(ValueError, match="3 samples without replacement from 2"):
        mg.multinomial(mg.ones(2), 3)


def test_tensor_methods_for_softmax_pow_where_and_maximum():
    x, tx = pair((2, 3))
    same(x.softmax(dim=-1), tx.softmax(dim=-1))
    same(x.log_softmax(0), tx.log_softmax(0))
    same(x.pow(2), tx.pow(2))
    same(x.where(x > 0, 0.0), tx.where(tx > 0, 0.0))
    same(x.maximum(x * 0), tx.maximum(tx * 0))
    same(x.clamp(-0.5, 0.5), tx.clamp(-0.5, 0.5))
