"""PNG plots for looking inside training: gradient flow per parameter and attention maps.

    from minigrad.instruments import plots

    loss.backward()
    plots.gradient_flow(model, "grad_flow.png")
    plots.attention_heatmaps(model.attention_maps(ids), tokens, "attention.png")

Gradient flow shows, per parameter in model order, the mean and the max of |grad|: layers
whose gradients shrink toward zero (vanishing) or explode stand out on the log scale.

Plots need matplotlib, an optional extra: ``pip install 'minigrad-llm[plot]'``. Figures are
made with matplotlib's object API, not pyplot: no window opens and pyplot's global
state is left alone.
"""

from __future__ import annotations

import os

from minigrad.instruments.viz import named_tensors
from minigrad.tensor import Tensor

_MAX_TICK_LABELS = 40  # more tokens than this and the axes go unlabelled


def gradient_flow(model_or_named_parameters, path, *, title: str = "Gradient flow") -> list:
    """Bar chart of mean and max |grad| per parameter, written to `path` (PNG).

    Takes a Module, a name -> tensor mapping or (name, tensor) pairs. Parameters without
    a gradient are left out. Returns the plotted rows: [(name, mean |grad|, max |grad|)].
    """
    rows = []
    for name, p in named_tensors(model_or_named_parameters):
        if p.grad is None:
            continue
        g = p.grad
        xp = g.device.xp
        magnitude = xp.abs(g.data)
        # Both statistics reduced on the device; one explicit transfer per parameter.
        mean, high = g.device.to_host(xp.stack([xp.mean(magnitude), xp.max(magnitude)]))
        rows.append((name, float(mean), float(high)))
    if not rows:
        raise ValueError("gradient_flow: no parameter has a gradient; call loss.backward() "
                         "first (and check the parameters require grad)")
    figure = _figure(width=max(6.0, 0.35 * len(rows)), height=4.5)
    ax = figure.add_subplot()
    positions = range(len(rows))
    ax.bar(positions, [r[2] for r in rows], color="#9ecae1", label="max |grad|")
    ax.bar(positions, [r[1] for r in rows], color="#08519c", label="mean |grad|")
    ax.set_yscale("log")
    ax.set_xticks(list(positions), [r[0] for r in rows], rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel("|grad|")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    figure.savefig(path, format="png")
    return rows


def attention_heatmaps(attn_maps, tokens, path, *, batch_index: int = 0,
                       title: str = "Attention") -> str:
    """One heatmap per layer (rows) and head (columns) of attention probabilities.

    attn_maps: a list with one (B, H, T, T) or (H, T, T) tensor per layer (as from
    `GPT.attention_maps(ids)`), or a single such tensor. tokens: T labels for the axes
    (queries down, keys across). Writes a PNG to `path` and returns it.
    """
    layers = [attn_maps] if isinstance(attn_maps, Tensor) else list(attn_maps)
    if not layers:
        raise ValueError("attention_heatmaps: no attention maps given")
    host = []
    for i, maps in enumerate(layers):
        if maps.ndim == 4:
            if not 0 <= batch_index < maps.shape[0]:
                raise ValueError(f"attention_heatmaps: batch_index {batch_index} is out of "
                                 f"range for layer {i} of shape {maps.shape}")
            maps = maps[batch_index]
        if maps.ndim != 3 or maps.shape[1] != maps.shape[2]:
            raise ValueError(f"attention_heatmaps: layer {i} has shape {maps.shape}; expected "
                             "(B, H, T, T) or (H, T, T)")
        host.append(maps.numpy())  # (H, T, T): the one transfer per layer
    shapes = {m.shape for m in host}
    if len(shapes) != 1:
        raise ValueError(f"attention_heatmaps: layers differ in shape: {sorted(shapes)}")
    n_heads, T, _ = host[0].shape
    labels = [str(t).replace("\n", "\\n") for t in tokens]
    if len(labels) != T:
        raise ValueError(f"attention_heatmaps: {len(labels)} tokens for attention over "
                         f"{T} positions")
    cell = max(2.2, 0.22 * T)
    figure = _figure(width=cell * n_heads + 1.0, height=cell * len(host) + 0.8)
    axes = figure.subplots(len(host), n_heads, squeeze=False)
    for layer, maps in enumerate(host):
        for head in range(n_heads):
            ax = axes[layer][head]
            image = ax.imshow(maps[head], cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_title(f"layer {layer} head {head}", fontsize=8)
            if head == 0:
                ax.set_ylabel("query", fontsize=7)
            if layer == len(host) - 1:
                ax.set_xlabel("key", fontsize=7)
            if T <= _MAX_TICK_LABELS:
                ax.set_xticks(range(T), labels, rotation=90, fontsize=6)
                ax.set_yticks(range(T), labels, fontsize=6)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.6, label="attention probability")
    figure.suptitle(title)
    figure.savefig(path, format="png")
    return os.fspath(path)


def _figure(width: float, height: float):
    """A matplotlib Figure outside pyplot (saved with Agg), or a clear message if missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("minigrad.instruments.plots needs matplotlib: "
                          "pip install 'minigrad-llm[plot]'") from exc
    return Figure(figsize=(width, height), layout="constrained")
