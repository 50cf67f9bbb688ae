"""The training loop, watching itself.

One step: `grad_accum` micro-batches, each loss scaled by 1/grad_accum before its
backward, so the summed gradients equal those of one batch grad_accum times larger;
then gradient clipping, an AdamW step and the learning-rate schedule (linear warmup,
cosine decay to min_lr).

Per step the loss and the gradient norm stay on the device; every `log_interval` steps
they are fetched together, in one host transfer, and checked: a non-finite loss or norm
stops the run before the poisoned weights can reach a checkpoint (the last good one is
kept, and the message names the step), a loss spike is reported. Each fetch also
measures tokens/s and model FLOPs utilisation (MFU) against the machine's measured
matmul peak.

A run folder gets `metrics.jsonl`, `loss.png` and the checkpoint (weights as
safetensors, and beside them everything a resume needs: optimizer moments, schedule,
data-order and dropout random states, step), written every `checkpoint_interval` steps,
at the end, and on Ctrl-C (the step in flight finishes first; a second Ctrl-C aborts).
A resumed run continues exactly: its losses equal those of a run never stopped.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import minigrad
from gpt.data.batches import RandomWindows, SlidingWindows
from gpt.evaluation import mean_loss
from gpt.hardware import matmul_peak_flops
from gpt.monitor import NonFiniteError, SpikeDetector, check_finite
from gpt.progress import ProgressBar
from gpt.runlog import MetricsLog, plot_loss_curve, read_metrics
from minigrad import io, optim
from minigrad.nn.utils import clip_grad_norm_
from minigrad.optim import lr_scheduler

WEIGHTS_FILE = io.checkpoint.MODEL_FILE  # the checkpoint's weights, in the run folder
METRICS_FILE = "metrics.jsonl"
LOSS_CURVE_FILE = "loss.png"
EVAL_SEED = 1234  # evaluation windows are the same at every evaluation
BATCHINGS = ("random", "sliding")


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 16
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0: no clipping (the norm is still logged)
    batching: str = "random"
    stride: int | None = None  # sliding windows: default block_size (no overlap)
    log_interval: int = 10
    eval_interval: int = 250  # 0: no evaluation
    eval_batches: int = 20
    checkpoint_interval: int = 500  # 0: only at the end (and on Ctrl-C)
    spike_threshold: float = 0.3
    seed: int = 1337
    device: str = "cpu"

    def __post_init__(self):
        positive = ("steps", "batch_size", "grad_accum", "log_interval", "eval_batches")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"train: --{name.replace('_', '-')} must be positive, got "
                                 f"{getattr(self, name)}")
        for name in ("warmup", "eval_interval", "checkpoint_interval", "grad_clip",
                     "weight_decay", "min_lr"):
            if getattr(self, name) < 0:
                raise ValueError(f"train: --{name.replace('_', '-')} must be >= 0, got "
                                 f"{getattr(self, name)}")
        if self.warmup >= self.steps:
            raise ValueError(f"train: --warmup ({self.warmup}) must be smaller than --steps "
                             f"({self.steps})")
        if not self.lr > 0:
            raise ValueError(f"train: --lr must be positive, got {self.lr}")
        if self.batching not in BATCHINGS:
            raise ValueError(f"train: --batching must be one of {', '.join(BATCHINGS)}, got "
                             f"{self.batching!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**d)


@dataclass
class TrainResult:
    status: str  # "completed", "interrupted" or "non-finite"
    step: int
    checkpoint_step: int | None  # the step the run folder's checkpoint holds
    message: str = ""


def make_batches(tokens, block_size: int, config: TrainConfig):
    """The training batch stream the config asks for."""
    if config.batching == "sliding":
        return SlidingWindows(tokens, block_size, config.stride or block_size,
                              config.batch_size, shuffle=True, seed=config.seed)
    return RandomWindows(tokens, block_size, config.batch_size, seed=config.seed)


class Trainer:
    """Trains `model` (already on the config's device) on `batches` (an object with
    next_batch() -> (inputs, targets) host arrays and state_dict / load_state_dict),
    evaluating on `val_tokens` (None or empty: no evaluation), recording in `run_dir`."""

    def __init__(self, model, batches, val_tokens, config: TrainConfig, run_dir,
                 loggers=(), progress: bool = True, stream=None):
        self.model, self.batches, self.val_tokens, self.config = model, batches, val_tokens, config
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.loggers, self.progress = list(loggers), progress
        self.stream = stream if stream is not None else sys.stderr
        self.device = minigrad.get_device(config.device)
        self.optimizer = optim.AdamW(model.optimizer_groups(config.weight_decay), lr=config.lr,
                                     betas=(config.beta1, config.beta2))
        self.scheduler = lr_scheduler.WarmupCosine(self.optimizer, config.warmup,
                                                   config.steps, config.min_lr)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.tokens_per_step = config.grad_accum * config.batch_size * model.config.block_size
        self.flops_per_token = model.flops_per_token()
        self.peak_flops = matmul_peak_flops(self.device)
        self.spikes = SpikeDetector(config.spike_threshold)
        self.step = 0
        self.checkpoint_step: int | None = None
        self._pending: list = []  # (step, loss, grad norm, lr) not yet fetched
        self._interval_start = time.perf_counter()
        self._bar: ProgressBar | None = None
        self._stop_requested = False
        self._metrics: MetricsLog | None = None

    # -- checkpoints ----------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Weights and training state at the current step, in the run folder (each file
        atomic; the default generators, which drive dropout, are saved by io)."""
        io.save_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler,
                           step=self.step, batches=self.batches.state_dict(),
                           spikes=self.spikes.state_dict())
        self.checkpoint_step = self.step

    def load_checkpoint(self) -> None:
        """Restore everything from the run folder's checkpoint, to continue exactly."""
        extra = io.load_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler,
                                   device=self.device)
        self.step = self.checkpoint_step = extra["step"]
        self.batches.load_state_dict(extra["batches"])
        self.spikes.load_state_dict(extra["spikes"])

    # -- one step -------------------------------------------------------------------
    def train_step(self) -> None:
        """One optimizer step over grad_accum micro-batches; queues loss and norm."""
        k = self.config.grad_accum
        total = None
        for _ in range(k):
            inputs, targets = self.batches.next_batch()
            _, loss = self.model(minigrad.tensor(inputs, device=self.device),
                                 minigrad.tensor(targets, device=self.device))
            # d(sum_i loss_i / k) = the gradient of the mean loss over k micro-batches.
            (loss * (1.0 / k)).backward()
            total = loss.detach() if total is None else total + loss.detach()
        max_norm = self.config.grad_clip or float("inf")
        grad_norm = clip_grad_norm_(self.params, max_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.scheduler.step()
        self.step += 1
        self._pending.append((self.step, total * (1.0 / k), grad_norm, lr))

    def flush(self) -> None:
        """Fetch the queued losses and norms (one host transfer), check and log them."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        n = len(pending)
        values = minigrad.stack([t for _, loss, norm, _ in pending for t in (loss, norm)])
        values = values.numpy().tolist()  # [loss, norm, loss, norm, ...]
        now = time.perf_counter()
        tokens_per_s = n * self.tokens_per_step / max(now - self._interval_start, 1e-9)
        mfu = tokens_per_s * self.flops_per_token / self.peak_flops
        self._interval_start = now
        for i, (step, _, _, lr) in enumerate(pending):
            loss, norm = values[2 * i], values[2 * i + 1]
            record = {"step": step, "loss": loss, "lr": lr, "grad_norm": norm}
            if i == n - 1:  # throughput is measured over the whole interval
                record.update(tokens_per_s=tokens_per_s, mfu=mfu)
            self._log(record)
            check_finite(step, loss, norm)
            spike = self.spikes.observe(step, loss)
            if spike:
                self._event(step, "loss_spike", spike)
        mean_loss = sum(values[0::2]) / n
        if self._bar is not None:
            self._bar.update(self.step, loss=mean_loss, lr=f"{pending[-1][3]:.2e}",
                             tok_s=tokens_per_s, mfu=f"{mfu:.1%}")

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self) -> float | None:
        """Mean loss over eval_batches fixed windows of the validation tokens."""
        if self.val_tokens is None or len(self.val_tokens) == 0:
            return None
        windows = RandomWindows(self.val_tokens, self.model.config.block_size,
                                self.config.batch_size, seed=EVAL_SEED)
        return mean_loss(self.model, (windows.next_batch()
                                      for _ in range(self.config.eval_batches)), self.device)

    # -- the loop -------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train up to config.steps, from self.step (0, or a loaded checkpoint's step)."""
        cfg = self.config
        self._bar = (ProgressBar(cfg.steps, initial=self.step, stream=self.stream)
                     if self.progress else None)
        previous_handler = self._catch_ctrl_c()
        self.model.train()
        self._interval_start = time.perf_counter()
        try:
            while self.step < cfg.steps and not self._stop_requested:
                self.train_step()
                self._after_step()
            self.flush()
            if self.checkpoint_step != self.step:
                self.save_checkpoint()
            if self._stop_requested:
                result = TrainResult("interrupted", self.step, self.step,
                                     f"interrupted at step {self.step}; checkpoint saved in "
                                     f"{self.run_dir}; continue with --resume {self.run_dir}")
            else:
                result = TrainResult("completed", self.step, self.step)
        except NonFiniteError as err:
            kept = (f"the last good checkpoint (step {self.checkpoint_step}) is kept in "
                    f"{self.run_dir}" if self.checkpoint_step is not None else
                    "no checkpoint had been saved yet")
            message = f"training stopped at {err}. {kept}"
            self._event(err.step, "non_finite", message)
            result = TrainResult("non-finite", err.step, self.checkpoint_step, message)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            if self._bar is not None:
                self._bar.close()
            if self._metrics is not None:
                self._metrics.close()
                self._metrics = None
            self.plot()
        return result

    def _after_step(self) -> None:
        cfg, step = self.config, self.step
        if step % cfg.log_interval == 0:
            self.flush()
        evaluate = cfg.eval_interval and (step % cfg.eval_interval == 0 or step == cfg.steps)
        checkpoint = cfg.checkpoint_interval and step % cfg.checkpoint_interval == 0
        if evaluate or checkpoint:
            # Fetch first: neither evaluate nor save weights a non-finite step spoiled.
            self.flush()
        if evaluate:
            val_loss = self.evaluate()
            if val_loss is not None:
                self._log({"step": step, "val_loss": val_loss})
                self._say(f"step {step}: val loss {val_loss:.4f}")
        if checkpoint:
            self.save_checkpoint()
        if evaluate or checkpoint:
            self._interval_start = time.perf_counter()  # tokens/s counts training only

    def _catch_ctrl_c(self):
        """Turn the first Ctrl-C into a request to stop after the current step."""
        def request_stop(signum, frame):
            self._stop_requested = True
            self._say("Ctrl-C: stopping after this step and saving a checkpoint "
                      "(press again to abort without saving)")
            signal.signal(signal.SIGINT, signal.default_int_handler)

        try:
            return signal.signal(signal.SIGINT, request_stop)
        except ValueError:  # not the main thread: Ctrl-C cannot be caught here
            return None

    # -- records --------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if self._metrics is None:
            # A fresh run starts the file anew; a resumed one keeps what led up to its
            # checkpoint and drops what the interrupted run logged after it.
            self._metrics = MetricsLog(self.run_dir / METRICS_FILE,
                                       resume_step=self.checkpoint_step or 0)
        self._metrics.log(record)
        for logger in self.loggers:
            logger.log(record)

    def _event(self, step: int, event: str, message: str) -> None:
        self._log({"step": step, "event": event, "message": message})
        self._say(message)

    def _say(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, file=self.stream)

    def plot(self) -> Path | None:
        """Write loss.png from metrics.jsonl (None without matplotlib)."""
        metrics = self.run_dir / METRICS_FILE
        if not metrics.exists():
            return None
        return plot_loss_curve(read_metrics(metrics), self.run_dir / LOSS_CURVE_FILE,
                               title=self.run_dir.name)

