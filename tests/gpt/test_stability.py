"""Training through instability, provoked on purpose: the outlier guard (--skip-outliers),
rollback on divergence (--on-divergence rollback), exact resume through both, and the
running statistics they rest on."""

from __future__ import annotations

import io
import json
import math
import signal

import numpy as np
import pytest

import minigrad
from gpt.data.batches import RandomWindows
from gpt.model import GPT, GPTConfig
from gpt.monitor import DivergenceError
from gpt.runlog import read_metrics, train_curves
from gpt.stability import OutlierGuard, RunningStats, rollback_points
from gpt.train import TrainConfig, Trainer

VOCAB, BLOCK = 11, 8
TRAIN = np.random.default_rng(1).integers(0, VOCAB, 2000).astype(np.uint8)


# -- running statistics ------------------------------------------------------------------
def test_running_stats_are_welford_then_exponential():
    values = np.random.default_rng(0).normal(3.0, 2.0, 40)
    stats = RunningStats(window=40)
    for x in values:
        stats.update(float(x))
    # The first `window` values: the plain mean and (population) variance.
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.var == pytest.approx(values.var(), rel=1e-10)
    # After that each new value weighs 1/window: a jump from the mean m to m + 1 is
    # followed as 1 - (1 - 1/window)^k.
    m = stats.mean
    for _ in range(25):
        stats.update(m + 1.0)
    assert stats.mean - m == pytest.approx(1 - (1 - 1 / 40) ** 25, rel=1e-9)
    assert stats.z_score(math.nan) == math.inf
    copy = RunningStats(window=40)
    copy.load_state_dict(stats.state_dict())
    assert copy.z_score(m + 3.0) == stats.z_score(m + 3.0)


def test_guard_skips_only_outliers_after_warm_up_and_keeps_them_out_of_its_stats():
    warming = OutlierGuard(z_max=4.0, warmup=3, max_in_row=3)
    assert warming.check(1, 2.0, 1.0) is None and warming.check(2, 2.1, 1.1) is None
    assert warming.check(3, 9.0, 50.0) is None  # warm-up: accepted however large
    assert warming.check(4, 90.0, 500.0) is not None

    guard = OutlierGuard(z_max=4.0, warmup=5, max_in_row=3)
    noise = np.random.default_rng(0).normal(0, 0.01, 30)
    for step, e in enumerate(noise[:21], start=1):
        assert guard.check(step, 2.0 + e, 1.0 + e) is None
    before = guard.state_dict()
    skip = guard.check(22, 2.0, 40.0)  # a gradient-norm outlier alone is enough
    assert skip is not None and skip.grad_norm_z > 4.0 and skip.loss_z < 4.0
    assert guard.state_dict()["loss"] == before["loss"]  # the outlier did not enter
    assert skip.record()["event"] == "outlier_skipped"
    assert "step 22: update skipped" in skip.record()["message"]
    assert guard.check(23, math.nan, 1.0) is not None  # non-finite: always skipped
    assert guard.in_row == 2 and guard.skips == 2
    guard.check_in_row(23)  # 2 < 3: still outliers
    assert guard.check(24, 2.0, 1.0) is None  # back in range: the row is broken
    assert guard.in_row == 0
    for step in (25, 26, 27):
        assert guard.check(step, 100.0, 1.0) is not None
    with pytest.raises(DivergenceError, match="step 27: 3 updates in a row skipped"):
        guard.check_in_row(27)


# -- provoking instability -----------------------------------------------------------------
class PoisonedWindows:
    """Random windows where the batches numbered in `poisoned` (from 1, counted over the
    whole stream) carry a factor for the loss: NaN for a broken batch, a large number for
    an outlier. `interrupt_at` raises Ctrl-C when that batch is drawn. Its position (the
    count) is part of its state, so checkpoints, resumes and rollbacks restore it."""

    def __init__(self, poisoned: dict, interrupt_at: int | None = None, seed: int = 3):
        self.inner = RandomWindows(TRAIN, BLOCK, 4, seed=seed)
        self.poisoned, self.interrupt_at = poisoned, interrupt_at
        self.drawn, self.factor = 0, 1.0

    def next_batch(self):
        self.drawn += 1
        if self.drawn == self.interrupt_at:
            signal.raise_signal(signal.SIGINT)
        self.factor = self.poisoned.get(self.drawn, 1.0)
        return self.inner.next_batch()

    def state_dict(self):
        return {"inner": self.inner.state_dict(), "drawn": self.drawn}

    def load_state_dict(self, state):
        self.inner.load_state_dict(state["inner"])
        self.drawn = state["drawn"]


