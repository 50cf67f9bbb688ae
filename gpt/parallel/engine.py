"""`Parallel`: what the Trainer asks of a parallel run, for one process of the layout.

The Trainer stays the one training loop; with `parallel=` it hands these steps over:

- `forward_backward(trainer)`: the step's forward and backward passes (the trainer's
  own, or the pipeline schedule when pp > 1), then the gradients made global (averaged
  over the data-parallel replicas); returns the loss summed over the micro-batches,
  averaged over the replicas (the global batch's loss).
- `mean_loss(model, batches, device)`: the validation loss, computed together.
- `clip_grad_norm_(params, max_norm)`: clipping by the norm of all gradients of all
  ranks, each element counted once.
- `shard_optimizer(optimizer)`: the optimizer itself, or its ZeRO-1 form.
- `save_checkpoint` / `load_checkpoint`: one run folder in the single-process format
  (rank 0 writes, every rank reads its part), so a run continues under any layout.
- `agree(flag)`: whether any rank raised a flag (Ctrl-C): every rank stops at the same
  step.

Only rank 0 (`is_main`) writes files, logs and shows progress.
"""

from __future__ import annotations

import contextlib
import sys
import traceback

from gpt.parallel import checkpoint, gradients
from gpt.parallel.layout import Layout


class Parallel:
    def __init__(self, layout: Layout, world):
        layout.check_world(world.size)
        self.layout, self.world = layout, world
        self.stage, self.replica, self.shard = layout.coordinates(world.rank)
        # Sub-communicators: same color, same group; the key orders the ranks in it.
        self.tp = world.split(self.stage * layout.dp + self.replica, key=self.shard)
        self.dp = world.split(self.stage * layout.tp + self.shard, key=self.replica)
        self.pp = world.split(self.replica * layout.tp + self.shard, key=self.stage)
        self.is_main = world.rank == 0
        self.zero = None  # the ZeRO-1 optimizer, once made
        self.model = None  # this rank's part of the model, once prepared
        self.pipeline = None  # this stage's schedule, when pp > 1
        self._tp_splits: dict = {}  # full-model name -> (axis, sections)
        self._sharded: set = set()  # ids of this rank's tensor-parallel parameters

    def __repr__(self) -> str:
        return (f"Parallel({self.layout}, rank {self.world.rank}: stage {self.stage}, "
                f"replica {self.replica}, shard {self.shard})")

    # -- setting up -----------------------------------------------------------------
    def prepare_model(self, model):
        """This rank's part of `model` (a full GPT, built alike on every rank): every
        replica starts from rank 0's weights."""
        for p in model.parameters():
            p.data = self.world.broadcast(p.data, root=0)
        if self.layout.pp > 1:
            from gpt.parallel.pipeline import Pipeline

            self.pipeline = Pipeline(model, self.pp)  # keeps this stage's blocks only
        self._tp_splits = {}
        if self.layout.tp > 1:
            from gpt.parallel import tensor

            tensor.shard_blocks(model.h, model.config, self.tp)
            self._tp_splits = {f"h.{i}.{key}": split for key, split in
                               tensor.splits(model.config).items()
                               for i in range(model.config.n_layer)}
        names = dict(model.named_parameters())
        self._sharded = {id(names[n]) for n in names if self.global_name(n) in self._tp_splits}
        self.model = model
        return model

    def describe(self, micro_batches: int = 1) -> str:
        """What each rank holds (a collective: every rank calls it; all get the text)."""
        from gpt.parallel.pipeline import ideal_bubble

        model = self.model
        mine = {"params": sum(p.numel() for p in model.parameters()),
                "bytes": sum(p.numel() * p.dtype.itemsize for p in model.parameters()),
                "blocks": (f"blocks {self.pipeline.blocks.start}..{self.pipeline.blocks.stop - 1}"
                           if self.pipeline is not None else "all blocks"),
                "zero": None if self.zero is None else self.zero.memory()}
        ranks = self.world.all_gather_object(mine)
        layout = self.layout
        lines = [f"parallel: {layout} on {self.world.size} processes (rank = (stage x dp + "
                 "replica) x tp + shard)"]
        for rank, r in enumerate(ranks):
            stage, replica, shard = layout.coordinates(rank)
            line = (f"  rank {rank}: stage {stage}, replica {replica}, shard {shard}: "
                    f"{r['params']:,} parameters ({r['bytes'] / 2**20:.2f} MiB), {r['blocks']}")
            if r["zero"] is not None:
                kept, whole = (r["zero"][k] / 2**20 for k in ("optimizer_state_bytes",
                                                               "unsharded_bytes"))
                line += f"; optimizer state {kept:.2f} MiB (ZeRO-1; {whole - kept:.2f} MiB saved)"
            lines.append(line)
        if self.pipeline is not None:
            lines.append(f"  pipeline: {layout.schedule}, {micro_batches} micro-batches, "
                         f"ideal bubble {ideal_bubble(layout.pp, micro_batches):.0%}")
        return "\n".join(lines)

    def shard_optimizer(self, optimizer):
        """ZeRO-1's sharded form of the optimizer with zero=1; else the optimizer."""
        if self.layout.zero:
            from gpt.parallel.zero import Zero1

            self.zero = Zero1(optimizer, self.dp)
            return self.zero
        return optimizer

    def batches(self, tokens, block_size: int, config, shards: int | None = None):
        """This replica's training batches: its own shards of the tokens (see data)."""
        from gpt.parallel.data import ShardedWindows

        return ShardedWindows.for_replica(tokens, block_size, config, shards or self.layout.dp,
                                          self.replica, self.layout.dp)

    # -- a step ---------------------------------------------------------------------
    def forward_backward(self, trainer):
        """The trainer's passes over its micro-batches, then the gradients averaged over
        the replicas; the global batch's summed loss."""
        if self.pipeline is not None:
            k = trainer.config.grad_accum
            micro_batches = [trainer.batches.next_batch() for _ in range(k)]
            total = self.pipeline.train_step(micro_batches, trainer.device,
                                             self.layout.schedule)
        else:
            total = trainer.forward_backward()
        if self.zero is not None:
            self.zero.reduce_scatter_gradients()
        else:
            gradients.average_gradients(self.grad_params(trainer.model), self.dp)
        return self.global_loss(total, trainer.device)

    def mean_loss(self, model, batches, device) -> float:
        """Validation loss: every rank evaluates the same windows (through the pipeline,
        whose last stage tells the others)."""
        from gpt.evaluation import mean_loss

        if self.pipeline is None:
            return mean_loss(model, batches, device)
        loss = self.pipeline.mean_loss(batches, device)
        return self.pp.broadcast_object(loss, root=self.pp.size - 1)

    def grad_params(self, model) -> list:
        return list(model.parameters())

    def global_loss(self, total, device):
        """The replicas' mean of their losses, a 0-d tensor (the last pipeline stage,
        which computes it, broadcasts it to the others first)."""
        from minigrad import Tensor

        xp = device.xp
        if self.pipeline is not None:
            dtype = next(iter(self.model.parameters())).dtype
            local = (xp.reshape(total.data, (1,)) if self.pipeline.last
                     else xp.zeros((1,), dtype=dtype))
            total = Tensor(self.pp.broadcast(local, root=self.pp.size - 1)[0])
        mean = self.dp.all_reduce(xp.reshape(total.data, (1,)))[0] * (1.0 / self.dp.size)
        return Tensor(mean)

    def copies(self, p) -> int:
        """On how many ranks of one replica parameter p's gradient sits: tp for those
        every tensor-parallel rank holds whole, twice that for the tied embedding that
        the first and last pipeline stages both hold."""
        copies = 1 if id(p) in self._sharded else self.layout.tp
        pipeline = self.pipeline
        if (pipeline is not None and pipeline.tied is not None and pipeline.tied.size > 1
                and p is self.model.wte.weight):
            copies *= 2
        return copies

    def norm_weights(self, model) -> list:
        """(tensor whose gradient counts, 1 / copies of it across the world): the model's
        parameters, or with ZeRO-1 the optimizer's slices (each on one replica)."""
        if self.zero is not None:
            weights = self.zero.flat_weights(lambda p: 1.0 / self.copies(p))
            return list(zip(self.zero.shards, weights))
        return [(p, 1.0 / (self.layout.dp * self.copies(p))) for p in self.grad_params(model)]

    def clip_grad_norm_(self, params, max_norm: float):
        from minigrad import Tensor

        weighted = self.norm_weights(self.model)
        norm = gradients.global_grad_norm(weighted, self.world)
        gradients.clip_gradients_([t for t, _ in weighted], norm, max_norm)
        return Tensor(norm)

    def agree(self, flag: bool) -> bool:
        return any(self.world.all_gather_object(bool(flag)))

    # -- checkpoints ----------------------------------------------------------------
    def global_name(self, name: str) -> str:
        """The name in the full model of this rank's parameter `name`."""
        return name if self.pipeline is None else self.pipeline.global_name(name)

    def tp_split(self, name: str):
        """(axis, sections) of a tensor-parallel shard of parameter `name` (a full-model
        name), None if every rank holds it whole."""
        return self._tp_splits.get(name)

    def param_states(self, model, optimizer) -> dict:
        """{parameter: {"step", moments}} of this rank's parameters (full local shapes);
        a collective with ZeRO-1, which gathers the moments from the replicas."""
        return optimizer.state if self.zero is None else self.zero.param_states()

    def load_param_states(self, model, optimizer, states: dict) -> None:
        if self.zero is not None:
            self.zero.load_param_states(states)
            return
        sd = optimizer.state_dict()
        index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups
                                                for p in g["params"])}
        sd["state"] = {index[id(p)]: s for p, s in states.items()}
        optimizer.load_state_dict(sd)

    def save_checkpoint(self, run_dir, model, optimizer, scheduler, **extra) -> None:
        checkpoint.save(self, run_dir, model, optimizer, scheduler, **extra)

    def load_checkpoint(self, run_dir, model, optimizer, scheduler, device=None) -> dict:
        return checkpoint.load(self, run_dir, model, optimizer, scheduler, device)

    # -- failures -------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self):
        """Run a block whose error on this rank must end the whole job: the traceback is
        printed and every process aborted, instead of the others waiting forever for
        this rank in their next collective."""
        try:
            yield self
        except BaseException as exc:
            self.abort(f"{type(exc).__name__}: {exc}", details=traceback.format_exc())

    def abort(self, message: str, code: int = 1, details: str = "") -> None:
        """Say what went wrong on this rank, then end every process of the job (the
        others may be waiting in a collective that will never complete). The report is
        one write, so another rank's abort cannot cut it in half."""
        sys.stderr.write(f"{details}rank {self.world.rank}: {message}; aborting all "
                         f"{self.world.size} processes\n")
        sys.stderr.flush()
        self.world.abort(code)
