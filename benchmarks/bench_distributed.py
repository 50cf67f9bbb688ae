"""Parallel training on this machine: 1 rank x 2 threads against 2 ranks x 1 thread for
data, tensor and pipeline parallelism (tokens/s, communication time per step, bubble).

Every variant trains the same GPT (4 layers, 4 heads, width 128, context 64, float32)
on the same global batch: 16 sequences per step in 4 micro-batches (gradient
accumulation; the pipeline's micro-batches; data-parallel replicas take half of each).
The single process runs with 2 BLAS threads (and, for reference, 1); each of the 2 MPI
ranks with 1, so both use the 2 cores. Rounds interleave
the variants, each a fresh launch timing `--steps` steps after 2 warm-up steps; the
figures are medians over rounds of the per-step medians. Communication time is what the
ranks spend inside communicator calls (for the pipeline that includes waiting for the
other stage: the bubble), measured by wrapping the communicator.

    python -m benchmarks distributed              # 3 rounds, a few minutes
    python -m benchmarks distributed --rounds 1 --steps 3

Prints a table and writes benchmarks/results/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

MODEL = dict(vocab_size=256, block_size=64, n_layer=4, n_head=4, n_embd=128)
TRAIN = dict(batch_size=4, grad_accum=4, lr=1e-3, warmup=0, log_interval=1000,
             eval_interval=0, checkpoint_interval=0, seed=0)
VARIANTS = {  # name: (layout or None for one process, processes, BLAS threads each)
    "1 rank x 2 threads": (None, 1, 2),
    "1 rank x 1 thread": (None, 1, 1),
    "dp=2 (2 ranks x 1 thread)": ("dp=2", 2, 1),
    "tp=2 (2 ranks x 1 thread)": ("tp=2", 2, 1),
    "pp=2 (2 ranks x 1 thread)": ("pp=2", 2, 1),
}


class TimedCommunicator:
    """A communicator that adds the seconds spent in each of its calls to `seconds`."""

    def __init__(self, inner, seconds: list):
        self.inner, self.seconds = inner, seconds
        self.rank, self.size = inner.rank, inner.size

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def timed_call(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self.seconds[0] += time.perf_counter() - started
            if name == "split" and result is not None:
                return TimedCommunicator(result, self.seconds)
            return result

        return timed_call


def worker(layout: str | None, steps: int) -> None:
    """One launch: train warm-up + `steps` steps; rank 0 prints a JSON line."""
    import numpy as np

    import minigrad
    from gpt.model import GPT, GPTConfig
    from gpt.parallel import Layout, Parallel
    from gpt.parallel.pipeline import ideal_bubble
    from gpt.train import TrainConfig, Trainer, make_batches
    from minigrad.distributed import world

    dp = 1 if layout is None else Layout.parse(layout).dp
    # The same global batch everywhere: data-parallel replicas split it.
    config = TrainConfig(steps=steps + 2, **{**TRAIN, "batch_size": TRAIN["batch_size"] // dp})
    tokens = np.random.default_rng(0).integers(0, MODEL["vocab_size"], 200_000)
    model = GPT(GPTConfig(**MODEL), generator=minigrad.Generator(0))
    seconds = [0.0]
    parallel = None
    if layout is not None:
        parallel = Parallel(Layout.parse(layout), TimedCommunicator(world(), seconds))
        model = parallel.prepare_model(model)
        batches = parallel.batches(tokens, MODEL["block_size"], config)
    else:
        batches = make_batches(tokens, MODEL["block_size"], config)
    run_dir = tempfile.mkdtemp(prefix="bench-distributed-")
    try:
        trainer = Trainer(model, batches, None, config, run_dir, progress=False,
                          parallel=parallel)
        step_times, cpu_times, comm_times = [], [], []
        for i in range(steps + 2):
            started, cpu, comm_before = time.perf_counter(), time.process_time(), seconds[0]
            trainer.train_step()
            trainer.flush()  # the step's loss and norm reach the host: the step is done
            if i >= 2:
                step_times.append(time.perf_counter() - started)
                cpu_times.append(time.process_time() - cpu)
                comm_times.append(seconds[0] - comm_before)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    comm = statistics.median(comm_times)
    if parallel is not None:  # the slowest rank's communication sets the pace
        comm = max(parallel.world.all_gather_object(comm))
    if parallel is None or parallel.is_main:
        step = statistics.median(step_times)
        pp = 1 if layout is None else Layout.parse(layout).pp
        print(json.dumps({"step_s": step, "tokens_per_s": trainer.tokens_per_step / step,
                          "cpu_s_per_step_rank0": statistics.median(cpu_times),
                          "comm_s_per_step": comm,
                          "ideal_bubble": ideal_bubble(pp, TRAIN["grad_accum"])}))


def launch(layout: str | None, processes: int, threads: int, steps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **{name: str(threads) for name in (
        "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    command = [sys.executable, __file__, "--worker", layout or "single", "--steps", str(steps)]
    if processes > 1:
        mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                              f"{os.environ.get('PATH', '')}")
        if mpiexec is None:
            raise SystemExit("bench distributed: no mpiexec "
                             "(pip install 'minigrad-llm[distributed]')")
        command = [mpiexec, "-n", str(processes), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"bench distributed: {' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks distributed",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per launch")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/distributed.json"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(None if args.worker == "single" else args.worker, args.steps)
        return 0
    from benchmarks.timing import print_table, write_report

    runs: dict = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):  # interleaved: load on the machine hits all alike
        for name, (layout, processes, threads) in VARIANTS.items():
            runs[name].append(launch(layout, processes, threads, args.steps))
    results = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
               for name, rs in runs.items()}
    base = results["1 rank x 2 threads"]["tokens_per_s"]
    rows = [[name, f"{r['tokens_per_s']:,.0f}", f"{r['tokens_per_s'] / base:.2f}x",
             f"{r['step_s'] * 1e3:.0f}", f"{r['cpu_s_per_step_rank0'] * 1e3:.0f}",
             f"{r['comm_s_per_step'] * 1e3:.0f}", f"{r['ideal_bubble']:.0%}"]
            for name, r in results.items()]
    print_table(["variant", "tokens/s", "vs 2 threads", "step ms", "rank 0 CPU ms",
                 "comm ms/step", "ideal bubble"], rows)
    load = os.getloadavg()
    write_report(args.out, {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": load, "model": MODEL, "train": TRAIN, "rounds": args.rounds,
        "steps": args.steps, "results": results, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
