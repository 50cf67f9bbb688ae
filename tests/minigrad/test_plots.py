"""Plots: gradient flow and attention heatmaps are written as valid PNG files, with the
statistics they plot checked against NumPy, and clear errors for bad input."""

import math
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.instruments import plots

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_MAGIC


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        gen = mg.Generator(0)
        self.w1 = nn.Parameter(mg.randn(3, 5, generator=gen))
        self.w2 = nn.Parameter(mg.randn(5, 2, generator=gen))
        self.unused = nn.Parameter(mg.zeros(4))

    def forward(self, x):
        return (x @ self.w1).tanh() @ self.w2


def test_gradient_flow_png_and_statistics(tmp_path, device):
    model = TwoLayer()
    if device != "cpu":
        model.to(device)
    (model(mg.ones((4, 3), device=device)) ** 2).mean().backward()
    path = tmp_path / "flow.png"
    rows = plots.gradient_flow(model, path)
    assert_png(path)
    assert [r[0] for r in rows] == ["w1", "w2"]  # `unused` has no gradient
    for (_, mean, high), p in zip(rows, (model.w1, model.w2)):
        g = np.abs(p.grad.numpy())
        assert mean == pytest.approx(g.mean(), rel=1e-6)
        assert high == pytest.approx(g.max(), rel=1e-6)


def test_gradient_flow_takes_named_pairs_and_needs_gradients(tmp_path):
    w = mg.tensor([1.0, -3.0], requires_grad=True)
    (w * w).sum().backward()
    rows = plots.gradient_flow([("w", w)], tmp_path / "pairs.png")
    assert rows == [("w", 4.0, 6.0)]
    with pytest.raises(ValueError, match="call loss.backward"):
        plots.gradient_flow({"fresh": mg.tensor([1.0], requires_grad=True)},
                            tmp_path / "none.png")


def small_attention(layers=2, heads=3, T=5, B=2):
    """Causal softmax(q k^T / sqrt(d)) attention probabilities, from minigrad ops."""
    gen = mg.Generator(1)
    maps = []
    causal = mg.tensor(np.tril(np.ones((T, T), dtype=bool)))
    for _ in range(layers):
        q = mg.randn(B, heads, T, 4, generator=gen)
        k = mg.randn(B, heads, T, 4, generator=gen)
        scores = (q @ k.swapaxes(-1, -2)) * (1 / math.sqrt(4))
        scores = mg.where(causal, scores, -math.inf)
        weights = (scores - scores.amax(dim=-1, keepdim=True)).exp()
        maps.append(weights / weights.sum(axis=-1, keepdims=True))  # (B, H, T, T)
    return maps


def test_attention_heatmaps_png(tmp_path):
    maps = small_attention()
    np.testing.assert_allclose(maps[0].numpy().sum(-1), 1.0, rtol=1e-6)
    path = tmp_path / "attention.png"
    assert plots.attention_heatmaps(maps, ["The", " cat", " sat", "\n", "!"], path) == str(path)
    assert_png(path)


def test_attention_heatmaps_accept_one_layer_without_batch(tmp_path):
    (layer,) = small_attention(layers=1)
    path = tmp_path / "one.png"
    plots.attention_heatmaps(layer[1], list("abcde"), path)  # (H, T, T)
    assert_png(path)


def test_attention_heatmaps_reject_bad_input(tmp_path):
    maps = small_attention(layers=1)
    with pytest.raises(ValueError, match="4 tokens for attention over 5 positions"):
        plots.attention_heatmaps(maps, list("abcd"), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"layer 0 has shape \(5, 4\)"):
        plots.attention_heatmaps([mg.ones((5, 4))], list("abcde"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="batch_index 7"):
        plots.attention_heatmaps(maps, list("abcde"), tmp_path / "x.png", batch_index=7)
    with pytest.raises(ValueError, match="no attention maps"):
        plots.attention_heatmaps([], [], tmp_path / "x.png")


def test_gpt_attention_maps_for_a_prompt(tmp_path):
    from gpt.model import GPT, GPTConfig

    model = GPT(GPTConfig(vocab_size=10, block_size=6, n_layer=2, n_head=2, n_embd=8),
                generator=mg.Generator(0))
    ids = mg.tensor([[1, 2, 3, 4, 5, 6]])
    maps = model.attention_maps(ids)
    path = tmp_path / "gpt_attention.png"
    plots.attention_heatmaps(maps, [str(i) for i in range(6)], path)
    assert_png(path)


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    w = mg.tensor([1.0], requires_grad=True)
    w.sum().backward()
    with pytest.raises(ImportError, match=r"pip install 'minigrad-llm\[plot\]'"):
        plots.gradient_flow([("w", w)], tmp_path / "x.png")
