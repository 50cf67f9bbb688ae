"""The trainer: exact resume, gradient accumulation, stopping on non-finite losses, host
transfers, and the pieces it is built from (health checks, evaluation, run records,
progress bar, scaling plan)."""

from __future__ import annotations

import io
import math
import signal
import sys

import numpy as np
import pytest

import minigrad
from gpt.data.batches import RandomWindows, SlidingWindows
from gpt.evaluation import mean_loss, text_loss
from gpt.model import GPT, GPTConfig
from gpt.monitor import NonFiniteError, SpikeDetector, check_finite
from gpt.plan import make_plan, suggest_shape
from gpt.runlog import (
    LoggerUnavailable,
    MetricsLog,
    make_loggers,
    plot_loss_curve,
    read_metrics,
)
from gpt.train import TrainConfig, Trainer
from minigrad.instruments.progress import ProgressBar, format_duration
from minigrad.io import load_checkpoint

VOCAB, BLOCK = 13, 8
TOKENS = np.random.default_rng(0).integers(0, VOCAB, 3000).astype(np.uint8)
TRAIN, VAL = TOKENS[:2500], TOKENS[2500:]


def tiny_model(seed=0, dropout=0.0, device="cpu"):
    config = GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16,
                       dropout=dropout)
    return GPT(config, generator=minigrad.Generator(seed)).to(device)


def config(**overrides) -> TrainConfig:
    settings = dict(steps=12, batch_size=4, warmup=2, log_interval=3, eval_interval=0,
                    eval_batches=2, checkpoint_interval=0, seed=0)
    return TrainConfig(**{**settings, **overrides})


def make_trainer(run_dir, model, batches, cfg, val=None) -> Trainer:
    return Trainer(model, batches, val, cfg, run_dir, progress=False, stream=io.StringIO())


class Wrapped:
    """A batch source that runs `action` just before the batch numbered `at` (from 1)."""

    def __init__(self, inner, at: int, action):
        self.inner, self.at, self.action, self.calls = inner, at, action, 0

    def next_batch(self):
        self.calls += 1
        if self.calls == self.at:
            self.action()
        return self.inner.next_batch()

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


class Fixed:
    """Batches from a list (no state to resume)."""

    def __init__(self, batches):
        self.batches = list(batches)

    def next_batch(self):
        return self.batches.pop(0)

    def state_dict(self):
        return {}


def losses(run_dir, key="loss"):
    return [(r["step"], r[key]) for r in read_metrics(run_dir / "metrics.jsonl") if key in r]


# -- resume ----------------------------------------------------------------------------
SOURCES = {"random": lambda seed: RandomWindows(TRAIN, BLOCK, 4, seed=seed),
           "sliding": lambda seed: SlidingWindows(TRAIN[:200], BLOCK, 5, 4, seed=seed)}


@pytest.mark.parametrize("batching", SOURCES)
def test_resume_after_ctrl_c_equals_an_unbroken_run(tmp_path, batching):
    cfg = config(eval_interval=4, checkpoint_interval=0)
    source = SOURCES[batching]  # the sliding windows pass an epoch boundary (9 batches)

    minigrad.manual_seed(0)
    unbroken = make_trainer(tmp_path / "a", tiny_model(dropout=0.2), source(7), cfg, VAL)
    assert unbroken.fit().status == "completed"

    minigrad.manual_seed(0)
    handler = signal.getsignal(signal.SIGINT)
    stopped = make_trainer(tmp_path / "b", tiny_model(dropout=0.2),
                           Wrapped(source(7), at=5,
                                   action=lambda: signal.raise_signal(signal.SIGINT)), cfg, VAL)
    result = stopped.fit()
    # Ctrl-C during step 5: the step finishes, then a checkpoint is saved and the run ends.
    assert (result.status, result.step, result.checkpoint_step) == ("interrupted", 5, 5)
    assert "--resume" in result.message
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C's usual handler is back

    minigrad.manual_seed(99)  # dropout's stream must come back from the checkpoint
    resumed = make_trainer(tmp_path / "b", tiny_model(seed=1, dropout=0.2), source(7), cfg,
                           VAL)
    resumed.load_checkpoint()
    assert resumed.step == 5
    assert resumed.fit().status == "completed"

    for key in ("loss", "grad_norm", "lr", "val_loss"):
        assert losses(tmp_path / "b", key) == losses(tmp_path / "a", key)  # bit-exact
    assert [s for s, _ in losses(tmp_path / "a")] == list(range(1, 13))
    for p, q in zip(unbroken.model.parameters(), resumed.model.parameters()):
        assert np.array_equal(p.numpy(), q.numpy())


