"""Classification fine-tuning (the book's chapter 6): a GPT with a class head.

    python -m gpt finetune classify --data SMSSpamCollection.tsv --from runs/base
    python -m gpt classify runs/spam "You won a prize, call now" "see you at 6?"

Data: TSV lines `label<TAB>text`, or CSV (with a header) / JSONL records with a text and a
label column. Classes are the sorted label names (for two classes the second, e.g. "spam"
after "ham", is the positive one). Balancing: undersample every class to the smallest
one, or weight the loss by N / (K n_class). A seeded shuffle splits train / val / test.

Each text is tokenized and truncated to the context (`max_length`, default block_size);
a batch is padded to its longest text with -1, "no token": the classifier masks those
positions out. Causal attention means a real token never sees the padding after it, so
padding changes nothing. The class head reads the last real token's features (the only
position that has seen the whole text) or, with pooling "mean", their mean over real tokens.

What trains (`trainable`): "head", "last:N" (the last N blocks, the final norm and the
head; the book's choice is last:1), "all", or LoRA adapters (`lora` settings, with the head).
Everything else is frozen: excluded from the optimizer, its weights bit-identical.

Training is the pretraining loop (`gpt.train.Trainer`: checkpoints, exact resume, metrics,
Ctrl-C), evaluating the validation loss; early stopping ends the run after `patience`
evaluations without a new best and the best weights (BEST_WEIGHTS_FILE) are the result.
Each split then gets accuracy, per-class precision / recall / F1 and a confusion matrix,
printed, in CLASSIFICATION_FILE and as CONFUSION_PLOT.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import minigrad
from gpt import pretrained
from gpt.files import (
    BEST_WEIGHTS_FILE,
    CLASSIFICATION_FILE,
    CONFIG_FILE,
    CONFUSION_PLOT,
    METRICS_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
)
from gpt.finetune.examples import ExampleBatches
from gpt.finetune.lora_options import apply_lora
from gpt.finetune.runs import (
    read_config,
    read_finetune_config,
    read_options,
    train_stage,
    write_config,
)
from gpt.model import GPT, GPTConfig
from gpt.run import load_tokenizer, load_trained_model, load_weights
from gpt.runlog import read_metrics
from gpt.train import TrainConfig, Trainer, TrainResult
from gpt.validation import config_from_dict
from minigrad import io, nn
from minigrad.io import atomic
from minigrad.nn import functional as F

BALANCES = ("none", "undersample", "weights")
POOLINGS = ("last", "mean")
PAD = -1  # "no token" in a padded batch
SPLITS = ("train", "val", "test")


@dataclass
class ClassifyOptions:
    text_column: str = "text"  # CSV / JSONL
    label_column: str = "label"
    balance: str = "none"  # none, undersample or weights
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 123
    pooling: str = "last"  # last (real token) or mean
    trainable: str = "last:1"  # head, last:N or all (ignored with LoRA: adapters + head)
    max_length: int | None = None  # tokens kept per text; None: the model's block_size
    patience: int = 5  # evaluations without a new best val loss before stopping; 0: never

    def __post_init__(self):
        for name, valid in (("balance", BALANCES), ("pooling", POOLINGS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"finetune classify: --{name} must be one of "
                                 f"{', '.join(valid)}, got {getattr(self, name)!r}")
        if not (self.val_fraction >= 0 and self.test_fraction >= 0
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError(f"finetune classify: --val-fraction ({self.val_fraction}) and "
                             f"--test-fraction ({self.test_fraction}) must be >= 0 and leave "
                             "a training split")
        trainable_layers(self.trainable)  # fails early on a bad value
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"finetune classify: --max-length must be >= 1, got "
                             f"{self.max_length}")
        if self.patience < 0:
            raise ValueError(f"finetune classify: --patience must be >= 0, got {self.patience}")


# -- data -------------------------------------------------------------------------------
def read_labelled(path, text_column: str = "text", label_column: str = "label") -> list:
    """[(text, label name)] from a TSV (`label<TAB>text` per line), CSV (a header naming
    the columns) or JSONL file, by extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8", newline="") as f:
        if suffix in (".tsv", ".txt", ""):
            rows = []
            for number, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                label, tab, text = line.partition("\t")
                if not tab:
                    raise ValueError(f"{path} line {number}: expected label<TAB>text")
                rows.append((text, label))
            return rows
        if suffix == ".csv":
            records = list(csv.DictReader(f))
        elif suffix == ".jsonl":
            records = [json.loads(line) for line in f if line.strip()]
        else:
            raise ValueError(f"{path}: unknown data format {suffix!r}; expected .tsv, .csv "
                             "or .jsonl")
    for number, record in enumerate(records, start=1):
        missing = [c for c in (text_column, label_column) if c not in record]
        if missing:
            raise ValueError(f"{path} record {number}: no column {missing[0]!r} (has "
                             f"{', '.join(map(str, record))}); choose with --text-column / "
                             "--label-column")
    return [(str(r[text_column]), str(r[label_column])) for r in records]


