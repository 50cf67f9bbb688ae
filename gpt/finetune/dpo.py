"""Direct preference optimisation (Rafailov et al. 2023): learn from pairs of responses,
one preferred (chosen) and one not (rejected), without a reward model.

For a prompt x with responses y_c (chosen) and y_r (rejected), the policy pi (the model
being trained) and a frozen reference (the starting model):

    r_c = beta (log pi(y_c | x) - log ref(y_c | x))      the implicit reward of y_c
    r_r = beta (log pi(y_r | x) - log ref(y_r | x))
    loss = -log sigmoid(r_c - r_r) = logsumexp(0, -(r_c - r_r))

log pi(y | x) sums the log-probabilities of the response tokens only (the prompt is
masked, as in instruction tuning). Gradients flow through the policy's log-probs alone.
Logged per step: the loss, the mean rewards, their margin r_c - r_r, the reward accuracy
(the share of pairs with r_c > r_r) and the policy's mean chosen / rejected log-probs.

The reference costs no second copy of the weights under LoRA: it is the same model with
the adapters switched off. For full fine-tuning it is a frozen copy of the start.
Each batch stacks the chosen examples over the rejected ones, (2B, T), so one forward
pass of each model scores both.
"""

from __future__ import annotations

import copy
import sys
from contextlib import nullcontext
from dataclasses import dataclass

import minigrad
from gpt.files import CONFIG_FILE, EVALUATION_FILE
from gpt.finetune.examples import ExampleBatches, encode_example, pad_batch, sequence_logprobs
from gpt.finetune.runs import load_start, open_run, train_stage
from gpt.train import TrainConfig, Trainer, TrainResult
from minigrad.io import atomic
from minigrad.nn import lora


@dataclass
class DPOOptions:
    beta: float = 0.1  # how far from the reference the policy may move (larger: less)
    val_fraction: float = 0.05
    test_fraction: float = 0.1


STATS = ("loss", "chosen_reward", "rejected_reward", "reward_margin", "reward_accuracy",
         "chosen_logp", "rejected_logp")


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """(mean loss, stats) from per-pair sequence log-probs, each (B,); the reference's
    are constants. stats: name -> 0-d tensor (see STATS), on the device."""
    chosen_reward = (policy_chosen - ref_chosen.detach()) * beta  # (B,)
    rejected_reward = (policy_rejected - ref_rejected.detach()) * beta
    margin = chosen_reward - rejected_reward
    # -log sigmoid(m) = log(1 + e^-m) = logsumexp([0, -m]): stable for either sign of m.
    losses = minigrad.stack([margin * 0.0, -margin], axis=-1).logsumexp(axis=-1)  # (B,)
    loss = losses.mean()
    stats = {"loss": loss.detach(), "chosen_reward": chosen_reward.detach().mean(),
             "rejected_reward": rejected_reward.detach().mean(),
             "reward_margin": margin.detach().mean(),
             "reward_accuracy": (margin.detach() > 0).astype(margin.dtype).mean(),
             "chosen_logp": policy_chosen.detach().mean(),
             "rejected_logp": policy_rejected.detach().mean()}
    return loss, stats


def encode_pairs(tokenizer, records, block_size: int):
    """(pairs, dropped): per record the (chosen, rejected) examples, both with a trained
    response token left after cutting to block_size + 1."""
    pairs, dropped = [], 0
    for i, record in enumerate(records):
        for key in ("chosen", "rejected"):
            if not isinstance(record.get(key), str):
                raise ValueError(f"preference record {i} needs '{key}' as a string; got keys "
                                 f"{sorted(record)}")
        pair = tuple(encode_example(tokenizer, record, block_size, response=record[key])
                     for key in ("chosen", "rejected"))
        if all(any(t != -100 for t in labels[1:]) for _, labels in pair):
            pairs.append(pair)
        else:
            dropped += 1
    return pairs, dropped


def pad_pairs(pairs):
    """(inputs, targets) (2B, T): the B chosen examples, then the B rejected ones."""
    return pad_batch([c for c, _ in pairs] + [r for _, r in pairs])


def preference_batches(pairs, batch_size: int, seed: int = 0, shuffle: bool = True):
    return ExampleBatches(pairs, batch_size, seed, shuffle, collate=pad_pairs)