# -- gradient accumulation -------------------------------------------------------------
def test_gradient_accumulation_equals_the_large_batch(tmp_path):
    x, y = RandomWindows(TRAIN, BLOCK, 8, seed=3).next_batch()
    runs = {"accumulated": (config(steps=1, warmup=0, batch_size=4, grad_accum=2),
                            [(x[:4], y[:4]), (x[4:], y[4:])]),
            "large": (config(steps=1, warmup=0, batch_size=8, grad_accum=1), [(x, y)])}
    grads, logged = {}, {}
    for name, (cfg, batches) in runs.items():
        trainer = make_trainer(tmp_path / name, tiny_model(), Fixed(batches), cfg)
        step = trainer.optimizer.step

        def record_then_step(trainer=trainer, step=step, name=name):
            grads[name] = [p.grad.numpy().copy() for p in trainer.params]
            step()

        trainer.optimizer.step = record_then_step
        assert trainer.fit().status == "completed"
        assert trainer.tokens_per_step == 8 * BLOCK
        logged[name] = losses(tmp_path / name)[0][1]
    for a, b in zip(grads["accumulated"], grads["large"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert logged["accumulated"] == pytest.approx(logged["large"], rel=1e-6)


# -- non-finite losses -----------------------------------------------------------------
def test_nan_loss_stops_cleanly_keeping_the_last_good_checkpoint(tmp_path):
    model = tiny_model()

    def poison():
        model.wte.weight.data = model.wte.weight.data * float("nan")

    cfg = config(checkpoint_interval=4, log_interval=3)
    trainer = make_trainer(tmp_path, model,
                           Wrapped(RandomWindows(TRAIN, BLOCK, 4, seed=0), at=7, action=poison),
                           cfg)
    result = trainer.fit()
    # The loss of step 7 is NaN; it is seen when step 8's checkpoint flushes the queue, so
    # step 8's poisoned weights are never saved.
    assert (result.status, result.step, result.checkpoint_step) == ("non-finite", 7, 4)
    assert "step 7: the loss is nan" in result.message
    assert "last good checkpoint (step 4)" in result.message
    fresh = tiny_model(seed=5)
    extra = load_checkpoint(tmp_path, fresh)
    assert extra["step"] == 4
    assert all(np.isfinite(p.numpy()).all() for p in fresh.parameters())
    events = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r.get("event")]
    assert events[-1]["event"] == "non_finite" and events[-1]["step"] == 7
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # the plot is optional
        assert not (tmp_path / "loss.png").exists()
    else:
        assert (tmp_path / "loss.png").exists()


def test_check_finite_names_the_step_and_the_culprit():
    check_finite(3, 2.5, 1.0)
    with pytest.raises(NonFiniteError, match="step 3: the loss is nan") as info:
        check_finite(3, math.nan, 1.0)
    assert info.value.step == 3
    with pytest.raises(NonFiniteError, match="gradient norm is inf"):
        check_finite(4, 2.5, math.inf)


def test_spike_detector():
    spikes = SpikeDetector(threshold=0.3, beta=0.9, warmup=5)
    assert spikes.observe(1, 10.0) is None  # no spikes during warm-up, however large
    assert all(spikes.observe(step, 2.0) is None for step in range(2, 40))
    message = spikes.observe(40, 3.0)
    assert message.startswith("loss spike at step 40: 3.0000")
    state = spikes.state_dict()
    copy = SpikeDetector(threshold=0.3, beta=0.9, warmup=5)
    copy.load_state_dict(state)
    assert copy.observe(41, 2.1) == spikes.observe(41, 2.1)


def test_spikes_are_logged_as_events(tmp_path):
    model = tiny_model()

    def scale_up():  # a sudden jump of the logits' scale: the loss leaps
        model.wte.weight.data = model.wte.weight.data * 40.0

    cfg = config(steps=10, spike_threshold=0.1, log_interval=10)
    trainer = make_trainer(tmp_path, model,
                           Wrapped(RandomWindows(TRAIN, BLOCK, 4, seed=0), at=9, action=scale_up),
                           cfg)
    trainer.spikes.warmup = 3
    assert trainer.fit().status == "completed"
    events = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r.get("event")]
    assert [(e["event"], e["step"]) for e in events][:1] == [("loss_spike", 9)]


# -- host transfers --------------------------------------------------------------------
def test_steps_make_no_host_transfer_until_the_log_interval(tmp_path):
    device = minigrad.get_device("strict")
    cfg = config(device="strict", log_interval=4)
    trainer = make_trainer(tmp_path, tiny_model(device="strict"),
                           RandomWindows(TRAIN, BLOCK, 4, seed=0), cfg, VAL)
    before = device.host_transfers
    for _ in range(4):
        trainer.train_step()
    assert device.host_transfers == before  # losses and norms wait on the device
    trainer.flush()
    assert device.host_transfers == before + 1  # all four steps' numbers in one transfer
    assert [s for s, _ in losses(tmp_path)] == [1, 2, 3, 4]
    assert trainer.evaluate() > 0
    assert device.host_transfers == before + 2