class PoisonedTrainer(Trainer):
    """Scales each micro-batch's loss (and so its gradients) by its batch's factor."""

    def micro_batch_loss(self):
        loss = super().micro_batch_loss()
        factor = self.batches.factor
        return loss if factor == 1.0 else loss * factor


def run(run_dir, poisoned, resume=False, interrupt_at=None, stream=None, **overrides):
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16),
                generator=minigrad.Generator(0))
    settings = dict(steps=24, batch_size=4, warmup=2, lr=3e-3, log_interval=5,
                    eval_interval=0, checkpoint_interval=8, seed=0, outlier_warmup=6)
    config = TrainConfig(**{**settings, **overrides})
    trainer = PoisonedTrainer(model, PoisonedWindows(poisoned, interrupt_at), None, config,
                              run_dir, progress=stream is not None,
                              stream=stream or io.StringIO())
    if resume:
        trainer.load_checkpoint()
    return trainer, trainer.fit()


def records(run_dir):
    return read_metrics(run_dir / "metrics.jsonl")


def events(run_dir):
    return [(r["event"], r["step"]) for r in records(run_dir) if "event" in r]


def trained(run_dir, key="loss"):
    """(step, value) of every step record, in the order logged (a rollback re-runs steps)."""
    return [(r["step"], r[key]) for r in records(run_dir) if key in r and "event" not in r]


NAN_BATCH = {11: math.nan}  # step 11 of a run with grad_accum 1
BAD_WINDOW = {b: 1e3 for b in range(13, 17)}  # steps 13-16: loss x1000, gradient x1000


def test_guard_off_a_nan_batch_stops_the_run_as_before(tmp_path):
    _, result = run(tmp_path, NAN_BATCH)
    assert (result.status, result.step, result.checkpoint_step) == ("non-finite", 11, 8)
    assert events(tmp_path)[-1] == ("non_finite", 11)
    assert all("skipped" not in r for r in records(tmp_path))


def test_guard_off_a_bad_window_is_trained_on(tmp_path):
    _, result = run(tmp_path, BAD_WINDOW)
    assert result.status == "completed"
    losses = dict(trained(tmp_path))
    assert min(losses[s] for s in range(13, 17)) > 100 * max(losses[s] for s in range(1, 13))
    assert not any(e == "outlier_skipped" for e, _ in events(tmp_path))


@pytest.mark.parametrize("poisoned, skipped", [(NAN_BATCH, [11]),
                                               (BAD_WINDOW, [13, 14, 15, 16])])
def test_guard_on_skips_the_outliers_and_finishes(tmp_path, poisoned, skipped):
    bar = io.StringIO()
    trainer, result = run(tmp_path, poisoned, skip_outliers=6.0, stream=bar)
    assert f"skips {len(skipped)} |" in bar.getvalue().splitlines()[-1]  # the progress bar
    assert result.status == "completed" and result.step == 24
    assert [s for e, s in events(tmp_path) if e == "outlier_skipped"] == skipped
    assert [s for s, _ in trained(tmp_path, "skipped")] == skipped
    assert trained(tmp_path, "skips")[-1] == (24, len(skipped))  # counted in the metrics
    assert trainer.guard.skips == len(skipped)
    skip_event = next(r for r in records(tmp_path) if r.get("event") == "outlier_skipped")
    assert {"loss", "grad_norm", "loss_z", "grad_norm_z"} <= set(skip_event)
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())


def test_a_skipped_step_leaves_weights_and_optimizer_alone(tmp_path):
    """Step 11 skipped: the weights are those after step 10 (and AdamW counted 10 steps),
    yet the step counter, the schedule and the data moved on."""
    trainer, _ = run(tmp_path / "a", {11: 1e6}, skip_outliers=6.0, steps=11)
    reference, result = run(tmp_path / "b", {}, skip_outliers=6.0, steps=11, interrupt_at=10)
    assert result.step == 10
    for p, q in zip(trainer.model.parameters(), reference.model.parameters()):
        assert np.array_equal(p.numpy(), q.numpy())
    assert trainer.optimizer.state_dict()["state"][0]["step"] == 10
    assert trainer.scheduler.last_step == 11 and trainer.batches.drawn == 11


