"""The array-API twins of the CUDA kernels (minigrad.cuda.reference) against PyTorch, on
NumPy and on the GPU stand-in; and the fused ops driven by them through
`Device.kernels` on 'strict', which must keep every array on the device."""

import math

import numpy as np
import pytest
import torch

import minigrad
import minigrad.nn.functional as F
from minigrad import backend
from minigrad.cuda import op_kernels
from minigrad.cuda.attention import SHARED_BYTES, tiles
from minigrad.cuda.reference import philox4x32_10, reference_kernels


def on(device, array):
    return backend.get_device(device).asarray(array)


def host(device, array):
    return backend.get_device(device).to_host(array)


def test_cross_entropy_reference_matches_torch(device):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 9))
    targets = rng.integers(0, 9, 6)
    targets[2] = -100
    ref = reference_kernels(backend.get_device(device))["cross_entropy"]
    losses, lse = ref.forward(on(device, logits), on(device, targets), -100, 0.2)
    grad_rows = rng.standard_normal(6)
    grad = ref.backward(on(device, logits), on(device, targets), lse, on(device, grad_rows),
                        -100, 0.2)
    x = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(x, torch.tensor(targets), ignore_index=-100,
                                                 reduction="none", label_smoothing=0.2)
    expected.backward(torch.tensor(grad_rows))
    np.testing.assert_allclose(host(device, losses), expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(host(device, lse), torch.logsumexp(x, 1).detach().numpy())
    np.testing.assert_allclose(host(device, grad), x.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_layer_norm_and_gelu_references_match_torch(device):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 10)) * 3, rng.standard_normal(10), rng.standard_normal(10)
    dy = rng.standard_normal((4, 10))
    refs = reference_kernels(backend.get_device(device))
    y, mean, rstd = refs["layer_norm"].forward(on(device, x), on(device, w), on(device, b), 1e-5)
    grads = refs["layer_norm"].backward(on(device, dy), on(device, x), on(device, w), mean, rstd)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.layer_norm(tx, (10,), tw, tb, 1e-5)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(host(device, y), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for actual, expected in zip(grads, (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(host(device, actual), expected.numpy(), rtol=1e-10,
                                   atol=1e-12)
    for approximate in ("none", "tanh"):
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.gelu(tx, approximate=approximate)
        ty.backward(torch.tensor(dy))
        out = refs["gelu"].forward(on(device, x), approximate)
        grad = refs["gelu"].backward(on(device, x), on(device, dy), approximate)
        np.testing.assert_allclose(host(device, out), ty.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(host(device, grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_reference_matches_torch(device, causal):
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    dout = rng.standard_normal((2, 3, 5, 4))
    ref = reference_kernels(backend.get_device(device))["attention"]
    out, lse = ref.forward(on(device, q), on(device, k), on(device, v), causal, 0.7)
    grads = ref.backward(on(device, q), on(device, k), on(device, v), out, lse,
                         on(device, dout), causal, 0.7)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal,
                                                                scale=0.7)
    expected.backward(torch.tensor(dout))
    np.testing.assert_allclose(host(device, out), expected.detach().numpy(), rtol=1e-10)
    for actual, t in zip(grads, (tq, tk, tv)):
        np.testing.assert_allclose(host(device, actual), t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_adamw_reference_matches_torch(device):
    rng = np.random.default_rng(3)
    start = rng.standard_normal(7)
    param, exp_avg, exp_avg_sq = on(device, start), on(device, np.zeros(7)), on(device,
                                                                               np.zeros(7))
    update = reference_kernels(backend.get_device(device))["adamw"]
    tp = torch.tensor(start, requires_grad=True)
    opt = torch.optim.AdamW([tp], lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.3)
    for step in range(1, 4):
        g = rng.standard_normal(7)
        update(param, on(device, g), exp_avg, exp_avg_sq, 0.1, 0.8, 0.9, 1e-6, 0.3, step)
        tp.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(host(device, param), tp.detach().numpy(), rtol=1e-12)


def test_philox_reference_known_answers():
    """Random123's known-answer vectors for Philox4x32-10 (tests/kat_vectors)."""
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2,
              (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for counter, key, expected in cases:
        words = philox4x32_10(np, tuple(np.array([c], np.uint64) for c in counter), key)
        assert tuple(int(w[0]) for w in words) == expected


def test_attention_tiles_fit_the_shared_memory_budget():
    for head_dim in range(1, 300):
        for itemsize in (4, 8):
            t = tiles(head_dim, itemsize)
            if t is None:
                assert head_dim * itemsize > 256 * 4  # only huge heads are declined
                continue
            forward = t["FWD_BM"] * (head_dim + 1) + 2 * t["FWD_BN"] * head_dim
            assert max(forward, t["BWD_B"] * (4 * head_dim + 4)) * itemsize <= SHARED_BYTES
    assert tiles(64, 4) == {"HEAD_DIM": 64, "FWD_BM": 64, "FWD_BN": 32, "BWD_B": 32}


# -- the fused ops through Device.kernels on the GPU stand-in -----------------------------
@pytest.fixture
def strict_with_reference_kernels(monkeypatch):
    strict = backend.get_device("strict")
    monkeypatch.setattr(strict, "kernels", op_kernels(reference_kernels(strict)))
    return strict


def test_fused_ops_on_strict_use_kernels_without_host_transfers(strict_with_reference_kernels,
                                                                 monkeypatch):
    strict = strict_with_reference_kernels
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((2, 5, 8), (8,), (8,), (2, 2, 5, 4))]
    targets = rng.integers(0, 8, (2, 5))

    def step():
        x, w, b, qkv = (minigrad.tensor(a, device=strict, requires_grad=True) for a in arrays)
        h = F.gelu(F.layer_norm(x, (8,), w, b), approximate="tanh")
        a = F.scaled_dot_product_attention(qkv, qkv, qkv, causal=True)
        loss = F.cross_entropy(h, minigrad.tensor(targets, device=strict)) + a.mean()
        loss.backward()
        return [t.numpy() for t in (loss, x.grad, w.grad, b.grad, qkv.grad)]

    before = strict.host_transfers
    fused = step()
    assert strict.host_transfers - before == 5  # the five .numpy() calls, nothing else
    monkeypatch.setattr(strict, "kernels", {})
    for actual, expected in zip(fused, step()):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_attention_entry_declines_masks_and_dropout(strict_with_reference_kernels):
    strict = strict_with_reference_kernels
    q = minigrad.randn(1, 2, 4, 3, device=strict, requires_grad=True)
    mask = minigrad.tensor(np.tril(np.ones((4, 4), bool)), device=strict)
    masked = F.scaled_dot_product_attention(q, q, q, mask=mask)
    dropped = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5,
                                             generator=minigrad.Generator(0, strict))
    causal = F.scaled_dot_product_attention(q, q, q, causal=True)
    assert masked._ctx.kernel is None and dropped._ctx.kernel is None
    assert causal._ctx.kernel is not None
    np.testing.assert_allclose(masked.numpy(), causal.numpy(), rtol=1e-5, atol=1e-6)
    assert math.isfinite(float(dropped.sum().item()))