class DPOTrainer(Trainer):
    """The pretraining loop (checkpoints, resume, logging, Ctrl-C) with the DPO loss.

    The model is the policy. reference: a frozen model, or None when the model carries
    LoRA adapters (the reference is then the model with them off). val_batches: held-out
    pairs scored at each evaluation (None: no evaluation)."""

    def __init__(self, model, batches, val_batches, config, run_dir, beta: float = 0.1,
                 reference=None, **kwargs):
        super().__init__(model, batches, None, config, run_dir, **kwargs)
        if not beta > 0:
            raise ValueError(f"dpo: --beta must be positive, got {beta}")
        if reference is None and not lora.lora_modules(model):
            raise ValueError("dpo: without LoRA adapters the reference must be given (a "
                             "frozen copy of the starting model; see frozen_copy)")
        self.beta, self.reference, self.val_batches = beta, reference, val_batches
        self._stats: list = []  # (step, stats) not yet fetched

    def reference_logprobs(self, inputs, targets):
        """The reference's sequence log-probs (B,), no graph, in eval mode."""
        model = self.model if self.reference is None else self.reference
        switch = lora.adapters_disabled(model) if self.reference is None else nullcontext()
        was_training = model.training
        model.eval()
        try:
            with minigrad.no_grad(), switch:
                logp, _ = sequence_logprobs(model, inputs, targets)
        finally:
            model.train(was_training)
        return logp

    def pair_loss(self, inputs, targets):
        """The DPO loss and stats of one (2B, T) batch of host arrays."""
        inputs = minigrad.tensor(inputs, device=self.device)
        targets = minigrad.tensor(targets, device=self.device)
        half = inputs.shape[0] // 2
        ref = self.reference_logprobs(inputs, targets)
        policy, _ = sequence_logprobs(self.model, inputs, targets)
        return dpo_loss(policy[:half], policy[half:], ref[:half], ref[half:], self.beta)

    def micro_batch_loss(self):
        loss, stats = self.pair_loss(*self.batches.next_batch())
        self._stats.append((self.step + 1, stats))
        return loss

    def flush(self) -> None:
        """Log the queued DPO statistics (one host transfer), then the loss and norm."""
        if self._stats:
            queued, self._stats = self._stats, []
            values = minigrad.stack([s[name] for _, s in queued for name in STATS])
            values = values.numpy().reshape(len(queued), len(STATS)).tolist()
            for (step, _), row in zip(queued, values):  # the loss is the base's record
                self._log({"step": step, **{f"dpo_{n}": v for n, v in zip(STATS, row)
                                            if n != "loss"}})
        super().flush()

    def evaluate(self) -> float | None:
        """The mean DPO statistics over the held-out pairs (logged as val_*); returns
        the held-out loss."""
        if self.val_batches is None:
            return None
        stats = preference_stats(self, self.val_batches)
        self._log({"step": self.step, **{f"val_{n}": v for n, v in stats.items()
                                         if n != "loss"}})  # val_loss: the base logs it
        return stats["loss"]


def preference_stats(trainer: DPOTrainer, batches) -> dict:
    """Mean DPO statistics (STATS, floats) over batches of pairs, no gradients: what the
    run reports before and after training."""
    was_training = trainer.model.training
    trainer.model.eval()
    totals, pairs = None, 0
    try:
        with minigrad.no_grad():
            for inputs, targets in batches:
                _, stats = trainer.pair_loss(inputs, targets)
                n = inputs.shape[0] // 2
                row = minigrad.stack([stats[name] for name in STATS]) * float(n)
                totals = row if totals is None else totals + row
                pairs += n
    finally:
        trainer.model.train(was_training)
    if totals is None:
        raise ValueError("dpo: no preference pairs to evaluate")
    return dict(zip(STATS, (totals * (1.0 / pairs)).numpy().tolist()))


def frozen_copy(model):
    """The reference for full fine-tuning: a copy of the starting model that never trains."""
    reference = copy.deepcopy(model)
    reference.requires_grad_(False)
    return reference.eval()


def finetune_dpo(run_dir, data=None, start=None, train: TrainConfig | None = None,
                 options: DPOOptions | None = None, lora: dict | None = None,
                 resume: bool = False, progress: bool = True, stream=None) -> TrainResult:
    """Align `start` (a run folder, typically instruction-tuned, or a Hugging Face
    checkpoint) to the preference records in `data`, in `run_dir` (resume=True continues
    there; a `train` given then changes only the device). Writes EVALUATION_FILE: the DPO
    statistics of the test pairs before and after."""
    stream = stream or sys.stdout
    run = open_run(run_dir, "dpo", DPOOptions, data=data, start=start, train=train,
                   options=options, lora_settings=lora, resume=resume, stream=stream)
    run_dir, model, tokenizer, config = run.run_dir, run.model, run.tokenizer, run.config
    train, options, splits = run.train, run.options, run.splits
    reference = None
    if config["finetune"].get("lora") is None:
        reference = frozen_copy(load_start(run.start, train.device)[0] if resume else model)
    batches, dropped = {}, 0
    for name, part in splits.items():
        pairs, lost = encode_pairs(tokenizer, part, model.config.block_size)
        dropped += lost
        batches[name] = (preference_batches(pairs, train.batch_size, train.seed,
                                            shuffle=name == "train") if pairs else None)
    if batches["train"] is None:
        raise ValueError("no preference pair has response tokens within block size "
                         f"{model.config.block_size}")
    print(f"pairs: {', '.join(f'{len(v)} {k}' for k, v in splits.items())}"
          + (f" ({dropped} cut to nothing, left out)" if dropped else ""), file=stream)
    trainer = DPOTrainer(model, batches["train"], batches["val"], train, run_dir,
                         beta=options.beta, reference=reference, progress=progress)
    before = config["finetune"].get("test_before")
    if not resume and batches["test"] is not None:
        before = config["finetune"]["test_before"] = preference_stats(trainer, batches["test"])
        atomic.write_json(run_dir / CONFIG_FILE, config)
    result = train_stage(trainer, model, run_dir, resume, lambda m: print(m, file=stream))
    if result.status == "completed" and batches["test"] is not None:
        after = preference_stats(trainer, batches["test"])
        atomic.write_json(run_dir / EVALUATION_FILE, {"test_before": before, "test_after": after})
        for label, stats in (("before", before), ("after", after)):
            print(f"test pairs {label}: " + ", ".join(f"{k} {v:.4f}" for k, v in stats.items()),
                  file=stream)
    return result
