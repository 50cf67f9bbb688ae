"""GPT training speed of the loop users run: `gpt train`'s Trainer vs PyTorch on the CPU.

The minigrad side is `gpt.train.Trainer` itself, set up as `python -m gpt train` sets
it up (TrainConfig's defaults: AdamW with betas 0.9/0.99 and weight decay 0.1 on the
Linear matrices, warmup-cosine schedule, global-norm clipping at 1.0, random windows of
the built-in corpus, losses fetched and logged to metrics.jsonl every 10 steps, the
progress bar), one `train_step` plus the trainer's after-step work per call. The PyTorch
side is a nanoGPT-style loop doing the same work on the same batches from the same
weights (`tests/torch_gpt.py`): lr set, batch drawn, forward, backward,
`clip_grad_norm_(1.0)`, `AdamW.step`, `zero_grad`, losses fetched and logged every 10
steps. Three PyTorch columns: eager with `F.scaled_dot_product_attention` (its fastest
eager attention), eager with the twin's manual attention, and `torch.compile` of the
SDPA model (inductor; its failure, if any, is reported instead).

Configs: T (4 layers, 4 heads, width 128, block 64, batch 12), S (6 layers, 6 heads,
width 384, block 256, batch 64), both dropout 0, and `main`, the model and batch of
`python -m gpt train` (dropout 0.1). Rounds alternate the engines (rotating their order)
so machine noise hits all alike; figures are medians over rounds of wall time and of
this process's CPU time per step (all threads). MFU = `GPT.flops_per_token()` x tokens/s
over the float32 matmul peak measured here (a 2048^3 NumPy GEMM, with the OpenBLAS
kernels NumPy runs in this process: the report names them and the OPENBLAS_* variables
that chose them; PyTorch's own BLAS is unaffected by those). Also per config:

- where the time goes: one profiled step each, our `minigrad.profile` per op (plus
  clipping, the optimizer and what lies outside ops) beside `torch.profiler`'s self CPU
  time per aten op, both grouped into the same categories;
- peak RSS of training steps, each engine in a fresh child process (same imports);
- a separate, labelled kernel-only row: forward + backward + AdamW on one fixed batch
  (no clipping, batch sampling or logging) against the manual-attention twin, the
  measurement this benchmark made before it drove the Trainer.

    python -m benchmarks gpt-speed [--configs T S main] [--rounds 5] [--no-compile]
                                   [--quick] [--out PATH]

`--quick` is a smoke test (a one-layer T, two rounds of two steps, no compile). Prints
tables and writes benchmarks/results/gpt_speed.json.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

import minigrad
from benchmarks.timing import interleave, print_table, write_report
from bpe.corpus import BUILTIN_NAME, builtin_documents
from gpt.cli import DEFAULT_MODEL
from gpt.data.batches import RandomWindows
from gpt.data.dataset import prepare
from gpt.hardware import matmul_peak_flops
from gpt.model import GPT, GPTConfig
from gpt.train import TrainConfig, Trainer, make_batches
from minigrad.instruments.progress import ProgressBar
from minigrad.optim import AdamW
from minigrad.optim.lr_scheduler import warmup_cosine_lr
from tests import torch_gpt

RESULTS = Path(__file__).parent / "results" / "gpt_speed.json"
_TRAIN_DEFAULTS = TrainConfig()
CONFIGS = {
    "T": dict(model=dict(block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
              batch_size=12, steps_per_round=10, kernel_batch=12),
    "S": dict(model=dict(block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.0),
              batch_size=64, steps_per_round=2, kernel_batch=8),
    "main": dict(model=dict(DEFAULT_MODEL), batch_size=_TRAIN_DEFAULTS.batch_size,
                 steps_per_round=10, kernel_batch=None),
}
QUICK = {"T": dict(CONFIGS["T"], model=dict(CONFIGS["T"]["model"], n_layer=1),
                   steps_per_round=2)}
ENGINES = ("minigrad", "torch-sdpa", "torch-manual", "torch-compile")
# Op-name fragments -> category, for both engines' profiles (first match wins).
CATEGORIES = (
    ("attention", ("attention", "bmm", "softmax", "masked_fill", "tril")),
    ("cross-entropy", ("cross_entropy", "nll_loss", "log_softmax")),
    ("linear / matmul", ("linear", "addmm", "mm", "matmul")),
    ("layer norm", ("layer_norm",)),
    ("gelu", ("gelu",)),
    ("embedding", ("embedding",)),
    ("optimizer", ("optimizer", "adam", "lerp", "addcdiv", "addcmul", "_foreach")),
    ("clip grad norm", ("clip", "norm", "linalg_vector_norm")),
)


# -- the two loops ----------------------------------------------------------------------
def train_config(spec: dict) -> TrainConfig:
    """The CLI's training defaults with the config's batch size."""
    return TrainConfig(batch_size=spec["batch_size"])


def minigrad_loop(model: GPT, tokens, config: TrainConfig, run_dir: Path):
    """One call = one step of the real Trainer (train_step and the after-step work: log
    flush every log_interval steps, evaluation and checkpoints at their intervals)."""
    trainer = Trainer(model, make_batches(tokens, model.config.block_size, config), None,
                      config, run_dir, progress=True, stream=io.StringIO())
    trainer._bar = ProgressBar(config.steps, stream=trainer.stream)  # as fit() makes it
    model.train()

    def step():
        trainer.train_step()
        trainer._after_step()
    return trainer, step


class SdpaAttention(torch_gpt.CausalSelfAttention):
    """The twin's attention through F.scaled_dot_product_attention (nanoGPT's flash path)."""

    def forward(self, x, rope=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))
        y = TF.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.attn_dropout.p if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


def torch_model(model: GPT, attention: str):
    """The PyTorch twin with model's weights; attention 'manual' or 'sdpa'."""
    twin = torch_gpt.from_minigrad(model, dtype=torch.float32)
    if attention == "sdpa":
        for block in twin.h:
            block.attn.__class__ = SdpaAttention
    return twin.train()


