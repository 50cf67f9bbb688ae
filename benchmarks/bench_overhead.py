"""The fixed Python cost of one small op: minigrad against raw NumPy and PyTorch eager.

On a tiny array the arithmetic is nearly free, so the time per call is the framework's
own overhead: argument checks, the graph node, the output tensor and, for backward, the
walk over the graph. Timed, side by side in one run, for ``a * b`` on two float32
vectors of 16 elements:

- forward, inputs that do not require grad (no graph is recorded);
- forward, inputs that require grad (one graph node recorded);
- forward + backward with an explicit upstream gradient (raw NumPy "backward" is the
  two products a hand-written backward computes).

Each figure is this process's CPU time per call in microseconds (on a shared machine wall
time mostly measures waiting for a core), the best of several rounds with garbage
collection off (as `timeit` does); the rounds of the three frameworks are interleaved so
that load hits them alike.

    python -m benchmarks overhead [--repeat 7] [--number 20000] [--out PATH]

Prints a table and writes benchmarks/results/overhead.json.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch

import minigrad
from benchmarks.timing import interleave, print_table, write_report

RESULTS = Path(__file__).parent / "results" / "overhead.json"
SIZE = 16


def numpy_cases() -> dict:
    a, b, g = (np.random.default_rng(i).standard_normal(SIZE).astype(np.float32)
               for i in range(3))
    return {
        "forward": lambda: a * b,
        "forward (recording)": lambda: a * b,
        "forward + backward": lambda: (a * b, g * b, g * a),
    }


def minigrad_cases() -> dict:
    a, b, g = (np.random.default_rng(i).standard_normal(SIZE).astype(np.float32)
               for i in range(3))
    plain = minigrad.tensor(a), minigrad.tensor(b)
    leaves = minigrad.tensor(a, requires_grad=True), minigrad.tensor(b, requires_grad=True)
    seed = minigrad.tensor(g)

    def forward_backward():
        (leaves[0] * leaves[1]).backward(seed)
        leaves[0].grad = leaves[1].grad = None

    return {
        "forward": lambda: plain[0] * plain[1],
        "forward (recording)": lambda: leaves[0] * leaves[1],
        "forward + backward": forward_backward,
    }


def torch_cases() -> dict:
    torch.set_num_threads(1)
    a, b, g = (torch.from_numpy(np.random.default_rng(i).standard_normal(SIZE)
                                .astype(np.float32)) for i in range(3))
    leaves = a.clone().requires_grad_(), b.clone().requires_grad_()

    def forward_backward():
        (leaves[0] * leaves[1]).backward(g)
        leaves[0].grad = leaves[1].grad = None

    return {
        "forward": lambda: a * b,
        "forward (recording)": lambda: leaves[0] * leaves[1],
        "forward + backward": forward_backward,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds")
    parser.add_argument("--number", type=int, default=20_000, help="calls per round")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    frameworks = {"numpy": numpy_cases(), "minigrad": minigrad_cases(),
                  "torch": torch_cases()}
    calls = {(case, name): fn for name, cases in frameworks.items()
             for case, fn in cases.items()}
    samples = interleave(calls, args.repeat, repeats=args.number, disable_gc=True)
    timings = {case: {name: samples[case, name].best().cpu * 1e6 for name in frameworks}
               for case in frameworks["numpy"]}

    print_table(["a * b, float32[16]", "numpy us", "minigrad us", "torch us",
                 "minigrad - numpy", "minigrad / torch"],
                [[case, f"{row['numpy']:.2f}", f"{row['minigrad']:.2f}", f"{row['torch']:.2f}",
                  f"{row['minigrad'] - row['numpy']:.2f}",
                  f"{row['minigrad'] / row['torch']:.2f}"] for case, row in timings.items()])
    write_report(args.out, {
        "machine": platform.machine(), "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__, "op": "a * b",
        "dtype": "float32", "size": SIZE, "repeat": args.repeat, "number": args.number,
        "us_per_call": timings,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