def test_too_many_skips_in_a_row_is_a_divergence(tmp_path):
    _, result = run(tmp_path, {b: 1e3 for b in range(13, 30)}, skip_outliers=6.0,
                    max_skips_in_row=3)
    assert (result.status, result.step) == ("diverged", 15)
    assert "3 updates in a row skipped" in result.message
    assert events(tmp_path)[-1] == ("diverged", 15)


def test_rollback_recovers_from_a_nan_batch(tmp_path):
    trainer, result = run(tmp_path, NAN_BATCH, on_divergence="rollback",
                          rollback_lr_factor=0.5)
    assert result.status == "completed" and result.step == 24
    rollback = next(r for r in records(tmp_path) if r.get("event") == "rollback")
    assert (rollback["step"], rollback["to_step"], rollback["skipped_batches"]) == (11, 8, 3)
    # Steps 9-11 were re-run on fresh batches (12-14) at half the learning rate.
    steps = [s for s, _ in trained(tmp_path)]
    assert steps == list(range(1, 12)) + list(range(9, 25))
    lrs = trained(tmp_path, "lr")
    assert lrs[11][1] == pytest.approx(lrs[8][1] / 2)  # step 9 again, lr halved
    assert trainer.batches.drawn == 24 + 3
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())
    assert trainer.rollbacks == 1


def test_rollbacks_run_out_then_stop_with_a_clear_message(tmp_path):
    poisoned = {b: math.nan for b in range(9, 60, 2)}  # a NaN in every window
    _, result = run(tmp_path, poisoned, on_divergence="rollback", max_rollbacks=2)
    assert result.status == "non-finite"
    assert "training stopped after 2 rollbacks (--max-rollbacks 2)" in result.message
    assert [e for e, _ in events(tmp_path)] == ["rollback", "rollback", "non_finite"]


@pytest.mark.parametrize("options, interrupt_at", [
    (dict(on_divergence="rollback"), 10),  # Ctrl-C before the NaN batch (11)
    (dict(on_divergence="rollback"), 16),  # after the rollback
    (dict(skip_outliers=6.0), 15),  # inside the bad window, guard statistics in flight
    (dict(on_divergence="rollback", rollback_lr_factor=0.01, lr=1e3, grad_clip=0.0), 10),
], ids=["rollback-before", "rollback-after", "guard", "rollback-twice"])
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_resume_in_the_middle_equals_an_unbroken_run(tmp_path, options, interrupt_at):
    poisoned = {**NAN_BATCH, **BAD_WINDOW} if "skip_outliers" in options else NAN_BATCH
    unbroken, result = run(tmp_path / "a", poisoned, **options)
    assert result.status == "completed"
    _, stopped = run(tmp_path / "b", poisoned, interrupt_at=interrupt_at, **options)
    assert stopped.status == "interrupted"
    resumed, result = run(tmp_path / "b", poisoned, resume=True, **options)
    assert result.status == "completed"
    for key in ("loss", "grad_norm", "lr", "skips"):
        assert trained(tmp_path / "b", key) == trained(tmp_path / "a", key)
    assert events(tmp_path / "b") == events(tmp_path / "a")
    for p, q in zip(unbroken.model.parameters(), resumed.model.parameters()):
        assert np.array_equal(p.numpy(), q.numpy())


def test_loss_curve_marks_rollbacks_and_skips(tmp_path):
    run(tmp_path, {**NAN_BATCH, 20: 1e3}, on_divergence="rollback", skip_outliers=6.0,
        max_skips_in_row=1)
    # Both poisoned batches are skipped; one skip is a row of max_skips_in_row = 1, so
    # each is also a divergence and rolls back.
    pieces, rollbacks, skipped = train_curves(records(tmp_path))
    assert rollbacks == [11, 17]
    assert [s for s, _ in skipped] == [17]  # step 11's NaN loss has no place on the plot
    assert [(p[0][0], p[-1][0]) for p in pieces] == [(1, 10), (9, 17), (17, 24)]
    pytest.importorskip("matplotlib", reason="the loss curve is drawn with matplotlib")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


# -- per-layer numbers and the divergence report -----------------------------------------
class OneLayerBlowsUp(PoisonedTrainer):
    """From step `start` on, the gradient of `layer` grows tenfold each step (before
    clipping), as if that layer alone had started to diverge."""

    layer, start = "h.0.mlp.c_fc", 13

    def forward_backward(self):
        total = super().forward_backward()
        if self.step + 1 >= self.start:
            factor = 10.0 ** (self.step + 2 - self.start)
            for name, p in self.model.named_parameters():
                if name.startswith(self.layer + "."):
                    p.grad.data = p.grad.data * factor
        return total


