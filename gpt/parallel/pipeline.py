"""Pipeline parallelism: contiguous blocks of layers per rank, micro-batches in a
GPipe schedule (Huang et al. 2019).

Stage s of pp holds blocks [lo_s, hi_s) (as even a split as n_layer allows); the first
also the embeddings, the last the final norm and the output head (and, with tied
weights, its own copy of the token embedding, whose gradients the two stages add up).
A step with M micro-batches (the trainer's grad_accum):

    forward:  for m in 1..M: receive x_m from stage s-1 (the first embeds the ids),
              run my blocks, send the output to stage s+1 (the last computes the loss)
    backward: for m in 1..M: receive dL/d(output_m) from stage s+1 (the last starts
              from its loss / M), backward through my blocks, send dL/dx_m to s-1

Activations and their gradients travel point to point. Each stage idles while the
pipeline fills and drains: the bubble, (pp - 1) / (M + pp - 1) of the step in the ideal
schedule, shrinks as M grows; `Pipeline.wait_seconds` measures what this stage spent
waiting for its neighbours.
"""

from __future__ import annotations

import time

import minigrad
from minigrad import Tensor, nn
from minigrad.nn import functional as F


def stage_blocks(n_layer: int, stages: int, stage: int) -> range:
    """The blocks of `stage`: n_layer split as evenly as possible, earlier stages one
    more when it does not divide."""
    if n_layer < stages:
        raise ValueError(f"--parallel pp={stages}: the model has {n_layer} layers, fewer "
                         "than the stages (each stage needs at least one block)")
    per, extra = divmod(n_layer, stages)
    lo = stage * per + min(stage, extra)
    return range(lo, lo + per + (stage < extra))


def ideal_bubble(stages: int, micro_batches: int) -> float:
    """GPipe's idle fraction of a step: (p - 1) / (m + p - 1)."""
    return (stages - 1) / (micro_batches + stages - 1)


class Pipeline:
    """One stage's part of the model and its schedule; `comm` joins the stages."""

    def __init__(self, model, comm):
        self.comm, self.stages, self.stage = comm, comm.size, comm.rank
        self.first, self.last = self.stage == 0, self.stage == self.stages - 1
        self.blocks = stage_blocks(model.config.n_layer, self.stages, self.stage)
        self.wait_seconds = 0.0  # time spent in receives (the bubble and the transfers)
        tied = model.config.tie_weights
        model.h = nn.ModuleList([model.h[i] for i in self.blocks])
        if not self.first and hasattr(model, "wpe"):
            del model.wpe
        if not (self.first or (self.last and tied)):
            del model.wte
        if not self.last:
            for name in ("ln_f", "lm_head"):
                if hasattr(model, name):
                    delattr(model, name)
        # The tied embedding lives on the first and the last stage.
        self.tied = comm.split(0 if tied and (self.first or self.last) else None)
        self.model = model

    def global_name(self, name: str) -> str:
        if name.startswith("h."):
            index, rest = name[2:].split(".", 1)
            return f"h.{self.blocks.start + int(index)}.{rest}"
        return name

    def _recv(self, shape, dtype, source):
        started = time.perf_counter()
        array = self.comm.recv(shape, dtype, source)
        self.wait_seconds += time.perf_counter() - started
        return array

    def _forward(self, ids, targets, device):
        """One micro-batch through my blocks: (input tensor or None, output, loss)."""
        model = self.model
        B, T = ids.shape
        if self.first:
            x_in, x = None, model.embed(minigrad.tensor(ids, device=device))
        else:
            dtype = next(iter(model.parameters())).dtype
            x_in = Tensor(self._recv((B, T, model.config.n_embd), dtype, self.stage - 1),
                          requires_grad=minigrad.is_grad_enabled())
            x = x_in
        for block in model.h:
            x = block(x, model.rope)
        if not self.last:
            self.comm.send(x.data, self.stage + 1)
            return x_in, x, None
        logits = model.head(x)  # (B, T, V): one row per position, as in PyTorch
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               minigrad.tensor(targets, device=device).reshape(-1))
        return x_in, x, loss

    def train_step(self, micro_batches, device):
        """GPipe forward of all micro-batches, then their backward; the summed loss on
        the last stage (None elsewhere)."""
        k = len(micro_batches)
        passes = [self._forward(ids, targets, device) for ids, targets in micro_batches]
        total = None
        for x_in, out, loss in passes:
            if self.last:
                (loss * (1.0 / k)).backward()
                total = loss.detach() if total is None else total + loss.detach()
            else:
                grad = self._recv(out.shape, out.dtype, self.stage + 1)
                out.backward(Tensor(grad))
            if not self.first:
                self.comm.send(x_in.grad.data, self.stage - 1)
        if self.tied is not None and self.tied.size > 1:  # sum the tied embedding's grads
            wte = self.model.wte.weight
            if wte.grad is None:
                wte.grad = minigrad.zeros_like(wte)
            wte.grad = Tensor(self.tied.all_reduce(wte.grad.data))
        return total

    def mean_loss(self, batches, device) -> float | None:
        """Forward only over (ids, targets) batches; the mean loss on the last stage."""
        model, total, windows = self.model, 0.0, 0
        was_training = model.training
        model.eval()
        try:
            with minigrad.no_grad():
                for ids, targets in batches:
                    _, _, loss = self._forward(ids, targets, device)
                    if self.last:
                        total += loss.item() * len(ids)
                    windows += len(ids)
        finally:
            model.train(was_training)
        return total / windows if self.last else None
