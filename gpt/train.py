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
matmul peak. Instability options (gpt/stability.py): --skip-outliers judges each step
before its update is applied (one transfer per step), --on-divergence rollback returns
to the last good checkpoint instead of stopping, --layer-stats records per-layer numbers
for the divergence report (gpt/report.py).

A run folder gets `metrics.jsonl`, `loss.png` and the checkpoint (weights as
safetensors, and beside them everything a resume needs: optimizer moments, schedule,
data-order and dropout random states, step), written every `checkpoint_interval` steps,
at the end, and on Ctrl-C or SIGTERM (the step in flight finishes first; a second one
aborts, and the previous checkpoint survives: a save commits in one step).
A resumed run continues exactly: its losses equal those of a run never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import minigrad
from gpt.data.batches import RandomWindows, SlidingWindows, first_window
from gpt.evaluation import mean_loss
from gpt.files import LOSS_CURVE_FILE, METRICS_FILE, ROLLBACK_DIR
from gpt.hardware import matmul_peak_flops
from gpt.layer_stats import LayerStats
from gpt.model import z_loss
from gpt.monitor import (
    DivergenceError,
    NonFiniteError,
    SpikeDetector,
    check_finite,
)
from gpt.report import divergence_report
from gpt.runlog import MetricsLog, plot_loss_curve, read_metrics
from gpt.stability import (
    DIVERGENCE_MODES,
    ROLLBACK_POINTS,
    OutlierGuard,
    drop_rollback_points,
    rollback_point_dir,
    rollback_points,
    scale_learning_rate,
)
from gpt.validation import check_number
from minigrad import io, optim
from minigrad.instruments.progress import ProgressBar
from minigrad.io.checkpoint import NonFiniteStateError
from minigrad.nn.utils import clip_grad_norm_
from minigrad.optim import lr_scheduler

