"""GPT quality floor: minigrad's training reaches the loss PyTorch reaches, trained the
same way.

Character-level Shakespeare (../shared/data/shakespeare.txt, cleaned and tokenized by
gpt.data), the tiny config (4 layers, 4 heads, width 128, block 64, batch 12, no
dropout), AdamW (betas 0.9/0.99, weight decay 0.1 on matrices), lr 1e-3 with 100 warmup
steps and cosine decay to 1e-4, gradient clipping at 1.0, 2000 steps. Both sides start
from the same weights (minigrad's init copied into tests/torch_gpt.py's twin) and see the
same batches (the same seeded random windows). The minigrad side is gpt.train.Trainer
itself. At the end both are scored on the same first 100,000 tokens of the validation
split (every non-overlapping window); the floor is |minigrad - torch| <= 0.05 nats/token.

    python -m benchmarks gpt-quality             # the full comparison (minutes)
    python -m benchmarks gpt-quality --steps 50  # a quick smoke run

Prints a table and writes benchmarks/results/gpt_quality.json.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
from pathlib import Path

# One BLAS thread per side by default: on a shared 2-core machine, multithreaded BLAS in
# a busy process spins and runs several times slower. Set before NumPy loads OpenBLAS.
THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(THREADS))
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from torch_gpt import from_minigrad  # noqa: E402

import minigrad  # noqa: E402
from benchmarks.timing import print_table, timed, write_report  # noqa: E402
from gpt.data.batches import RandomWindows, SlidingWindows  # noqa: E402
from gpt.data.dataset import prepare  # noqa: E402
from gpt.evaluation import text_loss  # noqa: E402
from gpt.model import GPT, GPTConfig  # noqa: E402
from gpt.runlog import read_metrics  # noqa: E402
from gpt.train import TrainConfig, Trainer  # noqa: E402
from minigrad.optim.lr_scheduler import warmup_cosine_lr  # noqa: E402

TOLERANCE = 0.05


def train_minigrad(model, dataset, config: TrainConfig, run_dir: Path) -> float:
    batches = RandomWindows(dataset.train, model.config.block_size, config.batch_size,
                            seed=config.seed)
    trainer = Trainer(model, batches, None, config, run_dir, progress=True)
    timing, result = timed(trainer.fit)
    if result.status != "completed":
        raise RuntimeError(f"minigrad training did not complete: {result.message}")
    return timing.wall


def train_torch(twin, dataset, config: TrainConfig, block_size: int) -> list[float]:
    """The same loop in PyTorch: same batches, schedule, clipping and AdamW groups; the
    training losses."""
    optimizer = torch.optim.AdamW(twin.optimizer_groups(config.weight_decay), lr=config.lr,
                                  betas=(config.beta1, config.beta2), eps=1e-8)
    batches = RandomWindows(dataset.train, block_size, config.batch_size, seed=config.seed)
    losses = []
    twin.train()
    for step in range(config.steps):
        lr = warmup_cosine_lr(step, config.lr, config.warmup, config.steps, config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = batches.next_batch()
        _, loss = twin(torch.from_numpy(inputs), torch.from_numpy(targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 200 == 0:
            print(f"torch step {step + 1}: loss {np.mean(losses[-200:]):.4f}", flush=True)
    return losses


@torch.no_grad()
def torch_text_loss(twin, tokens, batch_size: int = 64) -> float:
    """Mean loss over every non-overlapping window, as gpt.evaluation.text_loss."""
    block = twin.config.block_size
    windows = SlidingWindows(tokens, block, block, batch_size, shuffle=False, drop_last=False)
    twin.eval()
    total, count = 0.0, 0
    for inputs, targets in windows:
        _, loss = twin(torch.from_numpy(inputs), torch.from_numpy(targets))
        total += loss.item() * len(inputs)
        count += len(inputs)
    return total / count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/shakespeare.txt"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--val-tokens", type=int, default=100_000,
                        help="score the first this many tokens of the validation split")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/gpt_quality.json"))
    args = parser.parse_args(argv)
    if not Path(args.data).is_file():
        print(f"no data at {args.data} (the shared Shakespeare text)", file=sys.stderr)
        return 2

    config = TrainConfig(steps=args.steps, batch_size=12, lr=1e-3, min_lr=1e-4,
                         warmup=min(100, args.steps // 2), weight_decay=0.1, grad_clip=1.0,
                         eval_interval=0, log_interval=50, checkpoint_interval=0, seed=1337)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = prepare(Path(tmp) / "data", [Path(args.data).read_text(encoding="utf-8")],
                          [args.data], tokenizer="char", val_fraction=0.1)
        model_config = GPTConfig(vocab_size=dataset.vocab_size, block_size=64, n_layer=4,
                                 n_head=4, n_embd=128, dropout=0.0)
        model = GPT(model_config, generator=minigrad.Generator(config.seed))
        twin = from_minigrad(model, dtype=torch.float32)  # the same starting weights

        mg_seconds = train_minigrad(model, dataset, config, Path(tmp) / "run")
        mg_train = [r["loss"] for r in read_metrics(Path(tmp) / "run/metrics.jsonl")
                    if "loss" in r]
        val = dataset.val[:args.val_tokens]
        mg_val, _, scored = text_loss(model, val, 64, "cpu")
        torch_timing, torch_train = timed(train_torch, twin, dataset, config, 64)
        torch_seconds = torch_timing.wall
        torch_val = torch_text_loss(twin, val)

    tokens = config.steps * config.batch_size * model_config.block_size
    rows = [("minigrad", mg_val, np.mean(mg_train[-100:]), mg_seconds),
            ("pytorch", torch_val, np.mean(torch_train[-100:]), torch_seconds)]
    print(f"\nchar-level Shakespeare, {config.steps} steps x {config.batch_size} x "
          f"{model_config.block_size} tokens, {model.num_parameters():,} parameters; "
          f"val loss over {scored:,} tokens")
    print_table(["side", "val loss", "train loss (last 100)", "seconds", "tokens/s"],
                [[name, f"{val:.4f}", f"{train:.4f}", f"{seconds:.1f}", f"{tokens / seconds:.0f}"]
                 for name, val, train, seconds in rows])
    gap = mg_val - torch_val
    passed = abs(gap) <= TOLERANCE and math.isfinite(gap)
    print(f"gap {gap:+.4f} nats/token: {'within' if passed else 'OUTSIDE'} the "
          f"{TOLERANCE} floor")

    result = {
        "benchmark": "gpt_quality", "data": Path(args.data).name, "steps": config.steps,
        "batch_size": config.batch_size, "block_size": model_config.block_size,
        "model": model_config.to_dict(), "train": config.to_dict(),
        "parameters": model.num_parameters(), "val_tokens_scored": scored,
        "minigrad": {"val_loss": mg_val, "train_loss_last100": float(np.mean(mg_train[-100:])),
                     "seconds": mg_seconds},
        "pytorch": {"val_loss": torch_val,
                    "train_loss_last100": float(np.mean(torch_train[-100:])),
                    "seconds": torch_seconds, "version": torch.__version__},
        "gap": gap, "tolerance": TOLERANCE, "passed": passed,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, BLAS threads {THREADS}",
    }
    write_report(args.out, result)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