def test_layer_stats_add_up_and_measure_the_update(tmp_path):
    trainer, result = run(tmp_path, {}, layer_stats=True, steps=6, warmup=1, checkpoint_interval=0)
    assert result.status == "completed"
    step = [r for r in records(tmp_path) if "event" not in r][-1]
    layers = step["layer_grad_norm"]
    assert "h.0.attn.c_attn" in layers and "wte" in layers and "ln_f" in layers
    # The layers' norms make up the global norm (both before clipping).
    assert math.sqrt(sum(v * v for v in layers.values())) == pytest.approx(step["grad_norm"],
                                                                            rel=1e-5)
    assert all(0 < r < 0.5 for r in step["layer_update_ratio"].values())
    assert list(step["block_max_activation"]) == ["h.0"]
    # The update ratio of a step taken by hand: |w_after - w_before| / |w_before|.
    before = {n: p.numpy().copy() for n, p in trainer.model.named_parameters()}
    trainer.config.steps = 7
    trainer.fit()
    last = [r for r in records(tmp_path) if "event" not in r][-1]
    after = dict(trainer.model.named_parameters())
    w0, w1 = before["h.0.attn.c_proj.weight"], after["h.0.attn.c_proj.weight"].numpy()
    b0, b1 = before["h.0.attn.c_proj.bias"], after["h.0.attn.c_proj.bias"].numpy()
    expected = math.sqrt(((w1 - w0) ** 2).sum() + ((b1 - b0) ** 2).sum()) / math.sqrt(
        (w0 ** 2).sum() + (b0 ** 2).sum())
    assert last["layer_update_ratio"]["h.0.attn.c_proj"] == pytest.approx(expected, rel=1e-4)


