"""Optimizer step time: minigrad's flat-buffer path (updated in 256 KiB blocks, and as
one whole-buffer block) vs its per-parameter path, with torch.optim (for-loop and
foreach) alongside, on the CPU.

Three parameter sets: the parameters of the "tiny" GPT (4 layers, n_embd 128: 52
tensors, 0.8M numbers) and of the "small" one (6 layers, n_embd 384: 76 tensors, 10.8M
numbers, matrices up to 2.4 MB), and many small tensors (400 tensors of 32 to 1024
numbers), where the per-tensor Python overhead dominates. Gradients are set once (steps
do not change them); one timing is `steps` optimizer steps (a fifth of that for the
small GPT). Rounds alternate between the engines so machine noise hits all alike; the
reported time per step is the median over rounds.

    python -m benchmarks optimizers [--rounds 7] [--steps 20] [--out PATH]

Prints a table and writes benchmarks/results/optimizers.json.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch

import minigrad as mg
from benchmarks.timing import interleave, print_table, write_report
from minigrad import nn, optim

RESULTS = Path(__file__).parent / "results" / "optimizers.json"


def gpt_shapes(vocab=65, block=64, n_layer=4, n_embd=128) -> list[tuple]:
    """The parameter shapes of a GPT-2-style model (tied head), in model order."""
    block_shapes = [(n_embd,), (n_embd,), (3 * n_embd, n_embd), (3 * n_embd,), (n_embd, n_embd),
                    (n_embd,), (n_embd,), (n_embd,), (4 * n_embd, n_embd), (4 * n_embd,),
                    (n_embd, 4 * n_embd), (n_embd,)]
    return [(vocab, n_embd), (block, n_embd)] + block_shapes * n_layer + [(n_embd,), (n_embd,)]


def many_small_shapes(n=400) -> list[tuple]:
    return [(32,) if i % 2 else (32, 32) for i in range(n)]


SCENARIOS = {"gpt-tiny": gpt_shapes(),
             "gpt-small": gpt_shapes(block=256, n_layer=6, n_embd=384),
             "many-small": many_small_shapes()}


def make_engines(shapes, optimizer_name: str) -> dict:
    """name -> a function running one optimizer step, all starting from the same values."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = {"AdamW": lambda p, flat: optim.AdamW(p, lr=1e-3, weight_decay=0.1, flat=flat),
            "SGD-momentum": lambda p, flat: optim.SGD(p, lr=1e-3, momentum=0.9, flat=flat)}
    theirs = {"AdamW": lambda p, fe: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.1, foreach=fe),
              "SGD-momentum": lambda p, fe: torch.optim.SGD(p, lr=1e-3, momentum=0.9,
                                                            foreach=fe)}
    engines = {}
    cpu = mg.get_device("cpu")
    blocked = cpu.block_bytes
    for label, flat, block_bytes in (("minigrad flat", None, blocked),
                                     ("minigrad flat 1 block", None, None),
                                     ("minigrad per-param", False, blocked)):
        params = [nn.Parameter(mg.tensor(v.copy())) for v in values]
        for p, g in zip(params, grads):
            p.grad = mg.tensor(g)
        optimizer = ours[optimizer_name](params, flat)
        cpu.block_bytes = block_bytes  # the first step lays out the flat buffers
        optimizer.step()
        cpu.block_bytes = blocked
        engines[label] = optimizer.step
    for label, foreach in (("torch for-loop", False), ("torch foreach", True)):
        params = [torch.tensor(v.copy(), requires_grad=True) for v in values]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        engines[label] = torch.no_grad()(theirs[optimizer_name](params, foreach).step)
    return engines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for scenario, shapes in SCENARIOS.items():
        for optimizer_name in ("AdamW", "SGD-momentum"):
            steps = max(1, args.steps // 5) if scenario == "gpt-small" else args.steps
            # The warm-up step also builds the flat layout.
            samples = interleave(make_engines(shapes, optimizer_name), args.rounds,
                                 repeats=steps)
            rows.append({"scenario": scenario, "optimizer": optimizer_name,
                         "tensors": len(shapes), "numbers": int(sum(np.prod(s) for s in shapes)),
                         "us_per_step": {k: round(v.median().wall * 1e6, 1)
                                         for k, v in samples.items()}})
    engines = list(rows[0]["us_per_step"])
    table = []
    for row in rows:
        t = row["us_per_step"]
        table.append([row["scenario"], row["optimizer"], row["tensors"],
                      *(f"{t[e]:.1f}" for e in engines),
                      f"{t['minigrad per-param'] / t['minigrad flat']:.2f}x"])
    print_table(["scenario", "optimizer", "tensors", *(f"{e} us" for e in engines),
                 "per-param/flat"], table, labels=2)
    write_report(args.out, {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "rounds": args.rounds, "steps_per_round": args.steps, "torch_threads": 1,
        "block_bytes": mg.get_device("cpu").block_bytes,
        "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
