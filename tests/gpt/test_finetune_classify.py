"""Classification fine-tuning: the class head's gradients against PyTorch, padding that
changes nothing, data reading, balancing and splits, the metrics, learning generated
separable data, frozen layers left bit-identical, exact resume, early stopping, and the
`finetune classify` / `classify` command line."""

from __future__ import annotations

import csv
import json
import os
import signal
from io import StringIO

import numpy as np
import pytest

import minigrad
from gpt import cli
from gpt.files import BEST_WEIGHTS_FILE, CLASSIFICATION_FILE, CONFUSION_PLOT, WEIGHTS_FILE
from gpt.finetune import classify
from gpt.finetune.classify import ClassifyOptions, GPTClassifier, finetune_classify, pad_classes
from gpt.model import GPT, GPTConfig
from gpt.train import TrainConfig
from minigrad import io

TINY = dict(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16)


def synthetic_rows(n=160, seed=0):
    """Texts of letters from "abcde" (class "one") or "vwxyz" (class "two"), 3 to 10 long,
    a third of them class two."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "two" if i % 3 == 0 else "one"
        letters = "vwxyz" if label == "two" else "abcde"
        rows.append(("".join(rng.choice(list(letters), size=rng.integers(3, 11))), label))
    return rows


def write_tsv(path, rows):
    path.write_text("".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A (barely) pretrained char-level run folder to start from."""
    out = tmp_path_factory.mktemp("runs")
    assert cli.main(["train", "--out", str(out), "--name", "base", "--steps", "2",
                     "--n-layer", "2", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
                     "--batch-size", "2", "--warmup", "0", "--eval-interval", "0",
                     "--no-progress", "--max-new-tokens", "1"]) == 0
    return out / "base"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tsv(tmp_path_factory.mktemp("data") / "letters.tsv", synthetic_rows())


def train_config(**overrides):
    settings = dict(steps=8, batch_size=8, lr=3e-3, min_lr=3e-4, warmup=1, eval_interval=4,
                    checkpoint_interval=0, log_interval=2, seed=0)
    return TrainConfig(**{**settings, **overrides})


def run(run_dir, data, start, train=None, **options):
    return finetune_classify(run_dir, data, start, train or train_config(),
                             ClassifyOptions(**options), progress=False,
                             stream=StringIO())


def weights(run_dir, name=WEIGHTS_FILE):
    return {k: v.numpy() for k, v in io.load_safetensors(run_dir / name).items()}


