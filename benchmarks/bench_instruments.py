"""What the backprop instruments cost: a GPT forward + backward step with nothing on, with
an observer that does nothing, and inside `profile()`, `viz.record_modules()` and
`detect_anomaly()`.

When nothing observes, an op pays one attribute check (`Function.observers` is an empty
tuple); the "check" row times that check against the cheapest op call, so the share of
an op's fixed cost it takes is explicit (timed inline with `timeit`: wrapped in a function
call, a check of a few nanoseconds would drown in the call's own cost). Times are CPU time
of this process (`time.process_time`), which other processes on a shared machine disturb
far less than wall time; rounds alternate between the modes and the per-step time is the
median.

    OMP_NUM_THREADS=1 python -m benchmarks instruments [--rounds 15] [--steps 3] [--out PATH]

(CPU time counts every BLAS thread, and idle BLAS threads spin: run single-threaded.)

Prints a table and writes benchmarks/results/instruments.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
import timeit
from pathlib import Path

import minigrad
from benchmarks.timing import interleave, print_table, write_report
from gpt.model import GPT, GPTConfig
from minigrad.autograd import Function, add_observer, remove_observer

CONFIG = dict(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64)
BATCH = 8
RESULTS = Path(__file__).parent / "results" / "instruments.json"


@contextlib.contextmanager
def noop_observer():
    def observe(fn, phase, payload):
        pass

    add_observer(observe)
    try:
        yield
    finally:
        remove_observer(observe)


def modes(model) -> dict:
    return {
        "off": contextlib.nullcontext,
        "no-op observer": noop_observer,
        "profile()": minigrad.profile,
        "record_modules()": lambda: minigrad.viz.record_modules(model),
        "detect_anomaly()": minigrad.detect_anomaly,
    }


def training_step(model, ids, context):
    """One forward + backward inside `context()`."""

    def step():
        with context():
            _, loss = model(ids, ids)
            loss.backward()
        model.zero_grad()
    return step


def check_cost() -> tuple[float, float]:
    """Seconds per empty-observers check, and per call of a cheap op (1-element add)."""
    a, b = minigrad.tensor([1.0]), minigrad.tensor([2.0])
    n = 200_000
    check = min(timeit.repeat("if F.observers: pass", globals={"F": Function}, number=n,
                              repeat=5, timer=time.process_time)) / n
    op = min(timeit.repeat("a + b", globals={"a": a, "b": b}, number=n // 10, repeat=5,
                           timer=time.process_time))
    return check, op / (n // 10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: OMP_NUM_THREADS is not 1; spinning BLAS threads inflate CPU times")

    model = GPT(GPTConfig(**CONFIG), generator=minigrad.Generator(0))
    ids = minigrad.randint(0, CONFIG["vocab_size"], (BATCH, CONFIG["block_size"]),
                           generator=minigrad.Generator(1))
    contexts = modes(model)
    with minigrad.profile() as prof:
        model(ids, ids)[1].backward()
    ops_per_step = len(prof.events)
    checks_per_step = sum(e.phase == "forward" for e in prof.events)  # one per op call
    samples = interleave({name: training_step(model, ids, context)
                          for name, context in contexts.items()}, args.rounds, repeats=args.steps)
    median = {name: s.median().cpu for name, s in samples.items()}
    check, op = check_cost()

    print(f"GPT {CONFIG}, batch {BATCH}: {ops_per_step} op calls (forward + backward) per step")
    print_table(["mode", "CPU ms/step", "vs off"],
                [[name, f"{seconds * 1e3:.2f}", f"{seconds / median['off']:.2f}x"]
                 for name, seconds in median.items()])
    print(f"empty-observers check: {check * 1e9:.1f} ns; cheapest op call: {op * 1e6:.2f} us "
          f"(check = {100 * check / op:.2f}% of it); {checks_per_step} checks per step = "
          f"{100 * checks_per_step * check / median['off']:.3f}% of a step")

    write_report(args.out, {
        "machine": platform.machine(), "python": platform.python_version(),
        "config": CONFIG, "batch": BATCH, "rounds": args.rounds, "steps": args.steps,
        "ops_per_step": ops_per_step, "checks_per_step": checks_per_step,
        "cpu_ms_per_step": {name: s * 1e3 for name, s in median.items()},
        "check_ns": check * 1e9, "cheapest_op_us": op * 1e6,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