def balance_rows(rows: list, seed: int) -> list:
    """Every class undersampled, at random, to the size of the smallest; order shuffled."""
    rng = np.random.default_rng(seed)
    by_label: dict = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    smallest = min(len(group) for group in by_label.values())
    kept = [group[i] for _, group in sorted(by_label.items())
            for i in sorted(rng.choice(len(group), smallest, replace=False))]
    return [kept[i] for i in rng.permutation(len(kept))]


def split_rows(rows: list, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """{"train", "val", "test": rows} after a seeded shuffle."""
    order = np.random.default_rng(seed).permutation(len(rows))
    n_val, n_test = int(len(rows) * val_fraction), int(len(rows) * test_fraction)
    pieces = {"val": order[:n_val], "test": order[n_val:n_val + n_test],
              "train": order[n_val + n_test:]}
    return {name: [rows[i] for i in pieces[name]] for name in SPLITS}


def class_weights(rows: list, labels: list) -> list[float]:
    """N / (K n_c) per class c: the loss weight that makes every class count equally."""
    counts = [sum(1 for _, label in rows if label == name) for name in labels]
    if not all(counts):
        empty = [name for name, n in zip(labels, counts) if not n]
        raise ValueError(f"--balance weights: the training split has no example of "
                         f"{', '.join(empty)}")
    return [len(rows) / (len(labels) * n) for n in counts]


def encode_rows(tokenizer, rows: list, labels: list, max_length: int) -> list:
    """[(token ids truncated to max_length, class index)]; texts that encode to nothing
    are left out."""
    index = {name: i for i, name in enumerate(labels)}
    examples = []
    for text, label in rows:
        ids = tokenizer.encode(text)[:max_length]
        if ids:
            examples.append((ids, index[label]))
    return examples


def pad_classes(examples) -> tuple[np.ndarray, np.ndarray]:
    """(ids (B, T) padded with PAD to the longest, labels (B,)) for [(ids, label)]."""
    longest = max(len(ids) for ids, _ in examples)
    inputs = np.full((len(examples), longest), PAD, dtype=np.int64)
    for row, (ids, _) in enumerate(examples):
        inputs[row, :len(ids)] = ids
    return inputs, np.array([label for _, label in examples], dtype=np.int64)


# -- the model --------------------------------------------------------------------------
class GPTClassifier(nn.Module):
    """A GPT's features at the last real token (or their mean) -> a Linear class head.

    forward(ids (B, T) with PAD after each text, labels (B,) or None) ->
    (logits (B, K), mean cross-entropy, weighted by class_weights if given, or None)."""

    def __init__(self, gpt: GPT, num_classes: int, pooling: str = "last",
                 class_weights: list[float] | None = None, generator=None):
        super().__init__()
        self.gpt, self.pooling, self.class_weights = gpt, pooling, class_weights
        self.head = nn.Linear(gpt.config.n_embd, num_classes)
        nn.init.normal_(self.head.weight, std=0.02, generator=generator)
        nn.init.zeros_(self.head.bias)

    @property
    def config(self) -> GPTConfig:
        return self.gpt.config

    def features(self, ids):
        """(B, C): the pooled final-norm features of each padded text."""
        real = ids >= 0  # (B, T)
        x = self.gpt.embed(minigrad.where(real, ids, 0))
        for block in self.gpt.h:
            x = block(x, self.gpt.rope)
        x = self.gpt.final_norm(x)  # (B, T, C)
        real = real.astype(x.dtype)
        lengths = real.sum(axis=1, keepdims=True)  # (B, 1)
        if self.pooling == "mean":
            weights = real / lengths  # (B, T): 1/length on real tokens
        else:  # a one-hot row at position length - 1
            positions = minigrad.arange(0, ids.shape[1], device=ids.device).astype(x.dtype)
            weights = (positions.unsqueeze(0) == lengths - 1).astype(x.dtype)
        return (x * weights.unsqueeze(-1)).sum(axis=1)  # (B, C)

    def forward(self, ids, labels=None):
        logits = self.head(self.features(ids))  # (B, K)
        if labels is None:
            return logits, None
        weight = None if self.class_weights is None else minigrad.tensor(
            self.class_weights, dtype=logits.dtype, device=logits.device)
        return logits, F.cross_entropy(logits, labels, weight=weight)  # weighted mean

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """The GPT's AdamW groups (its trainable parameters only), with the head's weight
        in the decaying one and its bias in the other."""
        groups = {g["weight_decay"]: g["params"] for g in self.gpt.optimizer_groups(weight_decay)}
        groups.setdefault(weight_decay, []).append(self.head.weight)
        groups.setdefault(0.0, []).append(self.head.bias)
        return [{"params": params, "weight_decay": decay} for decay, params in groups.items()]

    def flops_per_token(self) -> int:
        return self.gpt.flops_per_token()


def trainable_layers(spec: str) -> int | None:
    """'all' -> None (every block), 'head' -> 0, 'last:N' -> N."""
    if spec == "all":
        return None
    if spec == "head":
        return 0
    kind, _, count = spec.partition(":")
    if kind != "last" or not count.isdigit() or int(count) < 1:
        raise ValueError(f"finetune classify: --trainable must be head, all or last:N "
                         f"(N >= 1), got {spec!r}")
    return int(count)


def freeze(classifier: GPTClassifier, spec: str) -> None:
    """Train what `spec` names (see `trainable_layers`); freeze the rest."""
    blocks = trainable_layers(spec)
    gpt = classifier.gpt
    gpt.requires_grad_(blocks is None)
    if blocks:
        for block in gpt.h[len(gpt.h) - blocks:]:
            block.requires_grad_(True)
        if gpt.config.norm_placement == "pre":
            gpt.ln_f.requires_grad_(True)
    classifier.head.requires_grad_(True)


def count_trainable(model) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# -- metrics ----------------------------------------------------------------------------
def confusion_matrix(true, predicted, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix


def scores(matrix: np.ndarray, labels: list) -> dict:
    """Accuracy, per-class precision / recall / F1 (0 where undefined), their macro mean,
    and for two classes the positive (second) class's as precision / recall / f1."""
    matrix = np.asarray(matrix)
    hits = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    result = {"examples": int(matrix.sum()),
              "accuracy": float(hits.sum() / max(matrix.sum(), 1)),
              "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f),
                                   "support": int(n)}
                            for name, p, r, f, n in zip(labels, precision, recall, f1, actual)},
              "macro_f1": float(f1.mean()), "confusion": matrix.tolist()}
    if len(labels) == 2:
        result.update(positive=labels[1], precision=float(precision[1]),
                      recall=float(recall[1]), f1=float(f1[1]))
    return result


