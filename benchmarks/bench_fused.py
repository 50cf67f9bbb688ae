"""Forward + backward time of each fused op of minigrad.nn.functional, side by side with
its composite twin (the same math from primitive ops) and PyTorch eager on the CPU.

Transformer-sized inputs (B=12, T=64..256, C=384, H=6, vocab 65 and 8192), float32.
One timing is one forward and one backward with a fixed upstream gradient (inputs
built once). Rounds alternate between the three engines, in a rotating order, so
machine noise hits all alike; the reported time is the median over rounds. PyTorch
runs on as many threads as NumPy's BLAS: the core count, or OPENBLAS_NUM_THREADS when
set (OpenBLAS reads it at import), so a single-threaded comparison is

    OPENBLAS_NUM_THREADS=1 python -m benchmarks fused

    python -m benchmarks fused [--rounds 7] [--quick] [--out PATH]

Prints a table and writes benchmarks/results/fused.json (fused_blas1.json for the
single-threaded run).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

import minigrad as mg
import minigrad.nn.functional as F
from benchmarks.timing import interleave, print_table, write_report

RESULTS = Path(__file__).parent / "results"
B, C, H = 12, 384, 6


def cases(quick: bool) -> list[dict]:
    """One entry per benchmark: its label, input shapes and the three implementations,
    each a function of the inputs (a dict of arrays) returning the output to differentiate.
    """
    t_long, t_short = (64, 32) if quick else (256, 64)
    rng = np.random.default_rng(0)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def ids(high, *shape):
        return rng.integers(0, high, shape)

    x = normal(B, t_long, C)
    return [
        dict(name="softmax", shape=f"({B},{H},{t_long // 2},{t_long // 2}) last axis",
             inputs={"x": normal(B, H, t_long // 2, t_long // 2, scale=3)},
             ours=lambda f, x: f.softmax(x, axis=-1), torch=lambda x: TF.softmax(x, -1)),
        dict(name="log_softmax", shape=f"({B * t_short},8192)",
             inputs={"x": normal(B * t_short, 8192, scale=3)},
             ours=lambda f, x: f.log_softmax(x, axis=-1), torch=lambda x: TF.log_softmax(x, -1)),
        dict(name="cross_entropy", shape=f"({B},{t_long},65) mean",
             inputs={"logits": normal(B, t_long, 65, scale=3), "targets": ids(65, B, t_long)},
             ours=lambda f, logits, targets: f.cross_entropy(logits.reshape(-1, 65),
                                                             targets.reshape(-1)),
             torch=lambda logits, targets: TF.cross_entropy(logits.reshape(-1, 65),
                                                            targets.reshape(-1))),
        dict(name="cross_entropy", shape=f"({B},{t_short},8192) mean, smoothing 0.1",
             inputs={"logits": normal(B, t_short, 8192, scale=3),
                     "targets": ids(8192, B, t_short)},
             ours=lambda f, logits, targets: f.cross_entropy(
                 logits.reshape(-1, 8192), targets.reshape(-1), label_smoothing=0.1),
             torch=lambda logits, targets: TF.cross_entropy(
                 logits.reshape(-1, 8192), targets.reshape(-1), label_smoothing=0.1)),
        dict(name="layer_norm", shape=f"({B},{t_long},{C}) affine",
             inputs={"x": x, "weight": normal(C), "bias": normal(C)},
             ours=lambda f, x, weight, bias: f.layer_norm(x, C, weight, bias),
             torch=lambda x, weight, bias: TF.layer_norm(x, (C,), weight, bias)),
        dict(name="rms_norm", shape=f"({B},{t_long},{C}) weight",
             inputs={"x": x, "weight": normal(C)},
             ours=lambda f, x, weight: f.rms_norm(x, C, weight),
             torch=lambda x, weight: TF.rms_norm(x, (C,), weight, 1e-6)),
        dict(name="linear", shape=f"({B},{t_long},{C}) -> {3 * C}",
             inputs={"x": x, "weight": normal(3 * C, C, scale=0.05), "bias": normal(3 * C)},
             ours=lambda f, x, weight, bias: f.linear(x, weight, bias),
             torch=lambda x, weight, bias: TF.linear(x, weight, bias)),
        dict(name="embedding", shape=f"ids ({B},{t_long}), table (8192,{C})",
             inputs={"ids": ids(8192, B, t_long), "weight": normal(8192, C)},
             ours=lambda f, ids, weight: f.embedding(ids, weight),
             torch=lambda ids, weight: TF.embedding(ids, weight)),
        dict(name="dropout", shape=f"({B},{t_long},{C}) p=0.1",
             inputs={"x": x},
             ours=lambda f, x: f.dropout(x, 0.1, generator=mg.Generator(0)),
             torch=lambda x: TF.dropout(x, 0.1)),
        dict(name="attention", shape=f"({B},{H},{t_long},{C // H}) causal",
             inputs={n: normal(B, H, t_long, C // H) for n in "qkv"},
             ours=lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True),
             torch=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True)),
        dict(name="attention", shape=f"({B},{H},{t_long},{C // H}) causal, dropout 0.1",
             inputs={n: normal(B, H, t_long, C // H) for n in "qkv"},
             ours=lambda f, q, k, v: f.scaled_dot_product_attention(
                 q, k, v, is_causal=True, dropout_p=0.1, generator=mg.Generator(0)),
             torch=lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                   dropout_p=0.1)),
    ]


class _Composite:
    """`F` with every fused op swapped for its composite twin."""

    def __getattr__(self, name):
        return getattr(F, name + "_composite")


def engines(case: dict) -> dict:
    """engine name -> a function running one forward + backward of the case."""
    arrays = case["inputs"]

    def minigrad_step(namespace):
        tensors = {n: mg.tensor(a, requires_grad=a.dtype.kind == "f") for n, a in arrays.items()}
        upstream = {}

        def step():
            for t in tensors.values():
                t.grad = None
            out = case["ours"](namespace, **tensors)
            if "g" not in upstream:
                upstream["g"] = mg.tensor(np.ones(out.shape, np.float32))
            out.backward(upstream["g"])

        return step

    tensors = {n: torch.tensor(a, requires_grad=a.dtype.kind == "f") for n, a in arrays.items()}

    def torch_step():
        for t in tensors.values():
            t.grad = None
        out = case["torch"](**tensors)
        out.backward(torch.ones_like(out))

    return {"fused": minigrad_step(F), "composite": minigrad_step(_Composite()),
            "torch": torch_step}


def bench(steps: dict, rounds: int) -> dict:
    """Median ms per step. The order rotates every round: whichever engine runs right
    after PyTorch shares the CPU with its still-spinning worker threads."""
    samples = interleave(steps, rounds, rotate=True)
    return {name: times.median().wall * 1e3 for name, times in samples.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="short sequences (a smoke run)")
    parser.add_argument("--out", type=Path, default=None,
                        help="report path (default: results/fused.json, fused_blasN.json "
                             "when OPENBLAS_NUM_THREADS=N is set)")
    args = parser.parse_args(argv)
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(threads)

    rows = []
    for case in cases(args.quick):
        ms = bench(engines(case), args.rounds)
        rows.append({"op": case["name"], "input": case["shape"], "ms": ms,
                     "composite_over_fused": ms["composite"] / ms["fused"],
                     "fused_over_torch": ms["fused"] / ms["torch"]})
    print_table(["op", "input", "fused ms", "composite", "torch", "comp/fused", "fused/torch"],
                [[row["op"], row["input"], f"{row['ms']['fused']:.2f}",
                  f"{row['ms']['composite']:.2f}", f"{row['ms']['torch']:.2f}",
                  f"{row['composite_over_fused']:.2f}", f"{row['fused_over_torch']:.2f}"]
                 for row in rows], labels=2)

    path = args.out or RESULTS / ("fused.json" if "OPENBLAS_NUM_THREADS" not in os.environ
                                  else f"fused_blas{threads}.json")
    write_report(path, {
        "benchmark": "fused ops, forward + backward, float32, median ms over rounds",
        "date": datetime.date.today().isoformat(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "blas_threads": threads,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__, "torch": torch.__version__, "rounds": args.rounds,
        "quick": args.quick, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
