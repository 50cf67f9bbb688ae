"""Fine-tuning step time and memory: full fine-tuning vs LoRA adapters, side by side.

One step is what `gpt.train.Trainer` does for instruction tuning: forward on a padded
batch with the prompt masked out of the targets, backward, clipping, an AdamW step over
the trainable parameters (`GPT.optimizer_groups`), zero_grad. The model is the one the
fine-tuning experiments start from (4 layers, width 128, block 128, vocabulary 2,051), or
`--from RUN`'s weights; batches are fixed random token ids. Rounds alternate between the
modes, so the machine's load hits them alike; the step time is the median over rounds.
Memory per mode: the optimizer's state, the gradients, and the peak of NumPy allocations
during one step (tracemalloc: activations, gradients and temporaries).

    python -m benchmarks finetune [--rounds 5] [--steps 3] [--from RUN] [--out PATH]

Prints a table and writes benchmarks/results/finetune.json.
"""

from __future__ import annotations

import argparse
import platform
import tracemalloc
from pathlib import Path

import numpy as np

import minigrad as mg
from benchmarks.timing import interleave, print_table, write_report
from gpt.finetune.examples import IGNORE_INDEX
from gpt.model import GPT, GPTConfig
from minigrad import optim
from minigrad.nn import lora
from minigrad.nn.utils import clip_grad_norm_

RESULTS = Path(__file__).parent / "results" / "finetune.json"
CONFIG = dict(vocab_size=2051, block_size=128, n_layer=4, n_head=4, n_embd=128)
MODES = {"full": None, "lora r8 all": ("all", 8), "lora r8 attention": ("attention", 8)}


def make_model(mode, run) -> GPT:
    if run is None:
        model = GPT(GPTConfig(**CONFIG), generator=mg.Generator(0))
    else:
        from gpt.finetune.runs import load_start

        model = load_start(run)[0]
    if MODES[mode] is not None:
        targets, rank = MODES[mode]
        lora.inject_lora(model, rank, 2.0 * rank, targets=targets, generator=mg.Generator(1))
    return model.train()


def batch(config, size=8, seed=0):
    """Token ids (size, block) and targets with the first quarter of each row masked."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config.vocab_size, (size, config.block_size + 1))
    targets = ids[:, 1:].copy()
    targets[:, :config.block_size // 4] = IGNORE_INDEX
    return mg.tensor(ids[:, :-1]), mg.tensor(targets)


def make_step(model, inputs, targets):
    opt = optim.AdamW(model.optimizer_groups(0.1), lr=1e-4)
    params = [p for g in opt.param_groups for p in g["params"]]

    def step():
        _, loss = model(inputs, targets)
        loss.backward()
        clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        return loss

    return step, opt, params


def state_bytes(opt) -> int:
    return sum(v.nbytes for s in opt.state.values() for v in s.values() if hasattr(v, "nbytes"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks finetune",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round")
    parser.add_argument("--from", dest="start", default=None, metavar="RUN")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    calls, memory = {}, {}
    for mode in MODES:
        model = make_model(mode, args.start)
        step, opt, params = make_step(model, *batch(model.config))
        step()  # optimizer state exists from here on
        tracemalloc.start()
        _, loss = model(*batch(model.config))
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        grads = sum(p.grad.data.nbytes for p in params if p.grad is not None)
        opt.zero_grad()
        trainable = sum(p.numel() for p in params)
        memory[mode] = {"trainable": trainable,
                        "total": sum(p.numel() for p in model.parameters()),
                        "optimizer_state_bytes": state_bytes(opt), "grad_bytes": grads,
                        "peak_step_alloc_bytes": peak}
        calls[mode] = step
    samples = interleave(calls, rounds=args.rounds, repeats=args.steps, warmup=1)
    rows, report = [], {"machine": platform.machine(), "config": CONFIG, "from": args.start,
                        "rounds": args.rounds, "steps_per_round": args.steps, "modes": {}}
    for mode, s in samples.items():
        m = memory[mode]
        median = s.median()
        report["modes"][mode] = {**m, "step_wall_s": median.wall, "step_cpu_s": median.cpu,
                                 "wall_rounds": s.wall}
        rows.append([mode, f"{m['trainable']:,}", f"{m['optimizer_state_bytes'] / 2**20:.2f}",
                     f"{m['grad_bytes'] / 2**20:.2f}",
                     f"{m['peak_step_alloc_bytes'] / 2**20:.1f}", f"{median.wall:.3f}",
                     f"{median.cpu:.3f}"])
    print_table(["mode", "trainable", "AdamW state MiB", "grads MiB", "step peak MiB",
                 "step wall s", "step CPU s"], rows)
    write_report(args.out, report)
    return 0
