"""Training at a learning rate far too high, with each stabilizer: final val loss, skipped
updates and rollbacks.

A small char-level GPT (2 layers, 2 heads, width 64, block 32, batch 8) on the built-in
corpus (Python's documentation), AdamW with gradient clipping at 1.0, a linear lr warmup
of 100 steps (so the outlier guard's 20-step warm-up is over before the lr gets too high)
and cosine decay. The same seed, weights and batches for every variant; only the option
under test changes. The reference runs at a sane learning rate; the others at --lr
(default 1.0, some 300x too high for this model). Each variant's val loss is the mean
over the same 20 validation windows, at the end or where the run stopped.

    python -m benchmarks stability              # 9 variants, a few minutes
    python -m benchmarks stability --steps 40   # a quick smoke run

Prints a table and writes benchmarks/results/stability.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import minigrad  # noqa: E402
from benchmarks.timing import print_table, timed, write_report  # noqa: E402
from bpe.corpus import builtin_documents  # noqa: E402
from gpt.data.dataset import prepare  # noqa: E402
from gpt.model import GPT, GPTConfig  # noqa: E402
from gpt.runlog import read_metrics  # noqa: E402
from gpt.train import TrainConfig, Trainer, make_batches  # noqa: E402

MODEL = dict(block_size=32, n_layer=2, n_head=2, n_embd=64)
SANE_LR = 3e-3
VARIANTS = {  # name: (model options, training options); "lr": None means --lr
    "reference (sane lr)": ({}, {"lr": SANE_LR}),
    "too-high lr, no option": ({}, {}),
    "--skip-outliers 4": ({}, {"skip_outliers": 4.0, "outlier_warmup": 20}),
    "--on-divergence rollback": ({}, {"on_divergence": "rollback"}),
    "--skip-outliers 4 + rollback": ({}, {"skip_outliers": 4.0, "outlier_warmup": 20,
                                          "on_divergence": "rollback"}),
    "--qk-norm": ({"qk_norm": True}, {}),
    "--z-loss 1e-4": ({}, {"z_loss": 1e-4}),
    "--logit-softcap 30": ({"logit_softcap": 30.0}, {}),
    "all of them": ({"qk_norm": True, "logit_softcap": 30.0},
                    {"skip_outliers": 4.0, "outlier_warmup": 20, "on_divergence": "rollback",
                     "z_loss": 1e-4}),
}


def run_variant(dataset, model_options: dict, train_options: dict, args, run_dir: Path):
    lr = train_options.get("lr", args.lr)
    config = TrainConfig(**{"steps": args.steps, "batch_size": 8, "lr": lr, "min_lr": lr / 10,
                            "warmup": args.warmup, "log_interval": 10, "eval_interval": 0,
                            "eval_batches": 20, "checkpoint_interval": args.steps // 6,
                            "grad_clip": args.grad_clip, "seed": 0, **train_options})
    minigrad.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=dataset.vocab_size, **MODEL, **model_options),
                generator=minigrad.Generator(0))
    batches = make_batches(dataset.train, model.config.block_size, config)
    trainer = Trainer(model, batches, dataset.val, config, run_dir, progress=False)
    timing, result = timed(trainer.fit)
    records = read_metrics(run_dir / "metrics.jsonl")
    return {"status": result.status, "stopped_at": result.step, "val_loss": trainer.evaluate(),
            "skips": sum(r.get("event") == "outlier_skipped" for r in records),
            "rollbacks": sum(r.get("event") == "rollback" for r in records),
            "seconds": timing.wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks stability",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1.0, help="the too-high learning rate")
    parser.add_argument("--warmup", type=int, default=100, help="lr warmup steps")
    parser.add_argument("--grad-clip", type=float, default=1.0, help="0: no clipping")
    parser.add_argument("--only", nargs="+", default=None, metavar="VARIANT",
                        help="run only the variants whose names start with these")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/stability.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = prepare(Path(tmp) / "data", builtin_documents(), ["builtin"], log=lambda *a: None)
        results = {name: run_variant(dataset, m, t, args, Path(tmp) / f"run{i}")
                   for i, (name, (m, t)) in enumerate(VARIANTS.items())
                   if not args.only or name.startswith(tuple(args.only))}
    print_table(["variant", "status", "steps", "val loss", "skips", "rollbacks", "s"],
                [[name, r["status"], r["stopped_at"], f"{r['val_loss']:.4f}", r["skips"],
                  r["rollbacks"], f"{r['seconds']:.0f}"] for name, r in results.items()])
    write_report(args.out, {"machine": platform.machine(), "steps": args.steps, "lr": args.lr,
                            "warmup": args.warmup, "grad_clip": args.grad_clip,
                            "sane_lr": SANE_LR, "model": MODEL, "results": results})
    return 0
