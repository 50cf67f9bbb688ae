"""Causal attention in row blocks of queries (minigrad.nn.functional.attention): with a
block size far below the sequence length, values and gradients match the composite twin,
for every mix of causal, masks, dropout and Tq != Tk."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
import minigrad.nn.functional.attention as attention_module


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 2 queries, so that sequences of 5..7 split into several (and a ragged one)."""
    monkeypatch.setattr(attention_module, "QUERY_BLOCK", 2)


def attend_both(device, tq, tk, mask_kind=None, dropout_p=0.0, causal=True):
    """(fused, composite) lists of [out, dq, dk, dv(, dmask)] as host arrays."""
    rng = np.random.default_rng(tq * 10 + tk)
    arrays = {"q": rng.standard_normal((2, 3, tq, 4)), "k": rng.standard_normal((2, 3, tk, 4)),
              "v": rng.standard_normal((2, 3, tk, 5))}
    if mask_kind == "additive":
        arrays["mask"] = rng.standard_normal((3, tq, tk))
    upstream = rng.standard_normal((2, 3, tq, 5))
    visible = rng.random((tq, tk)) < 0.7
    visible[:, 0] = True  # the composite gives nan for a query that sees no key
    results = []
    for op in (F.scaled_dot_product_attention, F.scaled_dot_product_attention_composite):
        inputs = {name: minigrad.tensor(a, dtype="float64", device=device, requires_grad=True)
                  for name, a in arrays.items()}
        if mask_kind == "bool":
            inputs["mask"] = minigrad.tensor(visible, device=device)
        generator = minigrad.Generator(7, device=device) if dropout_p else None
        out = op(inputs["q"], inputs["k"], inputs["v"], attn_mask=inputs.get("mask"),
                 is_causal=causal, dropout_p=dropout_p, generator=generator)
        out.backward(minigrad.tensor(upstream, dtype="float64", device=device))
        grads = [inputs[name].grad.numpy() for name in arrays]
        results.append([out.numpy()] + grads)
    return results


@pytest.mark.parametrize(("tq", "tk"), [(5, 5), (7, 7), (6, 3), (3, 6), (1, 4)])
@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_blocked_causal_attention_matches_the_composite(device, small_blocks, tq, tk,
                                                         mask_kind):
    fused, composite = attend_both(device, tq, tk, mask_kind)
    for actual, expected in zip(fused, composite, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
def test_blocked_attention_with_dropout_matches_the_composite(device, small_blocks, causal):
    fused, composite = attend_both(device, 6, 6, "additive", dropout_p=0.3, causal=causal)
    for actual, expected in zip(fused, composite, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def test_causal_blocks_skip_the_masked_keys():
    """Each block of queries computes scores only against the keys its last query sees."""
    fn = attention_module.ScaledDotProductAttention(1.0, True, 0.0, None)
    blocks = [(rows.start, rows.stop, key_end) for rows, key_end, _ in fn.row_blocks(150, 150)]
    size = attention_module.QUERY_BLOCK
    assert blocks[0] == (0, size, size)
    assert blocks[-1][1:] == (150, 150)
    assert all(key_end == stop for _, stop, key_end in blocks)
    non_causal = attention_module.ScaledDotProductAttention(1.0, False, 0.0, None)
    assert [(r.start, r.stop, e) for r, e, _ in non_causal.row_blocks(150, 90)] == [(0, 150, 90)]


@pytest.mark.parametrize("causal", [True, False])
def test_attention_without_queries_gives_empty_output_and_zero_key_gradients(device, causal):
    q = minigrad.tensor(np.zeros((2, 0, 4)), device=device, requires_grad=True)
    k = minigrad.tensor(np.ones((2, 3, 4)), device=device, requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, k, is_causal=causal)
    assert out.shape == (2, 0, 4)
    out.sum().backward()
    np.testing.assert_array_equal(k.grad.numpy(), np.zeros((2, 3, 4)))
