"""DPO: the loss and its gradients against PyTorch on the same logits and masks, the
reference (adapters off under LoRA, a frozen copy otherwise), and learning a synthetic
preference to high reward accuracy."""

import json
import math

import numpy as np
import pytest

import minigrad as mg
from gpt import cli
from gpt.finetune import dpo
from gpt.finetune.examples import IGNORE_INDEX, response_logprobs
from gpt.model import GPT, GPTConfig
from gpt.runlog import read_metrics
from gpt.train import TrainConfig
from minigrad.nn import lora

V, T, B = 11, 7, 3


def masked_targets(rng, rows):
    """Targets with a masked prompt of random length and right padding (IGNORE_INDEX)."""
    targets = rng.integers(0, V, (rows, T))
    for row in range(rows):
        start, end = rng.integers(0, 3), rng.integers(4, T + 1)
        targets[row, :start] = IGNORE_INDEX
        targets[row, end:] = IGNORE_INDEX
    return targets


def torch_dpo(torch, logits, ref_logits, targets, beta):
    """Plain PyTorch DPO: gather the target log-probs, mask, sum, -logsigmoid."""
    def seq_logp(lg):
        mask = targets != IGNORE_INDEX
        safe = targets.clamp(min=0)
        logp = torch.log_softmax(lg, -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        return (logp * mask).sum(-1)

    pol, ref = seq_logp(logits), seq_logp(ref_logits).detach()
    half = logits.shape[0] // 2
    margin = beta * ((pol[:half] - ref[:half]) - (pol[half:] - ref[half:]))
    return -torch.nn.functional.logsigmoid(margin).mean(), margin


@pytest.mark.parametrize("beta", [0.1, 2.0])
def test_loss_and_gradients_match_pytorch(torch, beta):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2 * B, T, V)) * 3
    ref_logits = rng.standard_normal((2 * B, T, V)) * 3
    targets = masked_targets(rng, 2 * B)

    ours = mg.tensor(logits, requires_grad=True)
    pol, counts = response_logprobs(ours, mg.tensor(targets))
    ref, _ = response_logprobs(mg.tensor(ref_logits), mg.tensor(targets))
    loss, stats = dpo.dpo_loss(pol[:B], pol[B:], ref[:B], ref[B:], beta)
    loss.backward()

    theirs = torch.tensor(logits, requires_grad=True)
    t_loss, t_margin = torch_dpo(torch, theirs, torch.tensor(ref_logits),
                                 torch.tensor(targets), beta)
    t_loss.backward()
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(counts.numpy(), (targets != IGNORE_INDEX).sum(-1))
    np.testing.assert_allclose(stats["reward_margin"].item(), t_margin.mean().item(),
                               rtol=1e-12)
    assert stats["reward_accuracy"].item() == pytest.approx((t_margin > 0).double().mean()
                                                            .item())
    masked = targets == IGNORE_INDEX  # prompt and padding positions get no gradient
    assert np.all(ours.grad.numpy()[masked] == 0)