EVAL_SEED = 1234  # evaluation windows are the same at every evaluation
BATCHINGS = ("random", "sliding")
DEFAULT_WARMUP = 100  # steps (fewer in runs shorter than 1000 steps)


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 16
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int | None = None  # None: min(DEFAULT_WARMUP, steps // 10)
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
    # Instability (gpt/stability.py); the defaults keep the plain behaviour.
    skip_outliers: float = 0.0  # Z > 0: skip updates whose loss or grad norm is Z std devs high
    outlier_warmup: int = 50  # accepted steps before the outlier guard starts judging
    max_skips_in_row: int = 5  # this many skipped updates in a row count as divergence
    on_divergence: str = "stop"  # "rollback": back to the last good checkpoint, lower lr
    rollback_lr_factor: float = 0.5  # each rollback multiplies the learning rate by this
    max_rollbacks: int = 3  # then stop
    z_loss: float = 0.0  # > 0: add z_loss * log(Z)^2 to the loss (PaLM used 1e-4)
    layer_stats: bool = False  # log per-layer grad norm, update/weight ratio, max activation
    histogram_interval: int = 0  # > 0: weight and gradient histograms to the loggers
    seed: int = 1337
    device: str = "cpu"

    def __post_init__(self):
        if self.warmup is None:  # short runs warm up for a tenth of their steps
            self.warmup = min(DEFAULT_WARMUP, self.steps // 10)
        self.validate()

    def validate(self) -> None:
        """Every option in range (NaN and infinity never are), named by its flag."""
        def check(name, **bounds):
            check_number("--" + name.replace("_", "-"), getattr(self, name), where="train",
                         **bounds)

        for name in ("steps", "batch_size", "grad_accum", "log_interval", "eval_batches",
                     "stride", "max_skips_in_row"):
            check(name, above=0)
        for name in ("warmup", "eval_interval", "checkpoint_interval", "seed", "grad_clip",
                     "weight_decay", "min_lr", "spike_threshold", "skip_outliers",
                     "outlier_warmup", "max_rollbacks", "z_loss", "histogram_interval"):
            check(name, minimum=0)
        check("rollback_lr_factor", above=0, maximum=1)
        check("lr", above=0)
        for name in ("beta1", "beta2"):
            check(name, minimum=0, below=1)
        if self.warmup >= self.steps:
            raise ValueError(f"train: --warmup ({self.warmup}) must be smaller than --steps "
                             f"({self.steps})")
        if self.batching not in BATCHINGS:
            raise ValueError(f"train: --batching must be one of {', '.join(BATCHINGS)}, got "
                             f"{self.batching!r}")
        if self.on_divergence not in DIVERGENCE_MODES:
            raise ValueError(f"train: --on-divergence must be one of "
                             f"{', '.join(DIVERGENCE_MODES)}, got {self.on_divergence!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**d)


@dataclass
class TrainResult:
    status: str  # "completed", "interrupted", "non-finite" or "diverged"
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
                 loggers=(), progress: bool = True, stream=None, parallel=None):
        self.model, self.batches, self.val_tokens, self.config = model, batches, val_tokens, config
        # One process of a parallel run (gpt.parallel.Parallel): the step's passes,
        # clipping and checkpoints go through it; only its main rank writes and reports.
        self.parallel = parallel
        self.is_main = parallel is None or parallel.is_main
        self.run_dir = Path(run_dir)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.loggers, self.progress = list(loggers), progress and self.is_main
        self.stream = stream if stream is not None else sys.stderr
        self.device = minigrad.get_device(config.device)
        self.optimizer = optim.AdamW(model.optimizer_groups(config.weight_decay), lr=config.lr,
                                     betas=(config.beta1, config.beta2))
        if parallel is not None:
            self.optimizer = parallel.shard_optimizer(self.optimizer)  # ZeRO-1, if asked
        self.scheduler = lr_scheduler.WarmupCosine(self.optimizer, config.warmup,
                                                   config.steps, config.min_lr)
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.tokens_per_step = config.grad_accum * config.batch_size * model.config.block_size
        if parallel is not None:
            self.tokens_per_step *= parallel.layout.dp  # each replica its own batch
        self._checkpoints = io if parallel is None else parallel
        self.flops_per_token = model.flops_per_token()
        self.peak_flops = matmul_peak_flops(self.device)
        self.spikes = SpikeDetector(config.spike_threshold)
        self.guard = (OutlierGuard(config.skip_outliers, config.outlier_warmup,
                                   config.max_skips_in_row) if config.skip_outliers else None)
        self.rollbacks = 0
        self._base_lrs = list(self.scheduler.base_lrs)  # before any rollback lowered them
        self._diverged_at = None  # the step that made a rollback save the newest point
        self.layer_stats = LayerStats(model) if config.layer_stats else None
        if parallel is not None and (config.skip_outliers or config.layer_stats
                                     or config.on_divergence == "rollback"):
            raise ValueError("train: --skip-outliers, --layer-stats and --on-divergence "
                             "rollback work in single-process runs only, for now")
        self.step = 0
        self.checkpoint_step: int | None = None
        # (step, loss, grad norm, lr, Skip or None, layer stats or None) not yet fetched
        self._pending: list = []
        self._metrics_kept = 0  # records of metrics.jsonl the checkpoint resumed from covers
        self._interval_start = time.perf_counter()
        self._bar: ProgressBar | None = None
        self._stop_requested = False
        self._metrics: MetricsLog | None = None

    # -- checkpoints ----------------------------------------------------------------
    def save_checkpoint(self, rollback_point: bool = True, diverged_at: int | None = None):
        """Weights and training state at the current step, in the run folder (one commit:
        a crash at any moment leaves this checkpoint or the previous one; the default
        generators, which drive dropout, are saved by io). Weights or moments that are
        no longer finite stop the run instead, keeping the previous checkpoint. With
        --on-divergence rollback a `rollback_point` is also saved in last_good/, the state
        a rollback restores (a Ctrl-C's save is not one: resuming must not move it), and
        the oldest beyond ROLLBACK_POINTS are deleted; `diverged_at` is the step that made
        a rollback save this point."""
        self._check_loss_before_saving()
        points = rollback_point and self.config.on_divergence == "rollback"
        if points:
            self._diverged_at = diverged_at
        records = self._metrics.count if self._metrics is not None else self._metrics_kept
        state = dict(step=self.step, batches=self.batches.state_dict(),
                     spikes=self.spikes.state_dict(), rollbacks=self.rollbacks,
                     diverged_at=self._diverged_at,
                     guard=self.guard.state_dict() if self.guard else None,
                     metrics_records=records)
        paths = [self.run_dir]
        if points:
            paths.append(rollback_point_dir(self.run_dir / ROLLBACK_DIR, self.step))
        try:
            for path in paths:
                self._checkpoints.save_checkpoint(path, self.model, self.optimizer,
                                                  self.scheduler, **state)
        except NonFiniteStateError as exc:
            raise NonFiniteError(f"step {self.step}: {exc} (lower --lr or set --grad-clip)",
                                 self.step) from None
        self.checkpoint_step = self.step
        if points:
            drop_rollback_points(rollback_points(self.run_dir / ROLLBACK_DIR)[:-ROLLBACK_POINTS])

    def _check_loss_before_saving(self) -> None:
        """Finite weights can still be poisoned: after --lr 1e30 they are ~1e30 and every
        logit overflows. So the weights about to be saved must give a finite loss on one
        fixed training window (in eval mode: no dropout, no random numbers drawn);
        otherwise NonFiniteError stops the run and the previous checkpoint stays."""
        tokens = getattr(self.batches, "tokens", None)
        if tokens is None:  # a batch stream that is not windows of one token array
            return
        loss = mean_loss(self.model, [first_window(tokens, self.model.config.block_size)],
                         self.device)
        if not math.isfinite(loss):
            raise NonFiniteError(f"step {self.step}: the updated weights give a loss of {loss} "
                                 "on a training window; not saving them over the previous "
                                 "checkpoint (lower --lr or raise --warmup)", self.step)

    def load_checkpoint(self) -> None:
        """Restore everything from the run folder's checkpoint, to continue exactly."""
        extra = self._restore_checkpoint(self.run_dir)
        self.rollbacks, self._metrics_kept = extra["rollbacks"], extra["metrics_records"]
        self._diverged_at = extra["diverged_at"]

    def _restore_checkpoint(self, path) -> dict:
        """Weights, optimizer, schedule, RNG, step, data position and running statistics
        from the checkpoint in `path`; returns its extra values."""
        extra = self._checkpoints.load_checkpoint(path, self.model, self.optimizer,
                                                  self.scheduler, device=self.device)
        self.step = self.checkpoint_step = extra["step"]
        self.batches.load_state_dict(extra["batches"])
        self.spikes.load_state_dict(extra["spikes"])
        if self.guard is not None:
            self.guard.load_state_dict(extra["guard"])
        return extra

    def roll_back(self, err: DivergenceError) -> None:
        """Back to the last good checkpoint (weights, optimizer, schedule, RNG, data
        position), or one further back when a rollback to it did not get the run past the
        step where it diverged before, with the learning rate times rollback_lr_factor once
        more; then the batches of the steps from there up to the one that diverged
        (err.step) are drawn and dropped, so that window is not trained on again. Which
        batches are dropped depends only on err.step, not on when the divergence was
        noticed, so a run interrupted and resumed on the way rolls back exactly as an
        unbroken one. The rolled-back state is saved at once (as the new rollback point):
        a resume continues after the rollback."""
        self.flush()  # the steps up to the divergence go on record first
        points = rollback_points(self.run_dir / ROLLBACK_DIR)
        stuck = self._diverged_at is not None and err.step <= self._diverged_at
        if stuck and len(points) > 1:  # that point leads to the same divergence again
            drop_rollback_points(points[-1:])
            points.pop()
        self._restore_checkpoint(points[-1])
        window = max(err.step - self.step, 0) * self.config.grad_accum
        for _ in range(window):
            self.batches.next_batch()
        self.rollbacks += 1
        scale = self.config.rollback_lr_factor ** self.rollbacks
        scale_learning_rate(self.scheduler, self._base_lrs, self.config.min_lr, scale)
        message = (f"{err}. Rollback {self.rollbacks} of {self.config.max_rollbacks}: back "
                   f"to the checkpoint of step {self.step}, lr x{scale:g} of the original "
                   f"(now {self.optimizer.param_groups[0]['lr']:.3g}), {window} batches "
                   "skipped")
        self._log({"step": err.step, "event": "rollback", "to_step": self.step,
                   "rollbacks": self.rollbacks, "skipped_batches": window, "message": message})
        self._say_why()
        self.save_checkpoint(diverged_at=err.step)

    # -- one step -------------------------------------------------------------------
    def micro_batch_loss(self):
        """The loss of the next micro-batch: next-token cross-entropy, plus the z-loss
        when --z-loss is set (fine-tuning objectives, such as DPO's, override this)."""
        inputs, targets = self.batches.next_batch()
        logits, loss = self.model(minigrad.tensor(inputs, device=self.device),
                                  minigrad.tensor(targets, device=self.device))
        if self.config.z_loss:
            loss = loss + self.config.z_loss * z_loss(logits)
        return loss

    def forward_backward(self):
        """Forward and backward over grad_accum micro-batches; their summed loss."""
        k = self.config.grad_accum
        total = None
        for _ in range(k):
            loss = self.micro_batch_loss()
            # d(sum_i loss_i / k) = the gradient of the mean loss over k micro-batches.
            (loss * (1.0 / k)).backward()
            total = loss.detach() if total is None else total + loss.detach()
        return total

    def train_step(self) -> None:
        """One optimizer step over grad_accum micro-batches; queues loss and norm."""
        k = self.config.grad_accum
        parallel = self.parallel
        total = self.forward_backward() if parallel is None else parallel.forward_backward(self)
        if self.layer_stats is not None:
            self.layer_stats.gradients()
        max_norm = self.config.grad_clip or float("inf")
        clip = clip_grad_norm_ if parallel is None else parallel.clip_grad_norm_
        grad_norm = clip(self.params, max_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        loss = total * (1.0 / k)
        skip = self._judge(loss, grad_norm)
        if skip is None:
            self.optimizer.step()
        every = self.config.histogram_interval
        if self.loggers and every and (self.step + 1) % every == 0:
            self.flush()  # loggers such as W&B drop records that arrive out of step order
            self._log_histograms(self.step + 1)
        self.optimizer.zero_grad()  # a skipped step's gradients are dropped
        self.scheduler.step()
        self.step += 1
        layers = None if self.layer_stats is None else self.layer_stats.collect()
        self._pending.append((self.step, loss, grad_norm, lr, skip, layers))
        if self.guard is not None:
            self.guard.check_in_row(self.step)
        if parallel is not None:  # a Ctrl-C seen by any rank stops all at this step
            self._stop_requested = parallel.agree(self._stop_requested)

    def _judge(self, loss, grad_norm):
        """The outlier guard's verdict on the step about to be applied: None (apply it) or
        a Skip. Judging needs the numbers now: one host transfer per step with the guard
        on, none without it."""
        if self.guard is None:
            return None
        values = minigrad.stack([loss, grad_norm]).numpy().tolist()
        return self.guard.check(self.step + 1, *values)

    def flush(self) -> None:
        """Fetch the queued losses and norms (one host transfer), check and log them."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        n = len(pending)
        values = minigrad.stack([t for entry in pending for t in entry[1:3]])
        values = values.numpy().tolist()  # [loss, norm, loss, norm, ...]
        now = time.perf_counter()
        tokens_per_s = n * self.tokens_per_step / max(now - self._interval_start, 1e-9)
        mfu = tokens_per_s * self.flops_per_token / self.peak_flops
        self._interval_start = now
        skips = {} if self.guard is None else {"skips": self.guard.skips}
        layers = (None if self.layer_stats is None else  # a second transfer, if asked for
                  minigrad.stack([entry[5] for entry in pending]).numpy().tolist())
        for i, (step, _, _, lr, skip, _) in enumerate(pending):
            loss, norm = values[2 * i], values[2 * i + 1]
            record = {"step": step, "loss": loss, "lr": lr, "grad_norm": norm}
            if skip is not None:
                record["skipped"] = True
            if layers is not None:
                record.update(self.layer_stats.unpack(layers[i]))
            if i == n - 1:  # throughput is measured over the whole interval
                record.update(tokens_per_s=tokens_per_s, mfu=mfu, **skips)
            self._log(record)
            if skip is not None:  # its update was not applied: nothing to check
                self._log(skip.record())
                continue
            check_finite(step, loss, norm)
            spike = self.spikes.observe(step, loss)
            if spike:
                self._event(step, "loss_spike", spike)
        applied = [values[2 * i] for i, entry in enumerate(pending) if entry[4] is None]
        if self._bar is not None:
            mean_loss = sum(applied) / len(applied) if applied else math.nan
            self._bar.update(self.step, loss=mean_loss, lr=f"{pending[-1][3]:.2e}",
                             tok_s=tokens_per_s, mfu=f"{mfu:.1%}", **skips)

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self) -> float | None:
        """Mean loss over eval_batches fixed windows of the validation tokens."""
        if self.val_tokens is None or len(self.val_tokens) == 0:
            return None
        windows = RandomWindows(self.val_tokens, self.model.config.block_size,
                                self.config.batch_size, seed=EVAL_SEED)
        loss_of = mean_loss if self.parallel is None else self.parallel.mean_loss
        return loss_of(self.model, (windows.next_batch()
                                      for _ in range(self.config.eval_batches)), self.device)

    # -- the loop -------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train up to config.steps, from self.step (0, or a loaded checkpoint's step)."""
        cfg = self.config
        self._bar = (ProgressBar(cfg.steps, initial=self.step, stream=self.stream)
                     if self.progress else None)
        previous_handlers = self._catch_stop_signals()
        self.model.train()
        self._interval_start = time.perf_counter()
        try:
            if cfg.on_divergence == "rollback" and self.checkpoint_step is None:
                self.save_checkpoint()  # a good state to come back to
            self._train_to_the_end()
            if self._stop_requested:
                result = TrainResult("interrupted", self.step, self.step,
                                     f"interrupted at step {self.step}; checkpoint saved in "
                                     f"{self.run_dir}; continue with --resume {self.run_dir}")
            else:
                result = TrainResult("completed", self.step, self.step)
        except DivergenceError as err:
            self.flush()  # the steps that led here go on record
            kept = (f"the last good checkpoint (step {self.checkpoint_step}) is kept in "
                    f"{self.run_dir}" if self.checkpoint_step is not None else
                    "no checkpoint had been saved yet")
            after = (f" after {self.rollbacks} rollbacks (--max-rollbacks "
                     f"{cfg.max_rollbacks})" if self.rollbacks else "")
            message = f"training stopped{after} at {err}. {kept}"
            non_finite = isinstance(err, NonFiniteError)
            self._log({"step": err.step, "event": "non_finite" if non_finite else "diverged",
                       "message": message})
            self._say_why()
            result = TrainResult("non-finite" if non_finite else "diverged", err.step,
                                 self.checkpoint_step, message)
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            if self._bar is not None:
                self._bar.close()
            if self._metrics is not None:
                self._metrics.close()
                self._metrics_kept, self._metrics = self._metrics.count, None
            self.plot()
        return result

    def _train_to_the_end(self) -> None:
        """Steps until config.steps or a Ctrl-C, then the final checkpoint. A divergence
        rolls back, with --on-divergence rollback and rollbacks left, else it propagates."""
        while True:
            try:
                while self.step < self.config.steps and not self._stop_requested:
                    self.train_step()
                    self._after_step()
                self.flush()
                if self.checkpoint_step != self.step:
                    self.save_checkpoint(rollback_point=False)
                return
            except DivergenceError as err:
                if (self.config.on_divergence != "rollback"
                        or self.rollbacks >= self.config.max_rollbacks):
                    raise
                self.roll_back(err)

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

    def _catch_stop_signals(self) -> dict:
        """Turn the first Ctrl-C (SIGINT) or SIGTERM (what schedulers send before a kill)
        into a request to stop after the current step and save; a second one aborts at
        once (the previous checkpoint survives any interrupted save). Returns the
        handlers to put back (none when not on the main thread, where signals cannot be
        caught)."""
        def request_stop(signum, frame):
            self._stop_requested = True
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self._say(f"{name}: stopping after this step and saving a checkpoint "
                      "(send it again to abort without saving)")
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        try:
            return {signum: signal.signal(signum, request_stop)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread
            return {}

    # -- records --------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        if self._metrics is None:
            # A fresh run starts the file anew; a resumed one keeps what led up to its
            # checkpoint and drops what the interrupted run logged after it.
            self._metrics = MetricsLog(self.run_dir / METRICS_FILE, keep=self._metrics_kept,
                                       warn=self._say)
        self._metrics.log(record)
        for logger in self.loggers:
            logger.log(record)

    def _log_histograms(self, step: int) -> None:
        """Each parameter's values (after this step's update) and gradient, to every logger
        that draws histograms: an explicit host transfer, made only at the interval."""
        named = [(name, p.numpy(), None if p.grad is None else p.grad.numpy())
                 for name, p in self.model.named_parameters()]
        for logger in self.loggers:
            logger.histograms(step, named)

    def _event(self, step: int, event: str, message: str) -> None:
        self._log({"step": step, "event": event, "message": message})
        self._say(message)

    def _say_why(self) -> None:
        """The divergence report (gpt.report) on the rollback or stop just logged."""
        if self.is_main:
            self._say(divergence_report(read_metrics(self.run_dir / METRICS_FILE)).format())

    def _say(self, message: str) -> None:
        if not self.is_main:
            return
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, file=self.stream)

    def plot(self) -> Path | None:
        """Write loss.png from metrics.jsonl (None without matplotlib)."""
        metrics = self.run_dir / METRICS_FILE
        if not self.is_main or not metrics.exists():
            return None
        return plot_loss_curve(read_metrics(metrics), self.run_dir / LOSS_CURVE_FILE,
                               title=self.run_dir.name)

