"""CPU vs GPU: minigrad on NumPy and on CuPy against PyTorch eager on the CPU and CUDA.

Rows are the pieces of a GPT training step, each forward + backward: a matmul (the MLP's
first projection, (B*T, C) @ (C, 4C)), softmax + cross-entropy over the vocabulary,
layer norm, causal attention over (B, H, T, C/H); then the whole training step (forward,
backward, AdamW) of the GPT. Columns are the four engines; one whose backend is missing
on this machine is reported as "n/a (reason)". All float32, TF32 off.

Timing: two warm-up calls first (allocations, kernel compilation, optimizer state), then
rounds that alternate between the engines so machine noise hits all alike; a round
repeats the call for about 50 ms and the result is the median over rounds. CPU engines
are timed with perf_counter, GPU engines with CUDA events around the round (no host
sync inside it). tokens/s is B*T over the time of one call;
MFU is the call's matmul FLOPs per second (attention counted over the full T x T square
and the step as `GPT.flops_per_token`, the PaLM accounting) over the float32 matmul peak
measured on that device (NumPy GEMM for the CPU, a CUDA GEMM for the GPU); the cross-
entropy and layer norm rows do no matmul and have no MFU.

    python -m benchmarks backends [--preset small|quick] [--rounds 5] [--engines ...]

The CPU engines use every core unless OPENBLAS_NUM_THREADS is set (PyTorch gets the same
count); on a shared machine `OPENBLAS_NUM_THREADS=1` gives steadier CPU figures.

The "small" preset is the GPU reference model (6 layers, 6 heads, width 384, block 256,
batch 64, character vocabulary); "quick" is a model small enough for a CPU-only run.
Prints a table, writes benchmarks/results/backends.json and backends.png.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

import minigrad
import minigrad.nn.functional as F
from benchmarks.timing import Timing, interleave, print_table, time_calls, write_report
from gpt.hardware import matmul_peak_flops
from gpt.model import GPT, GPTConfig
from minigrad import optim
from minigrad.io.atomic import atomic_write
from tests.torch_gpt import from_minigrad

RESULTS = Path(__file__).parent / "results"
PRESETS = {
    "small": dict(batch=64, block=256, n_layer=6, n_head=6, n_embd=384, vocab=65),
    "quick": dict(batch=4, block=64, n_layer=2, n_head=4, n_embd=128, vocab=65),
}
ENGINES = ("minigrad-numpy", "minigrad-cupy", "torch-cpu", "torch-cuda")
WORKLOADS = ("matmul", "cross_entropy", "layer_norm", "attention", "train_step")
# Floors for the "small" preset on one H100 (training step tokens/s).
FLOORS = {"minigrad-cupy / torch-cuda": 1.0, "minigrad-cupy / minigrad-numpy": 30.0}
ROUND_SECONDS = 0.05  # a timed round repeats a call for about this long ...
MAX_REPEATS = 50  # ... but at most this many times


# -- engines ----------------------------------------------------------------------------
def unavailable(engine: str) -> str | None:
    """Why an engine cannot run here, or None."""
    if engine == "minigrad-cupy":
        try:
            minigrad.get_device("cuda")
        except RuntimeError as exc:
            return str(exc).split(". Install")[0]
    if engine == "torch-cuda" and not torch.cuda.is_available():
        return ("PyTorch has no CUDA support in this build" if torch.version.cuda is None
                else "PyTorch finds no CUDA device")
    return None


def cpu_threads() -> int:
    """Threads of the CPU engines: NumPy's BLAS reads OPENBLAS_NUM_THREADS at import (all
    cores when unset); PyTorch is given the same number."""
    return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


def on_gpu(engine: str) -> bool:
    return engine in ("minigrad-cupy", "torch-cuda")


class Shapes:
    def __init__(self, batch, block, n_layer, n_head, n_embd, vocab):
        self.B, self.T, self.H, self.C, self.V = batch, block, n_head, n_embd, vocab
        self.M, self.D = batch * block, n_embd // n_head
        self.config = GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer,
                                n_head=n_head, n_embd=n_embd)

    def flops(self, workload: str, model) -> float | None:
        """Matmul FLOPs of one forward + backward (backward = 2x forward)."""
        if workload == "matmul":
            return 6.0 * self.M * self.C * 4 * self.C
        if workload == "attention":
            return 12.0 * self.B * self.H * self.T * self.T * self.D
        if workload == "train_step":
            return float(model.flops_per_token() * self.M)
        return None


def inputs(s: Shapes, seed: int = 0) -> dict:
    """The same host arrays for every engine."""
    rng = np.random.default_rng(seed)
    f = lambda *shape, scale=1.0: (rng.standard_normal(shape) * scale).astype(np.float32)
    return {
        "x": f(s.M, s.C), "w": f(s.C, 4 * s.C, scale=s.C ** -0.5), "g_mm": f(s.M, 4 * s.C),
        "logits": f(s.M, s.V), "targets": rng.integers(0, s.V, s.M),
        "ln_w": f(s.C), "ln_b": f(s.C), "g_ln": f(s.M, s.C),
        "q": f(s.B, s.H, s.T, s.D), "k": f(s.B, s.H, s.T, s.D), "v": f(s.B, s.H, s.T, s.D),
        "g_att": f(s.B, s.H, s.T, s.D),
        "ids": rng.integers(0, s.V, (s.B, s.T)), "next": rng.integers(0, s.V, (s.B, s.T)),
    }


def clear(*tensors) -> None:
    """Reset .grad (minigrad and torch alike) so each timed backward starts from none."""
    for tensor in tensors:
        tensor.grad = None


def minigrad_calls(device: str, s: Shapes, data: dict) -> tuple[dict, object]:
    """workload -> a closure running one forward + backward on `device`; and the GPT."""
    t = lambda name, grad=False: minigrad.tensor(data[name], device=device, requires_grad=grad)
    x, w, logits, ln_w, ln_b = t("x", True), t("w", True), t("logits", True), t("ln_w", True), \
        t("ln_b", True)
    q, k, v = t("q", True), t("k", True), t("v", True)
    targets, g_mm, g_ln, g_att = t("targets"), t("g_mm"), t("g_ln"), t("g_att")
    model = GPT(s.config, generator=minigrad.Generator(0)).to(device)
    opt = optim.AdamW(model.optimizer_groups(0.1), lr=1e-4)
    ids, nxt = t("ids"), t("next")

    def train_step():
        opt.zero_grad()
        _, loss = model(ids, nxt)
        loss.backward()
        opt.step()

    calls = {
        "matmul": lambda: (clear(x, w), (x @ w).backward(g_mm)),
        "cross_entropy": lambda: (clear(logits), F.cross_entropy(logits, targets).backward()),
        "layer_norm": lambda: (clear(x, ln_w, ln_b),
                               F.layer_norm(x, (s.C,), ln_w, ln_b).backward(g_ln)),
        "attention": lambda: (clear(q, k, v), F.scaled_dot_product_attention(
            q, k, v, is_causal=True).backward(g_att)),
        "train_step": train_step,
    }
    return calls, model


def torch_calls(device: str, s: Shapes, data: dict, model) -> dict:
    """The same calls in PyTorch eager; the step on a twin of the minigrad GPT."""
    t = lambda name, grad=False: torch.tensor(data[name], device=device, requires_grad=grad)
    x, w, logits, ln_w, ln_b = t("x", True), t("w", True), t("logits", True), t("ln_w", True), \
        t("ln_b", True)
    q, k, v = t("q", True), t("k", True), t("v", True)
    targets, g_mm, g_ln, g_att = t("targets"), t("g_mm"), t("g_ln"), t("g_att")
    twin = from_minigrad(model, dtype=torch.float32).to(device)
    opt = torch.optim.AdamW(twin.optimizer_groups(0.1), lr=1e-4)
    ids, nxt = t("ids"), t("next")

    def train_step():
        opt.zero_grad()
        _, loss = twin(ids, nxt)
        loss.backward()
        opt.step()

    return {
        "matmul": lambda: (clear(x, w), (x @ w).backward(g_mm)),
        "cross_entropy": lambda: (clear(logits), TF.cross_entropy(logits, targets).backward()),
        "layer_norm": lambda: (clear(x, ln_w, ln_b),
                               TF.layer_norm(x, (s.C,), ln_w, ln_b).backward(g_ln)),
        "attention": lambda: (clear(q, k, v), TF.scaled_dot_product_attention(
            q, k, v, is_causal=True).backward(g_att)),
        "train_step": train_step,
    }


# -- timing ---------------------------------------------------------------------------------
def cuda_events(engine: str):
    """(a new CUDA timing event, seconds between two recorded events) for the engine."""
    if engine == "minigrad-cupy":
        import cupy

        return cupy.cuda.Event, lambda start, end: cupy.cuda.get_elapsed_time(start, end) / 1e3
    return (lambda: torch.cuda.Event(enable_timing=True),
            lambda start, end: start.elapsed_time(end) / 1e3)


def timer(engine: str):
    """A function (call, repeats) -> Timing per call, right for the engine's device: on a
    GPU, "wall" is the time between CUDA events around the round (no host sync inside)."""
    if not on_gpu(engine):
        return time_calls
    new_event, seconds = cuda_events(engine)

    def gpu_time(call, repeats):
        start, end = new_event(), new_event()
        cpu = time.process_time()
        start.record()
        for _ in range(repeats):
            call()
        end.record()
        end.synchronize()
        return Timing(seconds(start, end) / repeats, (time.process_time() - cpu) / repeats)
    return gpu_time


def gpu_peak_flops(engines: list[str]) -> float:
    """float32 GEMM FLOP/s on the GPU (TF32 off), measured with whichever engine runs."""
    if "minigrad-cupy" in engines:
        return matmul_peak_flops("cuda", size=4096)
    a = torch.randn(4096, 4096, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    for _ in range(3):
        a @ a
    torch.cuda.synchronize()
    seconds = timer("torch-cuda")(lambda: a @ a, 10).wall
    return 2 * 4096 ** 3 / seconds


# -- report -----------------------------------------------------------------------------------
def run(preset: str, engines: list[str], rounds: int) -> dict:
    s = Shapes(**PRESETS[preset])
    data = inputs(s)
    torch.set_num_threads(cpu_threads())
    torch.backends.cuda.matmul.allow_tf32 = False
    reasons = {e: unavailable(e) for e in engines}
    live = [e for e in engines if reasons[e] is None]
    model = None
    calls = {}
    for engine in live:
        if engine.startswith("minigrad"):
            calls[engine], model = minigrad_calls("cuda" if on_gpu(engine) else "cpu", s, data)
    if model is None:
        model = GPT(s.config, generator=minigrad.Generator(0))
    for engine in live:
        if engine.startswith("torch"):
            calls[engine] = torch_calls("cuda" if on_gpu(engine) else "cpu", s, data, model)

    peaks = {"cpu": matmul_peak_flops("cpu", size=1024, min_seconds=1.0)}
    if any(on_gpu(e) for e in live):
        peaks["gpu"] = gpu_peak_flops(live)
    repeats = {}  # calls per timed round: enough for about ROUND_SECONDS
    for engine in live:
        for workload in WORKLOADS:
            for _ in range(2):  # warm-up: allocation pools, kernel compilation, optimizer state
                calls[engine][workload]()
            once = timer(engine)(calls[engine][workload], 1).wall
            repeats[engine, workload] = int(min(MAX_REPEATS, max(1, ROUND_SECONDS / once)))
    keys = [(engine, workload) for workload in WORKLOADS for engine in live]
    samples = interleave({key: calls[key[0]][key[1]] for key in keys}, rounds, repeats=repeats,
                         warmup=0, timers={key: timer(key[0]) for key in keys})

    results = {}
    for workload in WORKLOADS:
        row = results[workload] = {}
        flops = s.flops(workload, model)
        for engine in engines:
            if reasons[engine] is not None:
                row[engine] = {"n/a": reasons[engine]}
                continue
            seconds = samples[engine, workload].median().wall
            peak = peaks["gpu" if on_gpu(engine) else "cpu"]
            row[engine] = {"ms": seconds * 1e3, "tokens_per_s": s.M / seconds,
                           "mfu": None if flops is None else flops / seconds / peak,
                           "calls_per_round": repeats[engine, workload],
                           "ms_samples": [t * 1e3 for t in samples[engine, workload].wall]}
    return {"benchmark": "backends", "preset": preset, "shapes": PRESETS[preset],
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "cpu_threads": cpu_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "numpy": np.__version__, "torch": torch.__version__, "rounds": rounds,
            "peak_tflops": {k: v / 1e12 for k, v in peaks.items()},
            "engines": {e: reasons[e] or "measured" for e in engines},
            "results": results, "floors": floors(results, preset)}


def floors(results: dict, preset: str) -> dict:
    """The GPU floors on the training step, where both sides were measured."""
    step = results["train_step"]
    out = {}
    for name, floor in FLOORS.items():
        a, b = name.split(" / ")
        if "ms" in step.get(a, {}) and "ms" in step.get(b, {}):
            ratio = step[a]["tokens_per_s"] / step[b]["tokens_per_s"]
            out[name] = {"ratio": ratio, "floor": floor, "met": ratio >= floor,
                         "preset": preset}
        else:
            out[name] = {"floor": floor, "ratio": None, "note": "unmeasured here"}
    return out


def print_report(report: dict) -> None:
    print(f"preset {report['preset']}: {report['shapes']}; CPU threads "
          f"{report['cpu_threads']}; peaks (TFLOP/s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in report["peak_tflops"].items()))
    table = []
    for workload, row in report["results"].items():
        for engine, r in row.items():
            if "n/a" in r:
                table.append([workload, engine, "n/a", "n/a", "n/a"])
                continue
            mfu = "-" if r["mfu"] is None else f"{r['mfu']:.1%}"
            table.append([workload, engine, f"{r['ms']:.2f}", f"{r['tokens_per_s']:.0f}", mfu])
    print_table(["workload", "engine", "ms", "tokens/s", "MFU"], table, labels=2)
    for engine, status in report["engines"].items():
        if status != "measured":
            print(f"{engine}: n/a ({status})")
    for name, f in report["floors"].items():
        got = "unmeasured" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        print(f"floor {name} >= {f['floor']}x on the training step: {got}")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [e for e, status in report["engines"].items() if status == "measured"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(engines))
    for i, engine in enumerate(engines):
        values = [report["results"][w][engine]["tokens_per_s"] for w in WORKLOADS]
        ax.bar(np.arange(len(WORKLOADS)) + i * width, values, width, label=engine)
    missing = [f"{e}: n/a" for e, status in report["engines"].items() if status != "measured"]
    ax.set_xticks(np.arange(len(WORKLOADS)) + width * (len(engines) - 1) / 2, WORKLOADS)
    ax.set_yscale("log")
    ax.set_ylabel("tokens/s (forward + backward)")
    ax.set_title(f"minigrad vs PyTorch, CPU and GPU ({report['preset']} preset"
                 + (f"; {', '.join(missing)}" if missing else "") + ")", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="small")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--out", type=Path, default=RESULTS / "backends.json")
    args = parser.parse_args(argv)
    report = run(args.preset, args.engines, args.rounds)
    print_report(report)
    write_report(args.out, report)
    plot(report, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
