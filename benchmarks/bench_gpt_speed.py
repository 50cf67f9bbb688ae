"""GPT training speed: minigrad (NumPy backend) vs PyTorch eager on the CPU.

One training step is forward + backward + AdamW step on a random batch; both models
have the same config, the same weights and the same thread count (the machine's cores).
Rounds alternate between the two so machine noise hits both alike; the per-step time is
the median over rounds. Beside the wall-clock time, the CPU time the process spent per
step (all its threads) shows the work each engine does, which a busy machine inflates
less. MFU (model FLOPs utilisation) is the model's training FLOPs per second
(`GPT.flops_per_token`, the PaLM accounting) over the machine's float32 matmul peak,
measured here with a large NumPy GEMM.

    python -m benchmarks.bench_gpt_speed [--configs tiny small] [--rounds 5]

Prints a table and writes benchmarks/results/gpt_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import minigrad
from gpt.hardware import matmul_peak_flops
from gpt.model import GPT, GPTConfig
from minigrad.optim import AdamW
from tests.torch_gpt import from_minigrad

# Character-level vocabulary (as nanoGPT's shakespeare_char); the "small" config is that
# recipe's model.
CONFIGS = {
    "tiny": dict(model=dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128),
                 batch_size=12, steps_per_round=6),
    "small": dict(model=dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384),
                  batch_size=8, steps_per_round=2),
}
RESULTS = Path(__file__).parent / "results" / "gpt_speed.json"


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def training_step(model, optimizer, ids, targets):
    """A closure running one step; the same code drives both engines."""

    def step():
        optimizer.zero_grad()
        _, loss = model(ids, targets)
        loss.backward()
        optimizer.step()
    return step


def bench_config(name: str, spec: dict, rounds: int) -> dict:
    config = GPTConfig(**spec["model"])
    B, T = spec["batch_size"], config.block_size
    rng = np.random.default_rng(0)
    ids = rng.integers(0, config.vocab_size, size=(B, T))
    targets = rng.integers(0, config.vocab_size, size=(B, T))

    model = GPT(config, generator=minigrad.Generator(0))
    twin = from_minigrad(model, dtype=torch.float32)
    steps = {
        "minigrad": training_step(model, AdamW(model.optimizer_groups(0.1), lr=1e-4),
                                  minigrad.tensor(ids), minigrad.tensor(targets)),
        "torch": training_step(twin, torch.optim.AdamW(twin.optimizer_groups(0.1), lr=1e-4),
                            torch.from_numpy(ids), torch.from_numpy(targets)),
    }
    times = {engine: [] for engine in steps}
    for step in steps.values():
        step()  # warm up: allocations, optimizer state
    n = spec["steps_per_round"]
    for _ in range(rounds):
        for engine, step in steps.items():
            wall, cpu = timed(lambda step=step: [step() for _ in range(n)])
            times[engine].append((wall / n, cpu / n))
    result = {"config": spec["model"], "batch_size": B,
              "flops_per_token": model.flops_per_token(),
              "parameters": model.num_parameters()}
    for engine, samples in times.items():
        step_time = statistics.median(wall for wall, _ in samples)
        result[engine] = {"step_s": step_time, "tokens_per_s": B * T / step_time,
                          "cpu_s_per_step": statistics.median(cpu for _, cpu in samples),
                          "step_s_samples": [wall for wall, _ in samples]}
    result["speedup"] = result["torch"]["step_s"] / result["minigrad"]["step_s"]
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    peak = matmul_peak_flops(size=2048, min_seconds=2.0) / 1e9
    report = {"machine": f"{platform.machine()}, {threads} cores", "threads": threads,
              "numpy": np.__version__, "torch": torch.__version__,
              "matmul_peak_gflops": peak, "results": {}}
    print(f"float32 matmul peak (NumPy, 2048^3): {peak:.1f} GFLOP/s, {threads} threads")
    print(f"{'config':<7} {'engine':<9} {'step ms':>9} {'cpu ms':>9} {'tokens/s':>10} "
          f"{'MFU':>7} {'vs torch':>9}")
    for name in args.configs:
        result = bench_config(name, CONFIGS[name], args.rounds)
        for engine in ("minigrad", "torch"):
            r = result[engine]
            r["mfu"] = result["flops_per_token"] * r["tokens_per_s"] / (peak * 1e9)
            ratio = result["torch"]["step_s"] / r["step_s"]
            print(f"{name:<7} {engine:<9} {r['step_s'] * 1e3:>9.1f} "
                  f"{r['cpu_s_per_step'] * 1e3:>9.1f} {r['tokens_per_s']:>10.0f} "
                  f"{r['mfu']:>7.1%} {ratio:>8.2f}x")
        report["results"][name] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
