"""What a run records: `metrics.jsonl` (one JSON object per line), optional TensorBoard
and Weights & Biases loggers, and a loss-curve PNG.

Records are plain dicts with a "step": training records carry loss, lr, grad_norm,
tokens_per_s and mfu; evaluation records val_loss (and train_loss on the same number of
batches); events (a loss spike, a stop) carry "event" and a "message".
"""

from __future__ import annotations

import html
import json
import math
from numbers import Number
from pathlib import Path

from gpt.files import TENSORBOARD_DIR
from minigrad.io import atomic

LOGGERS = ("tensorboard", "wandb")


class LoggerUnavailable(RuntimeError):
    """A --logger whose package is not installed."""


class MetricsLog:
    """Appends records to metrics.jsonl, flushed line by line so a crash loses nothing;
    `count` is the number of records the file holds.

    The one file gpt writes without `minigrad.io.atomic`: rewriting the whole log for each
    new line would cost time growing with the run. A crash (or a full disk) can at worst
    tear the last line, which `read_metrics` drops, saying so through `warn`. Opening it
    keeps the first `keep` records (0: a fresh run starts anew; a resumed one keeps those
    its checkpoint covers and drops what the interrupted run logged after it), so the
    file reads as one unbroken run; that rewrite is atomic."""

    def __init__(self, path, keep: int = 0, warn=None):
        self.path = Path(path)
        kept = read_metrics(self.path, warn)[:keep] if keep and self.path.exists() else []
        atomic.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.count = len(kept)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log(self, record: dict) -> None:
        with atomic.file_named(self.path):  # a full disk
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        self.count += 1

    def close(self) -> None:
        self._file.close()


class MetricsError(ValueError):
    """A metrics.jsonl line, other than a torn last one, that is not a JSON record."""


def read_metrics(path, warn=None) -> list[dict]:
    """The records of a metrics.jsonl. A last line that is cut short (no newline: torn by
    a crash or a full disk mid-write) is left out, and `warn(message)` called if given;
    any other line that is not a JSON object with an integer "step" raises MetricsError
    naming file and line."""
    lines = Path(path).read_bytes().split(b"\n")
    torn = lines.pop()  # b"" when the file ends with its newline
    if torn.strip() and warn is not None:
        warn(f"{path}: dropped a torn last line (line {len(lines) + 1}, cut short by a crash "
             f"or a full disk): {torn[:60]!r}")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetricsError(f"{path} line {number} is not a JSON record ({exc}): "
                               f"{line[:60]!r}; repair or remove that line") from None
        if not isinstance(record, dict):
            raise MetricsError(f"{path} line {number} is not a JSON object: {line[:60]!r}")
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise MetricsError(f"{path} line {number} has no integer 'step': {line[:60]!r}; "
                               "repair or remove that line")
        records.append(record)
    return records


def _scalars(record: dict) -> dict:
    return {k: v for k, v in record.items()
            if k != "step" and isinstance(v, Number) and not isinstance(v, bool)}