def format_scores(split: str, result: dict, labels: list) -> str:
    head = f"{split}: {result['examples']} examples, accuracy {result['accuracy']:.2%}"
    if "f1" in result:
        head += (f", {result['positive']}: precision {result['precision']:.3f} recall "
                 f"{result['recall']:.3f} F1 {result['f1']:.3f}")
    else:
        head += f", macro F1 {result['macro_f1']:.3f}"
    width = max(8, *(len(name) for name in labels))
    lines = [head, " " * width + " predicted: " + " ".join(f"{n:>{width}}" for n in labels)]
    for name, row in zip(labels, result["confusion"]):
        lines.append(f"{name:>{width}} (true)   " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def plot_confusion(result: dict, labels: list, path, title: str):
    """The confusion matrix as a PNG; None (no file) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    matrix = np.asarray(result["confusion"])
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {result['accuracy']:.2%}")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    fig.tight_layout()
    with atomic.atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


# -- training ---------------------------------------------------------------------------
class ClassifierTrainer(Trainer):
    """The pretraining loop on padded (ids, label) batches. Evaluation is the validation
    loss; a new best is saved to BEST_WEIGHTS_FILE, and `patience` evaluations without
    one stop the run. The early-stopping state is rebuilt from metrics.jsonl on resume
    (the trainer keeps that file in step with its checkpoint)."""

    def __init__(self, model, batches, val_batches, config, run_dir, patience: int, **kwargs):
        super().__init__(model, batches, None, config, run_dir, **kwargs)
        self.val_batches, self.patience = val_batches, patience
        self.best: tuple[float, int] | None = None  # (val loss, step)
        self.since_best = 0
        self.stopped_early = False

    def evaluate(self) -> float | None:
        if self.val_batches is None:
            return None
        loss = batches_loss(self.model, self.val_batches, self.device)
        if self.best is None or loss < self.best[0]:
            self.best, self.since_best = (loss, self.step), 0
            io.save_safetensors(self.model.state_dict(), self.run_dir / BEST_WEIGHTS_FILE)
        else:
            self.since_best += 1
        if self.patience and self.since_best >= self.patience and self.step < self.config.steps:
            self.stopped_early = self._stop_requested = True
        return loss

    def load_checkpoint(self) -> None:
        super().load_checkpoint()
        for record in read_metrics(self.run_dir / METRICS_FILE):
            if "val_loss" in record and record["step"] <= self.step:
                if self.best is None or record["val_loss"] < self.best[0]:
                    self.best, self.since_best = (record["val_loss"], record["step"]), 0
                else:
                    self.since_best += 1

    def fit(self) -> TrainResult:
        result = super().fit()
        if self.stopped_early and result.status == "interrupted":
            loss, step = self.best
            result = TrainResult("completed", result.step, result.checkpoint_step,
                                 f"early stop at step {result.step}: no better val loss in "
                                 f"{self.patience} evaluations (best {loss:.4f} at step "
                                 f"{step})")
        return result


def batches_loss(model, batches, device) -> float:
    """Mean loss per example over (ids, labels) batches, in eval mode, without a graph."""
    device = minigrad.get_device(device)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with minigrad.no_grad():
            for ids, labels in batches:
                _, loss = model(minigrad.tensor(ids, device=device),
                                minigrad.tensor(labels, device=device))
                total, count = total + loss.item() * len(labels), count + len(labels)
    finally:
        model.train(was_training)
    return total / max(count, 1)


def predict_batches(model, batches, device) -> tuple[np.ndarray, np.ndarray]:
    """(class probabilities (N, K), true labels (N,)) over (ids, labels) batches."""
    device = minigrad.get_device(device)
    model.eval()
    probs, true = [], []
    with minigrad.no_grad():
        for ids, labels in batches:
            logits, _ = model(minigrad.tensor(ids, device=device))
            probs.append(F.softmax(logits.astype("float64"), axis=-1).numpy())
            true.append(labels)
    return np.concatenate(probs), np.concatenate(true)


# -- runs -------------------------------------------------------------------------------
def load_base(spec, device="cpu") -> tuple[GPT, object]:
    """(model, tokenizer) to start from: a pretraining run folder, or a Hugging Face
    checkpoint (folder or hub id) with its tokenizer."""
    path = Path(spec)
    if (path / CONFIG_FILE).is_file() and "model" in read_config(path):  # one of our runs
        if "finetune" in read_config(path):
            raise ValueError(f"--from {spec}: a fine-tuning run; start from a pretraining "
                             "run or a Hugging Face checkpoint")
        return load_trained_model(path, device), load_tokenizer(path)
    folder = pretrained.resolve_model_folder(spec)
    return (pretrained.load_pretrained(folder, device),
            pretrained.load_pretrained_tokenizer(folder))


def build_classifier(config: dict, run_dir, device="cpu") -> GPTClassifier:
    """A classification run's model (its architecture, LoRA adapters included) with fresh
    weights: load a checkpoint into it."""
    finetune = config["finetune"]
    options = read_options(config, ClassifyOptions, run_dir)
    model_config = config_from_dict(GPTConfig, config["model"],
                                    f"{Path(run_dir) / CONFIG_FILE}, key 'model'")
    classifier = GPTClassifier(GPT(model_config), len(finetune["labels"]),
                               options.pooling, finetune.get("class_weights"))
    set_trainable(classifier, options.trainable, finetune.get("lora"))
    return classifier.to(device)


def set_trainable(classifier: GPTClassifier, trainable: str, lora: dict | None, seed: int = 0):
    """LoRA adapters (frozen base) and the head, or the layers `trainable` names; returns
    the LoRA report or None."""
    report = apply_lora(classifier.gpt, lora, seed)
    if report is None:
        freeze(classifier, trainable)
    classifier.head.requires_grad_(True)
    return report


def finetune_classify(run_dir, data=None, start=None, train: TrainConfig | None = None,
                      options: ClassifyOptions | None = None, lora: dict | None = None,
                      resume: bool = False, progress: bool = True, stream=None) -> TrainResult:
    """Fine-tune `start` (a run folder or Hugging Face checkpoint) to classify the texts
    in `data`, in `run_dir` (resume=True continues it with its saved settings; `train`
    may then change only the device). Scores every split when training completes."""
    stream = stream or sys.stdout
    run_dir = Path(run_dir)
    train = train or TrainConfig()
    say = (lambda text: print(text, file=stream, flush=True))
    if resume:
        config, saved = read_finetune_config(run_dir, "classify")
        finetune = config["finetune"]
        options, data = read_options(config, ClassifyOptions, run_dir), config["data"]
        train = dataclasses.replace(saved, device=train.device)
        model = build_classifier(config, run_dir, train.device)
        tokenizer = load_tokenizer(run_dir)
    else:
        options = options or ClassifyOptions()
        if data is None or start is None:
            raise ValueError("finetune classify: --data FILE and --from RUN_OR_CHECKPOINT are "
                             "required")
    rows = read_labelled(data, options.text_column, options.label_column)
    labels = sorted({label for _, label in rows})
    if len(labels) < 2:
        raise ValueError(f"{data}: at least two classes are needed, found {labels}")
    if options.balance == "undersample":
        rows = balance_rows(rows, options.split_seed)
    splits = split_rows(rows, options.val_fraction, options.test_fraction, options.split_seed)
    if not resume:
        minigrad.manual_seed(train.seed)  # the dropout stream (a resume restores it)
        gpt, tokenizer = load_base(start, train.device)
        weights = class_weights(splits["train"], labels) if options.balance == "weights" \
            else None
        model = GPTClassifier(gpt, len(labels), options.pooling, weights,
                              generator=minigrad.Generator(train.seed)).to(train.device)
        set_trainable(model, options.trainable, lora, train.seed)
        finetune = {"kind": "classify", "from": str(start), "labels": labels,
                    "class_weights": weights, "options": dataclasses.asdict(options),
                    "lora": lora}
        run_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save(run_dir / TOKENIZER_FILE)
        write_config(run_dir, gpt.config, train, Path(data).resolve(), finetune)
    trained, total = count_trainable(model)
    say(f"classes: {', '.join(labels)}; "
        + ", ".join(f"{len(splits[s])} {s}" for s in SPLITS)
        + f"; training {trained:,} of {total:,} parameters")
    max_length = min(options.max_length or model.config.block_size, model.config.block_size)
    batches = {s: ExampleBatches(encode_rows(tokenizer, splits[s], labels, max_length),
                                 train.batch_size, train.seed, shuffle=s == "train",
                                 collate=pad_classes) if splits[s] else None for s in SPLITS}
    trainer = ClassifierTrainer(model, batches["train"], batches["val"], train, run_dir,
                                options.patience, progress=progress, stream=stream)
    result = train_stage(trainer, model, run_dir, resume, say)
    if result.status == "completed":
        best = run_dir / BEST_WEIGHTS_FILE
        if best.is_file():
            model.load_state_dict(io.load_safetensors(best, device=train.device))
        evaluate_splits(model, batches, labels, run_dir, train.device, say)
    return result


def evaluate_splits(model, batches: dict, labels: list, run_dir, device, say) -> dict:
    """Scores of every split, printed, saved (CLASSIFICATION_FILE) and plotted."""
    results = {}
    for split, split_batches in batches.items():
        if split_batches is None:
            continue
        probs, true = predict_batches(model, split_batches, device)
        results[split] = scores(confusion_matrix(true, probs.argmax(axis=1), len(labels)),
                                labels)
        say(format_scores(split, results[split], labels))
        plot_confusion(results[split], labels, Path(run_dir) / CONFUSION_PLOT.format(
            split=split), f"{Path(run_dir).name}: {split}")
    atomic.write_json(Path(run_dir) / CLASSIFICATION_FILE, results)
    return results


# -- prediction -------------------------------------------------------------------------
def load_classifier(run_dir, device="cpu") -> tuple[GPTClassifier, object, list]:
    """(classifier in eval mode, tokenizer, class names) of a classification run: its best
    weights (early stopping), else its latest checkpoint."""
    run_dir = Path(run_dir)
    config, _ = read_finetune_config(run_dir, "classify")
    weights = next((run_dir / name for name in (BEST_WEIGHTS_FILE, WEIGHTS_FILE)
                    if (run_dir / name).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"{run_dir} has no weights yet")
    model = build_classifier(config, run_dir, device)
    load_weights(model, weights, device)
    return model.eval(), load_tokenizer(run_dir), config["finetune"]["labels"]


def classify_texts(model, tokenizer, labels: list, texts: list, batch_size: int = 32,
                   device="cpu") -> list[dict]:
    """[{"text", "label", "probabilities": {class: p}}] for each text."""
    examples = [(tokenizer.encode(text)[:model.config.block_size], 0) for text in texts]
    empty = [text for text, (ids, _) in zip(texts, examples) if not ids]
    if empty:
        raise ValueError(f"classify: {empty[0]!r} encodes to no tokens")
    batches = (pad_classes(examples[i:i + batch_size])
               for i in range(0, len(examples), batch_size))
    probs, _ = predict_batches(model, batches, device) if texts else (np.zeros((0, 0)), None)
    return [{"text": text, "label": labels[int(p.argmax())],
             "probabilities": {name: float(q) for name, q in zip(labels, p)}}
            for text, p in zip(texts, probs)]


def read_texts(path) -> list[str]:
    """Texts to classify: one per line (.txt), or the "text" field of JSONL records."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix.lower() == ".jsonl":
        return [json.loads(line)["text"] for line in lines if line.strip()]
    return [line for line in lines if line.strip()]


def write_predictions(path, predictions: list[dict]) -> None:
    """JSONL, one prediction per line (atomically)."""
    atomic.write_text(path, "".join(json.dumps(p, ensure_ascii=False) + "\n"
                                    for p in predictions))

