"""Per-layer numbers of every training step (`--layer-stats`), to name the layer that blew
up: the gradient norm and the update-to-weight ratio |w_new - w_old| / |w_old| of each
layer, and the largest activation |x| leaving each block.

A layer is a module's parameters taken together (h.0.attn.c_attn: its weight and bias).
The numbers of a step stay on the device, stacked into one vector, and travel to the
host with the loss at the trainer's next fetch. The cost: a copy of the weights before
each update (for the ratio) and a few reductions per parameter.
"""

from __future__ import annotations

import minigrad

STAT_NAMES = ("layer_grad_norm", "layer_update_ratio", "block_max_activation")


def layer_of(parameter_name: str) -> str:
    """h.0.attn.c_attn.weight -> h.0.attn.c_attn."""
    return parameter_name.rsplit(".", 1)[0]


def _norm(tensors):
    """The 2-norm of tensors taken as one vector (0-d tensor)."""
    return sum((t * t).sum() for t in tensors).sqrt()


class LayerStats:
    """Call `gradients()` after the backward (before clipping: the norms are the raw
    ones), `collect()` after the optimizer step; `unpack` turns a fetched vector into
    the per-step record fields."""

    def __init__(self, model):
        groups: dict[str, list] = {}
        for name, p in model.named_parameters():
            groups.setdefault(layer_of(name), []).append(p)
        self.layers, self._groups = list(groups), list(groups.values())
        self.blocks = [f"h.{i}" for i in range(len(model.h))]
        self._peaks: list = [None] * len(model.h)
        self._grad_norms: list = []
        self._before: list = []
        self._handles = [block.register_forward_hook(self._recorder(i))
                         for i, block in enumerate(model.h)]

    def _recorder(self, i: int):
        def record(block, inputs, output):
            if not block.training:  # evaluation passes are not training steps
                return
            peak = output.detach().abs().max()
            self._peaks[i] = peak if self._peaks[i] is None else minigrad.maximum(
                self._peaks[i], peak)
        return record

    def gradients(self) -> None:
        """Each layer's gradient norm, and a copy of its weights to measure the update."""
        with minigrad.no_grad():
            self._grad_norms = [_norm([p.grad for p in group if p.grad is not None])
                                for group in self._groups]
            self._before = [[p.detach() * 1.0 for p in group] for group in self._groups]

    def collect(self):
        """The step's numbers as one vector: grad norms, update ratios (per layer), then
        max activations (per block; 0 for a block no training pass went through)."""
        with minigrad.no_grad():
            ratios = [_norm([p.detach() - old for p, old in zip(group, before)])
                      / (_norm(before) + 1e-12)
                      for group, before in zip(self._groups, self._before)]
            device = ratios[0].device
            peaks = [minigrad.zeros((), device=device) if p is None else p.astype(ratios[0].dtype)
                     for p in self._peaks]
            values = minigrad.stack([*self._grad_norms, *ratios, *peaks])
        self._peaks = [None] * len(self._peaks)
        self._grad_norms, self._before = [], []
        return values

    def unpack(self, values: list[float]) -> dict:
        """A fetched vector -> the record fields {"layer_grad_norm": {layer: value},
        "layer_update_ratio": {layer: value}, "block_max_activation": {block: value}}."""
        n = len(self.layers)
        parts = (values[:n], values[n:2 * n], values[2 * n:])
        names = (self.layers, self.layers, self.blocks)
        return {stat: dict(zip(keys, part)) for stat, keys, part in zip(STAT_NAMES, names, parts)}
