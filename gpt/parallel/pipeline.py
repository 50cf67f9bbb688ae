"""Pipeline parallelism: contiguous blocks of layers per rank, micro-batches in a
GPipe schedule (Huang et al. 2019) or 1F1B (Narayanan et al. 2021).

Stage s of pp holds blocks [lo_s, hi_s) (as even a split as n_layer allows); the first
also the embeddings, the last the final norm and the output head (and, with tied
weights, its own copy of the token embedding, whose gradients the two stages add up).
A step with M micro-batches (the trainer's grad_accum), GPipe:

    forward:  for m in 1..M: receive x_m from stage s-1 (the first embeds the ids),
              run my blocks, send the output to stage s+1 (the last computes the loss)
    backward: for m in 1..M: receive dL/d(output_m) from stage s+1 (the last starts
              from its loss / M), backward through my blocks, send dL/dx_m to s-1

1F1B runs the same passes in another order (`schedule_order`), so that a stage holds at
most pp micro-batches' activations instead of M. Activations and their gradients travel
point to point. Each stage idles while the pipeline fills and drains: the bubble,
(pp - 1) / (M + pp - 1) of the step in both schedules, shrinks as M grows.
"""

from __future__ import annotations

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
    """The idle fraction of a step, GPipe's and 1F1B's: (p - 1) / (m + p - 1)."""
    return (stages - 1) / (micro_batches + stages - 1)


class Pipeline:
    """One stage's part of the model and its schedule; `comm` joins the stages."""

    def __init__(self, model, comm):
        self.comm, self.stages, self.stage = comm, comm.size, comm.rank
        self.first, self.last = self.stage == 0, self.stage == self.stages - 1
        self.blocks = stage_blocks(model.config.n_layer, self.stages, self.stage)
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

    # -- one micro-batch's passes -----------------------------------------------------
    def _forward(self, m: int, ids, targets, device, received) -> None:
        """Micro-batch m through my blocks (the first stage embeds its ids; the last
        computes its loss)."""
        model = self.model
        if self.first:
            x_in, x = None, model.embed(minigrad.tensor(ids, device=device))
        else:
            x_in = x = Tensor(received.pop(("act", m)), requires_grad=minigrad.is_grad_enabled())
        for block in model.h:
            x = block(x, model.rope)
        self.inputs[m], self.outputs[m] = x_in, x
        if self.last:
            logits = model.head(x)  # (B, T, V): one row per position, as in PyTorch
            self.losses[m] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             minigrad.tensor(targets, device=device).reshape(-1))

    def _backward(self, m: int, k: int, received) -> None:
        out = self.outputs.pop(m)
        if self.last:  # d(sum_m loss_m / k): the mean loss over the micro-batches
            (self.losses[m] * (1.0 / k)).backward()
        else:
            out.backward(Tensor(received.pop(("grad", m))))

    # -- the schedule -----------------------------------------------------------------
    def actions(self, order) -> list:
        """The (what, micro-batch) steps of `order` with their transfers: receive an
        activation before a forward (from stage s-1), send it after (to s+1); receive a
        gradient before a backward (from s+1), send one after (to s-1)."""
        steps = []
        for op, m in order:
            if op == "F":
                steps += [("recv", "act", m)] * (not self.first) + [("F", m)]
                steps += [("send", "act", m)] * (not self.last)
            else:
                steps += [("recv", "grad", m)] * (not self.last) + [("B", m)]
                steps += [("send", "grad", m)] * (not self.first)
        return steps

    def _peer(self, kind: str, direction: str) -> int:
        """Activations flow to s+1 (and come from s-1), gradients the other way."""
        downstream = (kind == "act") == (direction == "send")
        return self.stage + 1 if downstream else self.stage - 1

    def run(self, order, micro_batches, device) -> None:
        """Run `order` on this stage. A send followed by a receive from the same
        neighbour (1F1B's steady state) is one send_recv: two blocking calls in opposite
        directions could each wait for the other."""
        k, steps, received = len(micro_batches), self.actions(order), {}
        width = self.model.config.n_embd
        shape = [(*ids.shape, width) for ids, _ in micro_batches]  # (B, T, C) each
        dtype = next(iter(self.model.parameters())).dtype
        self.inputs, self.outputs, self.losses = {}, {}, {}
        i = 0
        while i < len(steps):
            step = steps[i]
            if step[0] == "F":
                self._forward(step[1], *micro_batches[step[1]], device, received)
            elif step[0] == "B":
                self._backward(step[1], k, received)
            elif step[0] == "recv":
                _, kind, m = step
                received[kind, m] = self.comm.recv(shape[m], dtype, self._peer(kind, "recv"))
            else:
                _, kind, m = step
                array = (self.outputs[m].data if kind == "act" else
                         self.inputs.pop(m).grad.data)
                peer = self._peer(kind, "send")
                after = steps[i + 1] if i + 1 < len(steps) else None
                if after and after[0] == "recv" and self._peer(after[1], "recv") == peer:
                    received[after[1], after[2]] = self.comm.send_recv(
                        array, peer, shape[after[2]], dtype, peer)
                    i += 1
                else:
                    self.comm.send(array, peer)
            i += 1

    def train_step(self, micro_batches, device, schedule: str = "gpipe"):
        """Forward and backward of every micro-batch in `schedule`'s order; the summed
        loss on the last stage (None elsewhere)."""
        self.run(schedule_order(schedule, self.stages, self.stage, len(micro_batches)),
                 micro_batches, device)
        total = None
        if self.last:
            for loss in self.losses.values():
                total = loss.detach() if total is None else total + loss.detach()
        self.inputs, self.outputs, self.losses = {}, {}, {}
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
                for batch in batches:
                    self.run([("F", 0)], [batch], device)
                    if self.last:
                        total += self.losses[0].item() * len(batch[0])
                    windows += len(batch[0])
        finally:
            self.inputs, self.outputs, self.losses = {}, {}, {}
            model.train(was_training)
        return total / windows if self.last else None


def schedule_order(schedule: str, stages: int, stage: int, k: int) -> list:
    """The order of stage `stage`'s passes over k micro-batches: [("F" or "B", m), ...].

    GPipe: every forward, then every backward (k micro-batches' activations held).
    1F1B (PipeDream-Flush, Narayanan et al. 2021): stages - stage - 1 warm-up forwards,
    then one forward, one backward, ..., then the remaining backwards: at most
    `stages` micro-batches' activations held, the same bubble."""
    if schedule == "gpipe":
        return [("F", m) for m in range(k)] + [("B", m) for m in range(k)]
    warmup = min(stages - stage - 1, k)
    order = [("F", m) for m in range(warmup)]
    for m in range(k - warmup):
        order += [("F", warmup + m), ("B", m)]
    return order + [("B", m) for m in range(k - warmup, k)]