# -- the model --------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_gradients_match_pytorch(torch, pooling, positions):
    """Loss and every gradient (head and transformer) of the classifier, class weights and
    padding included, against the PyTorch twin with the pooling written out."""
    from tests.torch_gpt import from_minigrad

    gpt = GPT(GPTConfig(**TINY, positions=positions), generator=minigrad.Generator(0))
    model = GPTClassifier(gpt.to(dtype="float64"), 3, pooling, class_weights=[0.5, 1.0, 2.0],
                          generator=minigrad.Generator(1)).to(dtype="float64")
    rng = np.random.default_rng(0)
    examples = [(rng.integers(0, 23, size=n).tolist(), int(y))
                for n, y in zip([5, 12, 1, 8], [0, 2, 1, 2])]
    ids, labels = pad_classes(examples)
    _, loss = model(minigrad.tensor(ids), minigrad.tensor(labels))
    loss.backward()

    twin = from_minigrad(gpt)
    head_w = torch.tensor(model.head.weight.numpy(), requires_grad=True)
    head_b = torch.tensor(model.head.bias.numpy(), requires_grad=True)
    features = {}
    twin.ln_f.register_forward_hook(lambda m, i, out: features.setdefault("x", out))
    real = torch.tensor(ids >= 0)
    twin(torch.tensor(np.where(ids >= 0, ids, 0)))
    x = features["x"]  # (B, T, C)
    lengths = real.sum(dim=1)
    if pooling == "last":
        pooled = x[torch.arange(len(ids)), lengths - 1]
    else:
        pooled = (x * real[..., None]).sum(dim=1) / lengths[:, None]
    logits = pooled @ head_w.T + head_b
    expected = torch.nn.functional.cross_entropy(
        logits, torch.tensor(labels), weight=torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(model.head.weight.grad.numpy(), head_w.grad.numpy(), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(model.head.bias.grad.numpy(), head_b.grad.numpy(), rtol=1e-9,
                               atol=1e-12)
    theirs = dict(twin.named_parameters())
    for name, p in gpt.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-8,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_changes_nothing(pooling):
    gpt = GPT(GPTConfig(**TINY), generator=minigrad.Generator(0)).to(dtype="float64")
    model = GPTClassifier(gpt, 2, pooling, generator=minigrad.Generator(1)).to(dtype="float64")
    alone = [3, 1, 4, 1, 5]
    with minigrad.no_grad():
        single, _ = model(minigrad.tensor([alone]))
        ids, _ = pad_classes([(alone, 0), (list(range(12)), 1), ([7], 0)])
        batch, _ = model(minigrad.tensor(ids))
    np.testing.assert_allclose(batch.numpy()[0], single.numpy()[0], rtol=1e-12, atol=1e-14)


# -- data -------------------------------------------------------------------------------
def test_reads_tsv_csv_and_jsonl_with_chosen_columns(tmp_path):
    rows = [("hello, world", "ham"), ("WIN\tnow", "spam")]
    (tmp_path / "a.tsv").write_text("ham\thello, world\nspam\tWIN\tnow\n\n", encoding="utf-8")
    with open(tmp_path / "a.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Label", "Text"])
        writer.writerows((label, text) for text, label in rows)
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"body": t, "y": y}) + "\n"
                                              for t, y in rows), encoding="utf-8")
    assert classify.read_labelled(tmp_path / "a.tsv") == rows
    assert classify.read_labelled(tmp_path / "a.csv", "Text", "Label") == rows
    assert classify.read_labelled(tmp_path / "a.jsonl", "body", "y") == rows
    with pytest.raises(ValueError, match="no column 'text'.*--text-column"):
        classify.read_labelled(tmp_path / "a.jsonl")


def test_balancing_and_seeded_splits():
    rows = synthetic_rows(90)
    balanced = classify.balance_rows(rows, seed=1)
    counts = {label: sum(1 for _, y in balanced if y == label) for label in ("one", "two")}
    assert counts == {"one": 30, "two": 30} and set(balanced) <= set(rows)
    splits = classify.split_rows(rows, 0.1, 0.2, seed=5)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [63, 9, 18]
    assert sorted(sum(splits.values(), [])) == sorted(rows)
    assert classify.split_rows(rows, 0.1, 0.2, seed=5) == splits
    assert classify.split_rows(rows, 0.1, 0.2, seed=6) != splits
    weights = classify.class_weights(rows, ["one", "two"])
    assert weights == pytest.approx([90 / (2 * 60), 90 / (2 * 30)])


