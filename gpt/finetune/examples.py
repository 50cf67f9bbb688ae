"""Fine-tuning examples: records read from JSON / JSONL, tokenized with a loss mask,
split, padded into batches (or packed), and scored per sequence.

An example is (ids, labels): the rendered record's tokens, and per token the token
itself where it is trained (the response) or IGNORE_INDEX where it is not (the prompt,
unless train_on_prompt). The model reads ids[:-1] and is scored against labels[1:], so
the loss counts exactly the predictions of response tokens; cross-entropy skips the
IGNORE_INDEX targets. Examples longer than block_size + 1 tokens are cut to that length;
one with no trained token left is dropped (and counted).

Batches pad inputs with token 0 and targets with IGNORE_INDEX, to the longest example
in the batch. Packing instead fills each row with several whole examples back to back
(fewer pad tokens; attention then also sees the earlier examples of the row, which the
loss mask does not hide: a common simplification).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import minigrad
from gpt.finetune.templates import render
from minigrad.nn import functional as F

IGNORE_INDEX = -100  # cross_entropy's default: targets that count for nothing


def read_records(path) -> list[dict]:
    """The records of a .json file (a list of objects) or a .jsonl file (one per line);
    a missing, binary or malformed file is a ValueError naming it (and the line)."""
    path = Path(path)
    if not path.is_file():
        what = "a directory, not a records file" if path.is_dir() else "not found"
        raise FileNotFoundError(f"--data: {path} is {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--data: {path} is not UTF-8 text ({exc})") from None
    if path.suffix == ".jsonl":
        records = [_json_line(path, number, line)
                   for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{path}: expected a list of records (JSON objects)")
    if not records:
        raise ValueError(f"{path}: holds no records")
    return records


def _json_line(path: Path, number: int, line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} line {number}: not valid JSON: {exc}") from None


def split_records(records: list, val_fraction: float, test_fraction: float) -> dict:
    """{"train", "val", "test"}: consecutive slices in file order (train first), so a
    split is reproducible from the file alone."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1
            and val_fraction + test_fraction < 1):
        raise ValueError(f"--val-fraction ({val_fraction}) and --test-fraction "
                         f"({test_fraction}) must be in [0, 1) and sum to less than 1")
    n = len(records)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    n_train = n - n_test - n_val
    if n_train <= 0:
        raise ValueError(f"{n} records leave none for training")
    return {"train": records[:n_train], "val": records[n_train:n_train + n_val],
            "test": records[n_train + n_val:]}


def encode_example(tokenizer, record: dict, block_size: int, train_on_prompt: bool = False,
                   response: str | None = None) -> tuple[list[int], list[int]]:
    """(ids, labels) of one record, cut to block_size + 1 tokens (see the module doc)."""
    ids, labels = [], []
    for piece, trained in render(tokenizer, record, response):
        ids.extend(piece)
        labels.extend(piece if trained or train_on_prompt else [IGNORE_INDEX] * len(piece))
    return ids[:block_size + 1], labels[:block_size + 1]


def encode_examples(tokenizer, records, block_size: int, train_on_prompt: bool = False):
    """(examples, dropped): the examples with at least one trained prediction."""
    examples, dropped = [], 0
    for record in records:
        ids, labels = encode_example(tokenizer, record, block_size, train_on_prompt)
        if any(t != IGNORE_INDEX for t in labels[1:]):
            examples.append((ids, labels))
        else:
            dropped += 1
    return examples, dropped


def pad_batch(examples) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) int64 (B, T), T the longest example minus one."""
    T = max(len(ids) for ids, _ in examples) - 1
    inputs = np.zeros((len(examples), T), dtype=np.int64)
    targets = np.full((len(examples), T), IGNORE_INDEX, dtype=np.int64)
    for row, (ids, labels) in enumerate(examples):
        inputs[row, :len(ids) - 1] = ids[:-1]
        targets[row, :len(labels) - 1] = labels[1:]
    return inputs, targets


def pack_examples(examples, block_size: int) -> list[tuple[list[int], list[int]]]:
    """Whole examples concatenated, in order, into rows of at most block_size + 1 tokens."""
    packed, ids, labels = [], [], []
    for e_ids, e_labels in examples:
        if ids and len(ids) + len(e_ids) > block_size + 1:
            packed.append((ids, labels))
            ids, labels = [], []
        ids, labels = ids + e_ids, labels + e_labels
    if ids:
        packed.append((ids, labels))
    return packed


class ExampleBatches:
    """Padded batches of examples, epoch after epoch in a seeded shuffled order;
    resumable from `state_dict()` like the pretraining loaders."""

    def __init__(self, examples, batch_size: int, seed: int = 0, shuffle: bool = True,
                 collate=pad_batch):
        if not examples:
            raise ValueError("fine-tuning: no examples to train on")
        if batch_size <= 0:
            raise ValueError(f"fine-tuning: batch size must be positive, got {batch_size}")
        self.examples, self.batch_size, self.seed, self.shuffle = (examples, batch_size, seed,
                                                                   shuffle)
        self.collate = collate
        self.epoch, self.position = 0, 0
        self.order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        n = len(self.examples)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def next_batch(self):
        if self.position >= len(self.order):
            self.epoch, self.position = self.epoch + 1, 0
            self.order = self._epoch_order()
        chosen = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self.collate([self.examples[i] for i in chosen])

    def __iter__(self):
        """One pass in order, for evaluation (does not move the training position)."""
        for start in range(0, len(self.examples), self.batch_size):
            yield self.collate(self.examples[start:start + self.batch_size])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self.order = self._epoch_order()


def sequence_logprobs(model, inputs, targets):
    """(sum of log p(target), number of scored targets), each (B,): the log-probability
    of each sequence's response under `model`, IGNORE_INDEX targets left out."""
    logits, _ = model(inputs)  # (B, T, V)
    return response_logprobs(logits, targets)


def response_logprobs(logits, targets):
    """`sequence_logprobs` from logits (B, T, V) and targets (B, T)."""
    token_nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                ignore_index=IGNORE_INDEX,
                                reduction="none").reshape(targets.shape)  # (B, T), 0 if ignored
    counts = (targets != IGNORE_INDEX).astype(logits.dtype).sum(axis=-1)  # (B,)
    return -token_nll.sum(axis=-1), counts


def heldout_loss(model, batches, device) -> tuple[float, int]:
    """(mean loss per response token, tokens scored) over (inputs, targets) batches."""
    device = minigrad.get_device(device)
    was_training = model.training
    model.eval()
    total = count = None
    try:
        with minigrad.no_grad():
            for inputs, targets in batches:
                logp, n = sequence_logprobs(model, minigrad.tensor(inputs, device=device),
                                            minigrad.tensor(targets, device=device))
                total = -logp.sum() if total is None else total - logp.sum()
                count = n.sum() if count is None else count + n.sum()
    finally:
        model.train(was_training)
    if total is None:
        raise ValueError("evaluation: no examples to score")
    scored = int(count.item())
    return total.item() / max(scored, 1), scored