def flat_config(config: dict, prefix: str = "") -> dict:
    """{'model': {'n_layer': 4}} -> {'model.n_layer': 4}: hyperparameters as loggers want
    them (numbers, strings and booleans; None as the string 'None')."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, name + "."))
        else:
            flat[name] = value if isinstance(value, (Number, str, bool)) else str(value)
    return flat


HPARAMS_RUN = "hparams"  # TensorBoard's run (a subfolder) for the HParams tab


class TensorBoardLogger:
    """TensorBoard event files under <run>/tensorboard: every scalar of the metrics, the
    hyperparameters (HParams tab), weight and gradient histograms at the trainer's
    `histogram_interval`, and generated samples as text."""

    def __init__(self, run_dir: Path, config: dict):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise LoggerUnavailable("--logger tensorboard needs tensorboardX: pip install "
                                    "'minigrad-llm[loggers]'") from None
        self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR))
        self.hparams = flat_config(config)
        self.last: dict = {}
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```")

    def log(self, record: dict) -> None:
        for name, value in _scalars(record).items():
            self.writer.add_scalar(name, value, record["step"])
            self.last[name] = value

    def histograms(self, step: int, named: list) -> None:
        for name, values, grad in named:
            self.writer.add_histogram(f"weights/{name}", values, step)
            if grad is not None:
                self.writer.add_histogram(f"gradients/{name}", grad, step)

    def text(self, step: int, tag: str, text: str) -> None:
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        # The HParams tab pairs the hyperparameters with the run's final metrics; they go
        # to a run of their own (tensorboard/hparams), as TensorBoard's plugin expects.
        metrics = {f"hparam/{k}": v for k, v in self.last.items() if k in ("loss", "val_loss")}
        self.writer.add_hparams(self.hparams, metrics or {"hparam/loss": math.nan},
                                name=HPARAMS_RUN)
        self.writer.close()


class WandbLogger:
    """Weights & Biases. With WANDB_MODE=offline it needs no account or network: the run
    lands in <run>/wandb/offline-run-*, and `wandb sync <that folder>` uploads it later."""

    def __init__(self, run_dir: Path, config: dict):
        try:
            import wandb
        except ImportError:
            raise LoggerUnavailable("--logger wandb needs Weights & Biases: pip install "
                                    "'minigrad-llm[loggers]' (WANDB_MODE=offline works "
                                    "without an account)") from None
        self.wandb = wandb
        self.run = wandb.init(project="minigrad-gpt", name=Path(run_dir).name,
                              dir=str(run_dir), config=config)

    def log(self, record: dict) -> None:
        self.run.log(_scalars(record), step=record["step"])

    def histograms(self, step: int, named: list) -> None:
        data = {f"weights/{name}": self.wandb.Histogram(values) for name, values, _ in named}
        data.update({f"gradients/{name}": self.wandb.Histogram(grad)
                     for name, _, grad in named if grad is not None})
        self.run.log(data, step=step)

    def text(self, step: int, tag: str, text: str) -> None:
        self.run.log({tag: self.wandb.Html(f"<pre>{html.escape(text)}</pre>")}, step=step)

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


def train_curves(records: list[dict]) -> tuple[list, list, list]:
    """The training-loss curve of a run's records, split where it rolled back (each piece
    a list of (step, loss); the steps re-run after a rollback start a new piece), the
    steps of the rollbacks, and the (step, loss) of updates the outlier guard skipped."""
    pieces, rollbacks, skipped = [[]], [], []
    for r in records:
        if r.get("event") == "rollback":
            rollbacks.append(r["step"])
            pieces.append([])
        elif "event" not in r and _finite(r.get("loss")):
            pieces[-1].append((r["step"], r["loss"]))
            if r.get("skipped"):
                skipped.append((r["step"], r["loss"]))
    return [p for p in pieces if p], rollbacks, skipped


def plot_loss_curve(records: list[dict], path, title: str = "") -> Path | None:
    """Train and validation loss against step as a PNG, rollbacks as dashed lines and
    skipped updates as crosses; None if matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    pieces, rollbacks, skipped = train_curves(records)
    val = [(r["step"], r["val_loss"]) for r in records if _finite(r.get("val_loss"))]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, piece in enumerate(pieces):
        ax.plot(*zip(*piece), color="C0", lw=1, alpha=0.8, label="train" if i == 0 else None)
    if val:
        ax.plot(*zip(*val), "o-", color="C1", ms=3, label="val")
    for i, step in enumerate(rollbacks):
        ax.axvline(step, color="C3", ls="--", lw=1, label="rollback" if i == 0 else None)
    if skipped:
        ax.plot(*zip(*skipped), "x", color="C3", ms=5, label="skipped update")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if pieces or val:
        ax.legend()
    fig.tight_layout()
    with atomic.atomic_write(path) as f:
        fig.savefig(f, format="png")
    return Path(path)


def _finite(value) -> bool:
    return isinstance(value, Number) and math.isfinite(value)