def test_scores_follow_their_definitions():
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    matrix = classify.confusion_matrix(true, predicted, 3)
    result = classify.scores(matrix, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(np.mean(true == predicted))
    for k, name in enumerate("abc"):
        tp = np.sum((true == k) & (predicted == k))
        precision, recall = tp / np.sum(predicted == k), tp / np.sum(true == k)
        assert result["per_class"][name]["precision"] == pytest.approx(precision)
        assert result["per_class"][name]["recall"] == pytest.approx(recall)
        assert result["per_class"][name]["f1"] == pytest.approx(
            2 * precision * recall / (precision + recall))
    binary = classify.scores(classify.confusion_matrix([0, 1, 1, 1], [0, 1, 0, 1], 2),
                             ["ham", "spam"])
    assert (binary["positive"], binary["precision"], binary["recall"]) == ("spam", 1.0, 2 / 3)


# -- training ---------------------------------------------------------------------------
def test_learns_separable_data_and_writes_its_reports(base_run, data, tmp_path):
    result = run(tmp_path / "run", data, base_run, train_config(steps=40), trainable="all",
                 val_fraction=0.15, test_fraction=0.25)
    assert result.status == "completed"
    report = json.loads((tmp_path / "run" / CLASSIFICATION_FILE).read_text())
    assert report["test"]["accuracy"] >= 0.95 and report["test"]["examples"] == 40
    assert report["train"]["confusion"] and report["test"]["f1"] >= 0.9
    pytest.importorskip("matplotlib")
    assert (tmp_path / "run" / CONFUSION_PLOT.format(split="test")).stat().st_size > 0


@pytest.mark.parametrize("trainable, frozen_prefixes, trained_prefixes", [
    ("head", ("gpt.",), ("head.",)),
    ("last:1", ("gpt.wte.", "gpt.wpe.", "gpt.h.0."), ("gpt.h.1.", "gpt.ln_f.", "head.")),
])
def test_frozen_layers_stay_bit_identical(base_run, data, tmp_path, trainable,
                                          frozen_prefixes, trained_prefixes):
    run(tmp_path / "run", data, base_run, trainable=trainable, patience=0)
    before = weights(base_run)
    after = weights(tmp_path / "run")
    for name, value in after.items():
        if name.startswith(frozen_prefixes):
            np.testing.assert_array_equal(value, before[name.removeprefix("gpt.")], name)
        else:
            assert name.startswith(trained_prefixes), name
            assert not np.array_equal(value, before.get(name.removeprefix("gpt."))), name


def test_lora_trains_adapters_and_head_only(base_run, data, tmp_path):
    pytest.importorskip("minigrad.nn.lora")
    lora = {"rank": 2, "alpha": 4.0, "targets": "attention", "dropout": 0.0}
    result = finetune_classify(tmp_path / "run", data, base_run, train_config(), lora=lora,
                               progress=False, stream=StringIO())
    assert result.status == "completed"
    before, after = weights(base_run), weights(tmp_path / "run")
    adapters = [n for n in after if "lora" in n]
    assert adapters
    for name, value in after.items():
        if name.startswith("gpt.") and "lora" not in name:
            original = name.removeprefix("gpt.").replace(".base.", ".")
            np.testing.assert_array_equal(value, before[original], name)
    model, tokenizer, _ = classify.load_classifier(tmp_path / "run")
    assert classify.classify_texts(model, tokenizer, ["one", "two"],
                                   ["abc"])[0]["label"] in ("one", "two")


def test_resume_after_ctrl_c_equals_an_unbroken_run(base_run, data, tmp_path, monkeypatch):
    unbroken = run(tmp_path / "a", data, base_run, patience=0)
    assert unbroken.status == "completed"
    calls = {"n": 0}
    original = classify.ExampleBatches.next_batch

    def next_batch(self):
        calls["n"] += 1
        if calls["n"] == 5:  # during step 5: stop after it, like a Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
        return original(self)

    monkeypatch.setattr(classify.ExampleBatches, "next_batch", next_batch)
    interrupted = run(tmp_path / "b", data, base_run, patience=0)
    assert (interrupted.status, interrupted.step) == ("interrupted", 5)
    monkeypatch.setattr(classify.ExampleBatches, "next_batch", original)
    resumed = finetune_classify(tmp_path / "b", resume=True, progress=False,
                                stream=StringIO())
    assert resumed.status == "completed"
    for name, value in weights(tmp_path / "a").items():
        np.testing.assert_array_equal(value, weights(tmp_path / "b")[name], name)
    assert (json.loads((tmp_path / "a" / CLASSIFICATION_FILE).read_text())
            == json.loads((tmp_path / "b" / CLASSIFICATION_FILE).read_text()))


def test_early_stopping_keeps_the_best_weights(base_run, data, tmp_path, monkeypatch):
    """Validation losses 1.0, 0.9, 0.95, 0.97 with patience 2: the run stops at the fourth
    evaluation, and the best weights are those of the second."""
    losses = iter([1.0, 0.9, 0.95, 0.97])
    saved = {}

    def fake_loss(model, batches, device):
        return next(losses)

    monkeypatch.setattr(classify, "batches_loss", fake_loss)
    original_save = classify.io.save_safetensors

    def save(tensors, path, metadata=None):
        if path.name == BEST_WEIGHTS_FILE:
            saved["best"] = {k: v.numpy().copy() for k, v in tensors.items()}
        return original_save(tensors, path, metadata)

    monkeypatch.setattr(classify.io, "save_safetensors", save)
    result = run(tmp_path / "run", data, base_run, train_config(steps=40, eval_interval=2),
                 patience=2)
    assert result.status == "completed" and result.step == 8
    assert "early stop at step 8" in result.message and "best 0.9000 at step 4" in result.message
    best = weights(tmp_path / "run", BEST_WEIGHTS_FILE)
    assert all(np.array_equal(best[k], v) for k, v in saved["best"].items())
    assert not np.array_equal(best["head.weight"], weights(tmp_path / "run")["head.weight"])


def test_starts_from_a_hugging_face_checkpoint(torch, data, tmp_path):
    """--from a Llama-style folder (transformers' weights, a tokenizer.json): the head trains
    on its features, the frozen weights are the checkpoint's."""
    transformers = pytest.importorskip("transformers", reason="writes the checkpoint")
    tokenizers = pytest.importorskip("tokenizers", reason="writes the tokenizer.json")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    folder = tmp_path / "llama"
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=300, hidden_size=16, num_attention_heads=4,
                                      num_key_value_heads=2, num_hidden_layers=2,
                                      intermediate_size=24, max_position_embeddings=16,
                                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator([text for text, _ in synthetic_rows()], trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(folder / "tokenizer.json"))
    result = run(tmp_path / "run", data, folder, trainable="head", patience=0)
    assert result.status == "completed"
    after = weights(tmp_path / "run")
    from safetensors.numpy import load_file

    hf = load_file(folder / "model.safetensors")
    np.testing.assert_array_equal(after["gpt.wte.weight"], hf["model.embed_tokens.weight"])
    assert json.loads((tmp_path / "run" / CLASSIFICATION_FILE).read_text())["test"]["examples"]


# -- command line -----------------------------------------------------------------------
def test_command_line_finetunes_and_classifies(base_run, data, tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli.main(["finetune", "classify", "--data", str(data), "--from", str(base_run),
                     "--out", str(out), "--name", "cls", "--steps", "30", "--lr", "3e-3",
                     "--eval-interval", "10", "--trainable", "all", "--balance", "weights",
                     "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test:" in printed and "predicted:" in printed
    assert cli.main(["classify", str(out / "cls"), "abcab", "zyxwv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["one", "two"]
    texts = tmp_path / "texts.txt"
    texts.write_text("eddca\nvvwz\n", encoding="utf-8")
    predictions = tmp_path / "predictions.jsonl"
    assert cli.main(["classify", str(out / "cls"), "--file", str(texts), "--out",
                     str(predictions)]) == 0
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["text"] for r in records] == ["eddca", "vvwz"]
    assert [r["label"] for r in records] == ["one", "two"]
    assert all(sum(r["probabilities"].values()) == pytest.approx(1.0) for r in records)


def test_command_line_refuses_a_bad_choice(capsys):
    with pytest.raises(SystemExit):
        cli.main(["finetune", "classify", "--from", "x", "--data", "y.tsv", "--balance",
                  "oversample"])
    assert "invalid choice: 'oversample'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["finetune", "classify", "--from", "x", "--data", "y.tsv", "--trainable", "last:0"],
     "--trainable must be head, all or last:N"),
    (["classify", "nowhere"], "give texts, or --file FILE"),
])
def test_command_line_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