# -- evaluation ------------------------------------------------------------------------
def test_text_loss_scores_every_window_once():
    model = tiny_model()
    tokens = TOKENS[:8 * BLOCK + 1]
    loss, perplexity, scored = text_loss(model, tokens, batch_size=3, device="cpu")
    windows = [(tokens[i:i + BLOCK][None].astype(np.int64),
                tokens[i + 1:i + BLOCK + 1][None].astype(np.int64))
               for i in range(0, 8 * BLOCK, BLOCK)]
    expected = np.mean([mean_loss(model, [w], "cpu") for w in windows])
    assert scored == 8 * BLOCK and loss == pytest.approx(expected, rel=1e-5)
    assert perplexity == pytest.approx(math.exp(loss))
    short_loss, _, short_scored = text_loss(model, TOKENS[:5], 4, "cpu")
    assert short_scored == 4 and math.isfinite(short_loss)
    with pytest.raises(ValueError, match="at least 2"):
        text_loss(model, TOKENS[:1], 4, "cpu")
    assert model.training  # evaluation restores the mode


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="--grad-accum must be positive"):
        TrainConfig(grad_accum=0)
    with pytest.raises(ValueError, match="--batching"):
        TrainConfig(batching="shuffled")
    with pytest.raises(ValueError, match="--lr"):
        TrainConfig(lr=0.0)


# -- run records -----------------------------------------------------------------------
def test_metrics_log_resume_drops_records_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 8):
        log.log({"step": step, "loss": 1.0 / step})
    log.close()
    log = MetricsLog(path, keep=4)
    assert log.count == 4
    log.log({"step": 5, "loss": 0.5})
    assert log.count == 5
    log.close()
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]


def test_a_line_torn_by_a_crash_is_skipped_and_dropped_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo', encoding="utf-8")
    assert read_metrics(path) == [{"step": 1, "loss": 2.0}]
    log = MetricsLog(path, keep=1)
    log.log({"step": 2, "loss": 1.5})
    log.close()
    assert read_metrics(path) == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_loss_curve_png(tmp_path, monkeypatch):
    records = [{"step": s, "loss": 1.0 / s} for s in range(1, 6)] + [{"step": 5, "val_loss": 0.7}]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "matplotlib.figure", None)
        assert plot_loss_curve(records, tmp_path / "none.png") is None
    pytest.importorskip("matplotlib", reason="the loss curve is drawn with matplotlib")
    out = plot_loss_curve(records, tmp_path / "loss.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png"]  # no temporary left


def test_loggers_name_the_extra_when_their_package_is_missing(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown logger"):
        make_loggers(["mlflow"], tmp_path, {})
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(LoggerUnavailable, match=r"minigrad-llm\[loggers\]"):
        make_loggers(["tensorboard"], tmp_path, {})
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(LoggerUnavailable, match=r"minigrad-llm\[loggers\].*WANDB_MODE=offline"):
        make_loggers(["wandb"], tmp_path, {})


def test_progress_bar_renders_stats():
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream)
    bar.update(25, loss=1.23456, tok_s=41234.5)
    bar.write("a message")
    line = stream.getvalue().splitlines()[0]
    assert line.startswith("step 25/100 [#####...............]  25%")
    assert "loss 1.235" in line and "tok s 41.2k" in line
    assert stream.getvalue().splitlines()[1] == "a message"
    assert format_duration(3725) == "1:02:05" and format_duration(4.2) == "0:04"


# -- scaling plan ----------------------------------------------------------------------
def test_plan_follows_twenty_tokens_per_parameter():
    plan = make_plan(20_000_000, peak_flops=1e11, mfu=0.5)
    assert plan.parameters == 1_000_000
    assert plan.training_flops == 6 * 1_000_000 * 20_000_000
    assert plan.seconds == pytest.approx(1.2e14 / 5e10)
    assert "compute-optimal parameters" in plan.format() and "40.0 minutes" in plan.format()
    with pytest.raises(ValueError, match="--mfu"):
        make_plan(1000, 1e11, mfu=0.0)


@pytest.mark.parametrize("parameters", [10_000, 1_000_000, 124_000_000])
def test_suggested_shape_has_about_the_planned_size(parameters):
    n_layer, n_head, n_embd = suggest_shape(parameters)
    assert n_embd % n_head == 0
    assert 0.4 < 12 * n_layer * n_embd**2 / parameters < 2.5