def test_report_names_the_layer_that_moved_first(tmp_path, capsys):
    from gpt.cli import main

    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=2, n_embd=16),
                generator=minigrad.Generator(0))
    config = TrainConfig(steps=24, batch_size=4, warmup=2, lr=3e-3, log_interval=5,
                         eval_interval=0, checkpoint_interval=8, seed=0, layer_stats=True)
    stream = io.StringIO()
    trainer = OneLayerBlowsUp(model, PoisonedWindows({16: math.nan}), None, config, tmp_path,
                              progress=False, stream=stream)
    result = trainer.fit()
    assert (result.status, result.step) == ("non-finite", 16)
    printed = stream.getvalue()  # the trainer prints the report when it stops
    assert "the layer that moved first: h.0.mlp.c_fc (its gradient norm" in printed
    assert "at step 13" in printed

    assert main(["report", str(tmp_path), "--last", "6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("non_finite at step 16: training stopped at step 16")
    assert [line.split()[0] for line in out.splitlines()[3:9]] == [str(s) for s in range(11, 17)]
    assert "the layer that moved first: h.0.mlp.c_fc" in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "per-layer curves" not in out
    else:
        assert (tmp_path / "divergence.png").read_bytes()[:4] == b"\x89PNG"


def test_report_without_layer_stats_says_how_to_get_them(tmp_path, capsys):
    from gpt.cli import main

    run(tmp_path, NAN_BATCH)
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "the last 10 steps:" in out and "train with --layer-stats" in out
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_z_loss_option_adds_the_palm_term_to_the_training_loss(tmp_path):
    from gpt.model import z_loss

    trainer, _ = run(tmp_path / "z", {}, z_loss=0.5, steps=3, checkpoint_interval=0)
    inputs, targets = RandomWindows(TRAIN, BLOCK, 4, seed=3).next_batch()  # step 1's batch
    model = GPT(trainer.model.config, generator=minigrad.Generator(0))  # step 1's weights
    logits, loss = model(minigrad.tensor(inputs), minigrad.tensor(targets))
    expected = loss.item() + 0.5 * z_loss(logits).item()
    assert trained(tmp_path / "z")[0] == (1, pytest.approx(expected, rel=1e-6))
    assert 0.5 * z_loss(logits).item() > 1.0  # large enough to tell the two apart


def test_cli_takes_the_options_and_resumes_with_them(tmp_path):
    from gpt.cli import main

    text = tmp_path / "text.txt"
    text.write_text("".join(f"{i}: the cat sat on the mat.\n" for i in range(200)),
                    encoding="utf-8")
    flags = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
             "--batch-size", "4", "--warmup", "2", "--eval-interval", "0", "--no-progress",
             "--max-new-tokens", "5", "--skip-outliers", "4", "--outlier-warmup", "3",
             "--on-divergence", "rollback", "--qk-norm", "--logit-softcap", "20",
             "--z-loss", "1e-4", "--layer-stats", "--checkpoint-interval", "4"]
    assert main(["train", "--data", str(text), "--out", str(tmp_path), "--name", "r",
                 "--steps", "6", *flags]) == 0
    run_dir = tmp_path / "r"
    points = [p.name for p in rollback_points(run_dir / "last_good")]
    assert points == ["step-00000000", "step-00000004"]  # the final save (6) is not one
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["qk_norm"] and config["train"]["on_divergence"] == "rollback"
    assert [r["step"] for r in records(run_dir) if "layer_grad_norm" in r] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(SystemExit):  # argparse refuses an unknown mode
        main(["train", "--on-divergence", "retry"])
    assert main(["train", "--skip-outliers", "-1", "--out", str(tmp_path)]) == 2


TOO_HIGH = dict(lr=1e3, grad_clip=0.0)  # the weights blow up within ten steps


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_a_learning_rate_far_too_high_under_each_option(tmp_path):
    # Where a run with lr 1e3 first goes non-finite depends on the last bits of every
    # op, so the other runs are checked against that step, not a number written here.
    _, result = run(tmp_path / "off", {}, **TOO_HIGH)
    assert result.status == "non-finite"  # as before: stop
    first_bad = result.step
    assert first_bad > 1

    _, result = run(tmp_path / "guard", {}, skip_outliers=6.0, **TOO_HIGH)
    # Every step from first_bad on is an outlier: the guard skips five, then calls it
    # divergence.
    assert (result.status, result.step) == ("diverged", first_bad + 4)
    assert [s for e, s in events(tmp_path / "guard") if e == "outlier_skipped"] == list(
        range(first_bad, first_bad + 5))

    trainer, result = run(tmp_path / "rollback", {}, on_divergence="rollback",
                          rollback_lr_factor=0.01, **TOO_HIGH)
    assert result.status == "completed" and result.step == 24
    rollbacks = [r for r in records(tmp_path / "rollback") if r.get("event") == "rollback"]
    # Each rollback goes back to a finite checkpoint before the divergence and cuts the lr
    # by 0.01, until the run survives.
    assert rollbacks and all(r["to_step"] < r["step"] for r in rollbacks)
    assert rollbacks[0]["step"] == first_bad
    assert trainer.scheduler.base_lrs == pytest.approx([1e3 * 0.01 ** len(rollbacks)] * 2)
    assert all(np.isfinite(p.numpy()).all() for p in trainer.model.parameters())


def test_the_guard_costs_one_host_transfer_per_step(tmp_path):
    device = minigrad.get_device("strict")
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16),
                generator=minigrad.Generator(0)).to("strict")
    config = TrainConfig(steps=8, batch_size=4, warmup=1, log_interval=4, eval_interval=0,
                         checkpoint_interval=0, device="strict", skip_outliers=5.0)
    trainer = Trainer(model, RandomWindows(TRAIN, BLOCK, 4, seed=0), None, config, tmp_path,
                      progress=False, stream=io.StringIO())
    before = device.host_transfers
    for _ in range(3):
        trainer.train_step()
    assert device.host_transfers == before + 3  # the loss and norm of each, together


def test_a_rollback_goes_further_back_only_when_stuck(tmp_path):
    # Batch 17 is drawn at step 14 after the first rollback (3 batches dropped): a new
    # divergence, past step 11, so the run goes back to step 8 again, not further.
    _, result = run(tmp_path, {11: math.nan, 17: math.nan}, on_divergence="rollback")
    assert result.status == "completed"
    rollbacks = [r for r in records(tmp_path) if r.get("event") == "rollback"]
    assert [(r["step"], r["to_step"]) for r in rollbacks] == [(11, 8), (14, 8)]
    # The points: the last ROLLBACK_POINTS = 3 interval checkpoints.
    assert [p.name for p in rollback_points(tmp_path / "last_good")] == [
        "step-00000008", "step-00000016", "step-00000024"]
