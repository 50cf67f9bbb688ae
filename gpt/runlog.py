"""What a run records: `metrics.jsonl` (one JSON object per line), optional TensorBoard
and Weights & Biases loggers, and a loss-curve PNG.

Records are plain dicts with a "step": training records carry loss, lr, grad_norm,
tokens_per_s and mfu; evaluation records val_loss (and train_loss on the same number of
batches); events (a loss spike, a stop) carry "event" and a "message".
"""

from __future__ import annotations

import json
import math
import os
from numbers import Number
from pathlib import Path

LOGGERS = ("tensorboard", "wandb")


class LoggerUnavailable(RuntimeError):
    """A --logger whose package is not installed."""


class MetricsLog:
    """Appends records to metrics.jsonl, flushed line by line so a crash loses nothing.

    Resuming from a checkpoint at step S first drops the records after S (logged by the
    interrupted run past its last checkpoint), so the file reads as one unbroken run."""

    def __init__(self, path, resume_step: int | None = None):
        self.path = Path(path)
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            _write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _scalars(record: dict) -> dict:
    return {k: v for k, v in record.items()
            if k != "step" and isinstance(v, Number) and not isinstance(v, bool)}


class TensorBoardLogger:
    """Scalars to TensorBoard event files under <run>/tensorboard."""

    def __init__(self, run_dir: Path, config: dict):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise LoggerUnavailable("--logger tensorboard needs TensorBoard: pip install "
                                   "tensorboard (with torch) or tensorboardX") from None
        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```")

    def log(self, record: dict) -> None:
        for name, value in _scalars(record).items():
            self.writer.add_scalar(name, value, record["step"])

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """Weights & Biases; set WANDB_MODE=offline to log without an account or network
    (`wandb sync <run>/wandb/...` uploads later)."""

    def __init__(self, run_dir: Path, config: dict):
        try:
            import wandb
        except ImportError:
            raise LoggerUnavailable("--logger wandb needs Weights & Biases: pip install wandb "
                               "(WANDB_MODE=offline works without an account)") from None
        self.wandb = wandb
        self.run = wandb.init(project="minigrad-gpt", name=Path(run_dir).name,
                              dir=str(run_dir), config=config)

    def log(self, record: dict) -> None:
        self.run.log(_scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


def make_loggers(names, run_dir: Path, config: dict) -> list:
    """Loggers by name ('tensorboard', 'wandb'); a clear error if one is not installed."""
    classes = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger}
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise ValueError(f"--logger: unknown logger(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(LOGGERS)}")
    return [classes[name](run_dir, config) for name in names]


def plot_loss_curve(records: list[dict], path, title: str = "") -> Path | None:
    """Train and validation loss against step as a PNG; None if matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    train = [(r["step"], r["loss"]) for r in records if _finite(r.get("loss"))]
    val = [(r["step"], r["val_loss"]) for r in records if _finite(r.get("val_loss"))]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), lw=1, alpha=0.8, label="train")
    if val:
        ax.plot(*zip(*val), "o-", ms=3, label="val")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def _finite(value) -> bool:
    return isinstance(value, Number) and math.isfinite(value)