def test_loss_is_stable_for_large_margins():
    big = mg.tensor([500.0, -500.0], dtype="float64", requires_grad=True)
    zero = mg.tensor([0.0, 0.0], dtype="float64")
    loss, _ = dpo.dpo_loss(big, zero, zero, zero, beta=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(500.0 / 2)  # log(1 + e^-500) ~ 0, log(1 + e^500) ~ 500
    np.testing.assert_allclose(big.grad.numpy(), [0.0, -0.5], atol=1e-200)


def synthetic_pairs(n, seed):
    """Prompt tokens 0-4; the chosen response uses tokens 5-7, the rejected one 8-10."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        prompt = list(rng.integers(0, 5, 3))
        pair = []
        for low in (5, 8):
            response = list(rng.integers(low, low + 3, 3))
            pair.append((prompt + response, [IGNORE_INDEX] * 3 + response))
        pairs.append(tuple(pair))
    return pairs


def small_model(seed=0, tie_weights=True):
    return GPT(GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=16,
                         tie_weights=tie_weights), generator=mg.Generator(seed))


def train_config(steps):
    return TrainConfig(steps=steps, batch_size=8, lr=3e-2, min_lr=3e-3, warmup=2,
                       weight_decay=0.0, eval_interval=0, checkpoint_interval=0,
                       log_interval=5)


@pytest.mark.parametrize("use_lora", [True, False])
def test_reward_accuracy_rises_on_a_synthetic_preference(tmp_path, use_lora):
    # Untied, so "all" adapts the output head too: through the frozen final norm alone the
    # adapters could move the logits only a little.
    model = small_model(tie_weights=not use_lora)
    reference = None
    if use_lora:
        lora.inject_lora(model, rank=4, targets="all", generator=mg.Generator(1))
    else:
        reference = dpo.frozen_copy(model)
    val = dpo.preference_batches(synthetic_pairs(32, seed=2), 16, shuffle=False)
    trainer = dpo.DPOTrainer(model, dpo.preference_batches(synthetic_pairs(64, 1), 8), val,
                             train_config(40), tmp_path, beta=0.5, reference=reference,
                             progress=False)
    before = dpo.preference_stats(trainer, val)
    # The policy starts as the reference: every reward is 0, the loss log 2.
    assert before["reward_margin"] == 0.0 and before["reward_accuracy"] == 0.0
    assert before["loss"] == pytest.approx(math.log(2), abs=1e-6)
    reference_state = {k: v.numpy().copy() for k, v in
                       (reference or model).state_dict().items() if "lora_" not in k}
    result = trainer.fit()
    after = dpo.preference_stats(trainer, val)
    assert result.status == "completed"
    assert after["reward_accuracy"] > 0.9
    assert after["reward_margin"] > 0 and after["loss"] < 0.8 * before["loss"]
    assert after["chosen_reward"] > after["rejected_reward"]
    # The reference is untouched: LoRA's frozen base, or the frozen copy.
    for name, value in reference_state.items():
        np.testing.assert_array_equal((reference or model).state_dict()[name].numpy(), value)
    logged = (tmp_path / "metrics.jsonl").read_text()
    assert '"dpo_reward_accuracy"' in logged and '"dpo_chosen_logp"' in logged


def test_full_fine_tuning_needs_a_reference(tmp_path):
    with pytest.raises(ValueError, match="reference must be given"):
        dpo.DPOTrainer(small_model(), dpo.preference_batches(synthetic_pairs(4, 0), 2), None,
                       train_config(5), tmp_path, progress=False)


@pytest.fixture(scope="module")
def preference_setup(tmp_path_factory):
    from tests.gpt.test_finetune_instruct import make_base_run, make_records

    root = tmp_path_factory.mktemp("dpo")
    data = root / "preferences.json"
    data.write_text(json.dumps(make_records(24)))
    return make_base_run(root), data


def test_dpo_command_with_lora_writes_before_and_after(preference_setup, tmp_path, capsys):
    base, data = preference_setup
    code = cli.main(["finetune", "dpo", "--data", str(data), "--from", base, "--lora", "2",
                     "--lora-targets", "all", "--beta", "0.5", "--steps", "4", "--warmup", "1",
                     "--lr", "1e-2", "--batch-size", "4", "--eval-interval", "2",
                     "--no-progress", "--out", str(tmp_path), "--name", "dpo"])
    assert code == 0
    run = tmp_path / "dpo"
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["test_before"]["reward_margin"] == 0.0
    assert evaluation["test_after"]["reward_margin"] != 0.0  # the policy moved off the base
    assert set(evaluation["test_after"]) == set(dpo.STATS)
    assert (run / "adapters.safetensors").exists()
    records = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records if "val_reward_accuracy" in r] == [2, 4]
    assert "test pairs after" in capsys.readouterr().out


def test_interrupted_full_dpo_run_resumes_exactly(preference_setup, tmp_path, monkeypatch):
    base, data = preference_setup
    config = dict(steps=6, batch_size=4, lr=1e-3, warmup=1, eval_interval=0,
                  checkpoint_interval=0, log_interval=1)
    dpo.finetune_dpo(tmp_path / "straight", data, base, TrainConfig(**config), progress=False)
    after_step = dpo.DPOTrainer._after_step

    def stop_at_3(self):
        after_step(self)
        if self.step == 3:
            self._stop_requested = True

    monkeypatch.setattr(dpo.DPOTrainer, "_after_step", stop_at_3)
    result = dpo.finetune_dpo(tmp_path / "broken", data, base, TrainConfig(**config),
                              progress=False)
    assert result.status == "interrupted"
    monkeypatch.setattr(dpo.DPOTrainer, "_after_step", after_step)
    # The reference comes back from --from: the resumed losses equal the unbroken run's.
    assert dpo.finetune_dpo(tmp_path / "broken", resume=True, progress=False).status == \
        "completed"
    losses = [[r["loss"] for r in read_metrics(tmp_path / name / "metrics.jsonl") if "loss" in r]
              for name in ("straight", "broken")]
    assert len(losses[0]) == 6 and losses[0] == losses[1]