def torch_loop(twin, tokens, config: TrainConfig, log_path: Path, compiled: bool = False):
    """One call = one nanoGPT-style step; losses and norms are fetched and logged every
    log_interval steps, as the Trainer does."""
    model = torch.compile(twin) if compiled else twin
    opt = torch.optim.AdamW(twin.optimizer_groups(config.weight_decay), lr=config.lr,
                            betas=(config.beta1, config.beta2))
    batches = RandomWindows(tokens, twin.config.block_size, config.batch_size, seed=config.seed)
    state = {"step": 0, "pending": []}
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (open while the loop lives)

    def step():
        lr = warmup_cosine_lr(state["step"], config.lr, config.warmup, config.steps,
                              config.min_lr)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = (torch.from_numpy(a) for a in batches.next_batch())
        _, loss = model(x, y)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(twin.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["step"] += 1
        state["pending"].append(torch.stack([loss.detach(), norm]))
        if state["step"] % config.log_interval == 0:
            for loss_value, norm_value in torch.stack(state["pending"]).tolist():
                log.write(f'{{"loss": {loss_value}, "grad_norm": {norm_value}}}\n')
            log.flush()
            state["pending"].clear()
    return opt, step


def kernel_steps(model: GPT, batch: int) -> dict:
    """The kernel-only measurement: forward + backward + AdamW on one fixed batch, ours
    against the manual-attention twin (no clipping, sampling or logging)."""
    rng = np.random.default_rng(0)
    ids, targets = (rng.integers(0, model.config.vocab_size, size=(batch, model.config.block_size))
                    for _ in range(2))
    twin = torch_model(model, "manual")
    ours, theirs = AdamW(model.optimizer_groups(0.1), lr=1e-4), torch.optim.AdamW(
        twin.optimizer_groups(0.1), lr=1e-4)

    def step(net, opt, x, y):
        def run():
            opt.zero_grad()
            _, loss = net(x, y)
            loss.backward()
            opt.step()
        return run
    return {"minigrad": step(model, ours, minigrad.tensor(ids), minigrad.tensor(targets)),
            "torch-manual": step(twin, theirs, torch.from_numpy(ids), torch.from_numpy(targets))}


# -- where the time goes ------------------------------------------------------------------
def category(name: str) -> str:
    lowered = name.lower()
    for label, fragments in CATEGORIES:
        if any(f in lowered for f in fragments):
            return label
    return "other ops"


def profile_minigrad(trainer, step) -> dict:
    """Milliseconds per category for one Trainer step: ops (minigrad.profile), clipping
    and the optimizer (timed around their calls), the rest outside ops."""
    import gpt.train

    phases = {"clip grad norm": 0.0, "optimizer": 0.0}
    clip, opt_step = gpt.train.clip_grad_norm_, trainer.optimizer.step

    def timed(label, fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[label] += time.perf_counter() - t0
        return run

    gpt.train.clip_grad_norm_ = timed("clip grad norm", clip)
    trainer.optimizer.step = timed("optimizer", opt_step)
    try:
        t0 = time.perf_counter()
        with minigrad.profile() as prof:
            step()
        wall = time.perf_counter() - t0
    finally:
        gpt.train.clip_grad_norm_ = clip
        del trainer.optimizer.step
    split: dict = {}
    for row in prof.summary():
        split[category(row.name)] = split.get(category(row.name), 0.0) + row.total_time
    # Clipping's and the optimizer's own array work runs outside ops (no Function).
    for label, seconds in phases.items():
        split[label] = split.get(label, 0.0) + seconds
    split["outside ops (Python, data, logging)"] = wall - sum(split.values())
    return {k: v * 1e3 for k, v in split.items()} | {"step": wall * 1e3}


def profile_torch(step) -> dict:
    """Milliseconds per category of one step: torch.profiler's self CPU time per op."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2):  # the profiler's first session pays its own start-up: keep the second
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        wall = time.perf_counter() - t0
    split: dict = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") or "Optimizer" in event.key:
            label = category(event.key)
            split[label] = split.get(label, 0.0) + event.self_cpu_time_total / 1e3
    split["outside ops (Python, data, logging)"] = wall * 1e3 - sum(split.values())
    return split | {"step": wall * 1e3}


# -- memory -------------------------------------------------------------------------------
def status_bytes(field: str) -> int:
    """A size from /proc/self/status (VmRSS: resident now; VmHWM: the peak)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def memory_child(name: str, spec: dict, engine: str, tokens, vocab: int, steps: int,
                 queue) -> None:
    """In a fresh process: build the engine, run one step (optimizer state, caches), reset
    the kernel's peak-RSS mark, run `steps` more and report the RSS before them and the
    peak during them."""
    try:
        torch.set_num_threads(os.cpu_count())
        model, config = GPT(GPTConfig(vocab_size=vocab, **spec["model"]),
                            generator=minigrad.Generator(0)), train_config(spec)
        with tempfile.TemporaryDirectory() as tmp:
            if engine == "minigrad":
                _, step = minigrad_loop(model, tokens, config, Path(tmp))
            else:
                twin = torch_model(model, "sdpa" if engine == "torch-sdpa" else "manual")
                del model
                _, step = torch_loop(twin, tokens, config, Path(tmp) / "log.jsonl")
            step()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS (Linux 4.0+)
            before = status_bytes("VmRSS")
            for _ in range(steps):
                step()
            peak = status_bytes("VmHWM")
        queue.put({"rss_before_mb": before / 2**20, "peak_rss_mb": peak / 2**20})
    except Exception:
        queue.put({"error": traceback.format_exc(limit=3)})


def measure_memory(name: str, spec: dict, engines, tokens, vocab: int, steps: int) -> dict:
    context = multiprocessing.get_context("spawn")
    out = {}
    for engine in engines:
        queue = context.Queue()
        child = context.Process(target=memory_child,
                                args=(name, spec, engine, tokens, vocab, steps, queue))
        child.start()
        out[engine] = queue.get()
        child.join()
    return out


# -- one config -----------------------------------------------------------------------------
def bench_config(name: str, spec: dict, tokens, vocab: int, rounds: int, compile_: bool,
                 peak: float, tmp: Path) -> dict:
    config = GPTConfig(vocab_size=vocab, **spec["model"])
    train = train_config(spec)
    minigrad.manual_seed(train.seed)  # the dropout stream, as cmd_train seeds it
    model = GPT(config, generator=minigrad.Generator(train.seed))
    flops = model.flops_per_token()
    steps, optimizers, errors = {}, {}, {}
    for engine in ENGINES:
        if engine == "torch-compile" and not compile_:
            continue
        if engine == "minigrad":
            continue  # built last: the twins copy the initial weights
        attention = "manual" if engine == "torch-manual" else "sdpa"
        optimizers[engine], steps[engine] = torch_loop(
            torch_model(model, attention), tokens, train, tmp / f"{name}-{engine}.jsonl",
            compiled=engine == "torch-compile")
    trainer, steps["minigrad"] = minigrad_loop(model, tokens, train, tmp / f"{name}-minigrad")
    steps = {e: steps[e] for e in ENGINES if e in steps}
    if "torch-compile" in steps:
        try:  # compiling forward and backward takes the first steps
            t0 = time.perf_counter()
            steps["torch-compile"]()
            steps["torch-compile"]()
            print(f"  {name}: torch.compile warm-up {time.perf_counter() - t0:.1f} s")
        except Exception as exc:  # reported, not fatal: the eager columns stand
            errors["torch-compile"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            print(f"  {name}: torch.compile failed: {errors['torch-compile']}")
            del steps["torch-compile"]
    B, T = spec["batch_size"], config.block_size
    samples = interleave(steps, rounds, repeats=spec["steps_per_round"], rotate=True)
    result = {"model": spec["model"], "batch_size": B, "vocab_size": config.vocab_size,
              "parameters": model.num_parameters(), "flops_per_token": flops,
              "steps_per_round": spec["steps_per_round"], "errors": errors, "engines": {}}
    for engine, times in samples.items():
        median = times.median()
        tokens_per_s = B * T / median.wall
        result["engines"][engine] = {
            "step_s": median.wall, "cpu_s_per_step": median.cpu, "tokens_per_s": tokens_per_s,
            "mfu": flops * tokens_per_s / peak, "step_s_samples": times.wall,
            "cpu_s_samples": times.cpu}
    print(f"  {name}: profiling one step of each engine")
    result["profile_ms"] = {"minigrad": profile_minigrad(trainer, steps["minigrad"])}
    for engine in ("torch-sdpa", "torch-manual"):
        if engine in steps:
            result["profile_ms"][engine] = profile_torch(steps[engine])
    return result


def kernel_row(name: str, spec: dict, vocab: int, rounds: int, peak: float) -> dict:
    config = GPTConfig(vocab_size=vocab, **spec["model"])
    model = GPT(config, generator=minigrad.Generator(0))
    B = spec["kernel_batch"]
    samples = interleave(kernel_steps(model, B), rounds,
                         repeats=max(1, spec["steps_per_round"] // 2), rotate=True)
    row = {"batch_size": B}
    for engine, times in samples.items():
        median = times.median()
        tokens_per_s = B * config.block_size / median.wall
        row[engine] = {"step_s": median.wall, "cpu_s_per_step": median.cpu,
                       "tokens_per_s": tokens_per_s,
                       "mfu": model.flops_per_token() * tokens_per_s / peak}
    return row


# -- report ---------------------------------------------------------------------------------
def print_report(report: dict) -> None:
    rows = []
    for name, r in report["results"].items():
        engines = r["engines"]
        base = engines["minigrad"]
        for engine, e in engines.items():
            rows.append([name, engine, f"{e['step_s'] * 1e3:.1f}",
                         f"{e['cpu_s_per_step'] * 1e3:.1f}",
                         f"{e['tokens_per_s']:,.0f}", f"{e['mfu']:.1%}",
                         f"{base['tokens_per_s'] / e['tokens_per_s']:.2f}x",
                         f"{e['cpu_s_per_step'] / base['cpu_s_per_step']:.2f}x"])
        for engine, err in r["errors"].items():
            rows.append([name, engine, "failed", "", "", "", "", ""])
            print(f"{name} {engine}: {err}")
    print("\nThe Trainer loop (minigrad) vs PyTorch loops doing the same work "
          "(median per step):")
    print_table(["config", "engine", "step ms", "cpu ms", "tokens/s", "MFU",
                 "ours / it (tok/s)", "its cpu / ours"], rows, labels=2)

    for name, r in report["results"].items():
        prof = r["profile_ms"]
        labels = sorted({k for p in prof.values() for k in p if k != "step"},
                        key=lambda k: -prof["minigrad"].get(k, 0.0))
        print(f"\n{name}: where one step's time goes (ms; minigrad.profile per op, "
              "torch.profiler self CPU time)")
        print_table(["category", *prof], [[k, *(f"{p.get(k, 0.0):.1f}" for p in prof.values())]
                                          for k in labels + ["step"]])
        mem = r.get("memory")
        if mem:
            print(f"{name}: peak RSS of training steps (fresh process each): " + ", ".join(
                f"{e} {m['peak_rss_mb']:.0f} MB (before the steps {m['rss_before_mb']:.0f})"
                if "error" not in m else f"{e} failed" for e, m in mem.items()))

    rows = []
    for name, k in report.get("kernel_only", {}).items():
        for engine in ("minigrad", "torch-manual"):
            e = k[engine]
            rows.append([name, k["batch_size"], engine, f"{e['step_s'] * 1e3:.1f}",
                         f"{e['cpu_s_per_step'] * 1e3:.1f}", f"{e['tokens_per_s']:,.0f}",
                         f"{e['mfu']:.1%}",
                         f"{k['minigrad']['tokens_per_s'] / e['tokens_per_s']:.2f}x"])
    if rows:
        print("\nKernel-only (fixed batch, forward + backward + AdamW; no clipping, sampling "
              "or logging; manual-attention twin):")
        print_table(["config", "batch", "engine", "step ms", "cpu ms", "tokens/s", "MFU",
                     "ours / it"], rows, labels=3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-memory", action="store_true", help="skip the RSS children")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: one-layer T, 2 rounds of 2 steps, no compile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    configs = QUICK if args.quick else {name: CONFIGS[name] for name in args.configs}
    rounds = 2 if args.quick else args.rounds
    compile_ = not (args.no_compile or args.quick)

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    peak = matmul_peak_flops(size=2048, min_seconds=0.5 if args.quick else 2.0)
    load = os.getloadavg()
    blas = minigrad.get_device("cpu").blas
    kernels = blas.kernels if blas is not None else None
    blas_env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    report = {"machine": f"{platform.machine()}, {threads} cores", "threads": threads,
              "openblas_kernels": kernels, "openblas_env": blas_env,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load_average": load, "numpy": np.__version__, "torch": torch.__version__,
              "command": "python -m benchmarks gpt-speed " + " ".join(argv or sys.argv[1:]),
              "matmul_peak_gflops": peak / 1e9, "rounds": rounds, "results": {},
              "kernel_only": {}}
    print(f"float32 matmul peak (NumPy, 2048^3): {peak / 1e9:.1f} GFLOP/s, {threads} threads;"
          f" load average {load[0]:.1f}")
    print(f"NumPy's OpenBLAS kernels: {kernels} (OPENBLAS_* set: {blas_env or 'none'})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset = prepare(tmp / "data", builtin_documents(), [BUILTIN_NAME], log=lambda _: None)
        tokens, vocab = dataset.train, dataset.vocab_size
        for name, spec in configs.items():
            print(f"{name}: {spec['model']}, batch {spec['batch_size']}")
            result = bench_config(name, spec, tokens, vocab, rounds, compile_, peak, tmp)
            if not args.no_memory:
                result["memory"] = measure_memory(name, spec, ENGINES[:3], tokens, vocab,
                                                  steps=2)
            report["results"][name] = result
            if spec["kernel_batch"]:
                report["kernel_only"][name] = kernel_row(name, spec, vocab, rounds, peak)
            print_report({"results": {name: result},
                          "kernel_only": {k: v for k, v in report["kernel_only"].items()
                                          if k == name}})
            write_report(args.out, report)  # after each config: a long run keeps what it has
    return 0


if __name__ == "__main__":
    sys.exit(main())
