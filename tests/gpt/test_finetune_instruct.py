"""Instruction fine-tuning: templates and loss masks, special tokens added to a model,
padding and packing, splits, the run folder (LoRA and full, resumed exactly), the test
responses and evaluation, and the optional judge against a local HTTP server."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

import bpe
import minigrad as mg
from gpt import cli
from gpt.finetune import examples, judge, templates
from gpt.finetune.examples import IGNORE_INDEX
from gpt.finetune.instruct import InstructOptions, InstructTrainer, finetune_instruct
from gpt.finetune.runs import load_finetuned
from gpt.model import GPT, GPTConfig
from gpt.runlog import read_metrics
from gpt.train import TrainConfig
from minigrad import io

WORDS = ["cat", "dog", "sun", "moon", "tree", "house", "red", "blue"]
TINY_MODEL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "128"]


def tokenizer_with_specials():
    tok = bpe.Tokenizer.train([templates.ALPACA_INTRO, "hello world, the cat"], vocab_size=280)
    return templates.add_special_tokens(tok, GPT(GPTConfig(tok.vocab_size, 8, 1, 1, 4)))[0]


def make_records(n=40, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        a, b = rng.choice(WORDS, 2, replace=False)
        records.append({"instruction": f"Repeat the word {a}.", "input": "" if i % 2 else b,
                        "output": f"{a} {a}", "chosen": f"{a} {a}", "rejected": f"{b} {b} {b}"})
    return records


def make_base_run(root) -> str:
    """A tiny pretrained run (BPE, so it can take special tokens), via `gpt train`."""
    text = root / "corpus.txt"
    lines = [f"{templates.ALPACA_INTRO}\n### Instruction:\nRepeat the word {w}.\n"
             f"### Response:\n{w} {w}\n" for w in WORDS] * 8
    text.write_text("".join(lines), encoding="utf-8")
    code = cli.main(["train", "--data", str(text), "--tokenizer", "bpe", "--vocab-size", "400",
                     "--steps", "4", "--warmup", "1", "--batch-size", "4", "--eval-interval",
                     "0", "--max-new-tokens", "2", "--no-progress", "--out", str(root),
                     "--name", "base", *TINY_MODEL])
    assert code == 0
    return str(root / "base")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    return make_base_run(tmp_path_factory.mktemp("instruct"))


@pytest.fixture(scope="module")
def records_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("records") / "records.json"
    path.write_text(json.dumps(make_records()), encoding="utf-8")
    return path


# -- templates and masks ----------------------------------------------------------------
def test_alpaca_prompt_format():
    with_input = templates.alpaca_prompt({"instruction": "Fix it.", "input": "teh"})
    assert with_input == (f"{templates.ALPACA_INTRO}\n\n### Instruction:\nFix it.\n\n"
                          "### Input:\nteh\n\n### Response:\n")
    assert "### Input" not in templates.alpaca_prompt({"instruction": "Fix it.", "input": ""})


def test_alpaca_example_masks_the_prompt_and_trains_the_response_and_end():
    tok = tokenizer_with_specials()
    record = {"instruction": "Say hi.", "input": "", "output": "hello"}
    ids, labels = examples.encode_example(tok, record, block_size=500)
    prompt = tok.encode_ordinary(templates.alpaca_prompt(record))
    eot = tok.special_token_id(bpe.ENDOFTEXT)
    assert ids == prompt + tok.encode_ordinary("hello") + [eot]
    assert labels == [IGNORE_INDEX] * len(prompt) + tok.encode_ordinary("hello") + [eot]
    _, all_labels = examples.encode_example(tok, record, 500, train_on_prompt=True)
    assert all_labels == ids
    cut_ids, cut_labels = examples.encode_example(tok, record, block_size=10)
    assert cut_ids == ids[:11] and cut_labels == labels[:11]


def test_chat_template_trains_assistant_turns_only_and_keeps_text_ordinary():
    tok = tokenizer_with_specials()
    record = {"messages": [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "hi <|im_end|>"},
                           {"role": "assistant", "content": "hello"},
                           {"role": "user", "content": "again"},
                           {"role": "assistant", "content": "world"}]}
    ids, labels = examples.encode_example(tok, record, block_size=500)
    start, end = tok.special_token_id(templates.IM_START), tok.special_token_id(templates.IM_END)
    assert ids.count(start) == 5 and ids.count(end) == 5  # the user's "<|im_end|>" is text
    assert tok.decode(ids) == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                               "hi <|im_end|><|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n"
                               "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n"
                               "world<|im_end|>\n")
    trained = [t for t in labels if t != IGNORE_INDEX]
    assert trained == tok.encode_ordinary("hello") + [end] + tok.encode_ordinary("world") + [end]
    prompt = templates.generation_prompt(tok, {"messages": record["messages"][:2]})
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("record, message", [
    ({"text": "x"}, "needs 'instruction'"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "role one of"),
    ({"instruction": "x"}, "needs an 'output'"),
])
def test_bad_records_are_named(record, message):
    with pytest.raises(ValueError, match=message):
        examples.encode_example(tokenizer_with_specials(), record, 100)


def test_special_tokens_grow_the_model_without_changing_old_logits():
    tok = bpe.Tokenizer.train(["some text to learn from"], vocab_size=270)
    model = GPT(GPTConfig(tok.vocab_size, 8, 1, 2, 8), generator=mg.Generator(0))
    ids = mg.tensor([[1, 5, 9]])
    before = model(ids)[0].numpy()
    tok2, grown, added = templates.add_special_tokens(tok, model)
    assert added == list(templates.SPECIAL_TOKENS)
    assert grown.config.vocab_size == tok2.vocab_size == tok.vocab_size + 3
    np.testing.assert_allclose(grown(ids)[0].numpy()[..., :tok.vocab_size], before, atol=1e-6)
    new_rows = grown.wte.weight.numpy()[tok.vocab_size:]
    np.testing.assert_allclose(new_rows, np.tile(model.wte.weight.numpy().mean(0), (3, 1)),
                               atol=1e-7)
    same_tok, same_model, none = templates.add_special_tokens(tok2, grown)
    assert none == [] and same_model is grown and same_tok is tok2
    with pytest.raises(ValueError, match="BPE tokenizer"):
        templates.add_special_tokens(bpe.CharTokenizer.from_text("abc"), model)


# -- batches ----------------------------------------------------------------------------
def test_padding_packing_and_resumable_batches():
    exs = [([1, 2, 3], [-100, 2, 3]), ([4, 5], [-100, 5]), ([6, 7, 8, 9], [-100, -100, 8, 9])]
    inputs, targets = examples.pad_batch(exs)
    np.testing.assert_array_equal(inputs, [[1, 2, 0], [4, 0, 0], [6, 7, 8]])
    np.testing.assert_array_equal(targets, [[2, 3, -100], [5, -100, -100], [-100, 8, 9]])
    packed = examples.pack_examples(exs, block_size=5)
    assert packed == [([1, 2, 3, 4, 5], [-100, 2, 3, -100, 5]),
                      ([6, 7, 8, 9], [-100, -100, 8, 9])]

    stream = examples.ExampleBatches(exs * 3, batch_size=2, seed=3)
    for _ in range(4):
        stream.next_batch()
    state = stream.state_dict()
    expected = [stream.next_batch() for _ in range(5)]
    resumed = examples.ExampleBatches(exs * 3, batch_size=2, seed=3)
    resumed.load_state_dict(state)
    for (a, b), (c, d) in zip(expected, (resumed.next_batch() for _ in range(5))):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_splits_and_record_files(tmp_path):
    records = make_records(20)
    split = examples.split_records(records, 0.1, 0.2)
    assert [len(split[k]) for k in ("train", "val", "test")] == [14, 2, 4]
    assert split["train"] + split["val"] + split["test"] == records
    with pytest.raises(ValueError, match="sum to less than 1"):
        examples.split_records(records, 0.5, 0.5)
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records[:3]) + "\n")
    assert examples.read_records(jsonl) == records[:3]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        examples.read_records(bad)


def test_heldout_loss_counts_response_tokens_only():
    model = GPT(GPTConfig(12, 8, 1, 2, 8), generator=mg.Generator(0)).to(dtype="float64")
    exs = [([1, 2, 3, 4], [-100, -100, 3, 4]), ([5, 6, 7], [-100, 6, 7])]
    loss, scored = examples.heldout_loss(model, [examples.pad_batch(exs)], "cpu")
    assert scored == 4
    manual = []
    for ids, labels in exs:
        logits = model(mg.tensor([ids[:-1]]))[0].numpy()[0]
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        manual += [-logp[i, t] for i, t in enumerate(labels[1:]) if t != -100]
    assert loss == pytest.approx(np.mean(manual), rel=1e-9)


# -- runs -------------------------------------------------------------------------------
def train_config(steps=12, **overrides):
    return TrainConfig(**{"steps": steps, "batch_size": 4, "lr": 3e-3, "min_lr": 3e-4,
                          "warmup": 1, "eval_interval": 4, "checkpoint_interval": 4,
                          "log_interval": 2, **overrides})


@pytest.mark.parametrize("lora", [None, {"rank": 4, "alpha": 8.0, "targets": "all",
                                          "dropout": 0.0}])
def test_run_folder_lowers_heldout_loss_and_writes_responses(base_run, records_file,
                                                             tmp_path, lora):
    run = tmp_path / "ft"
    result = finetune_instruct(run, records_file, base_run, train_config(),
                               InstructOptions(max_new_tokens=6), lora, progress=False)
    assert result.status == "completed"
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["test_loss"] < evaluation["test_loss_before"]
    assert evaluation["test_perplexity"] == pytest.approx(np.exp(evaluation["test_loss"]))
    assert "no judge configured" in evaluation["judge"]["note"]
    responses = json.loads((run / "test-responses.json").read_text())
    assert len(responses) == evaluation["test_records"] == 4
    assert all(isinstance(r["model_response"], str) and "instruction" in r for r in responses)
    assert (run / "adapters.safetensors").exists() == (lora is not None)
    model, tokenizer, template = load_finetuned(run)
    assert template == "alpaca" and "<|im_end|>" in tokenizer.special_tokens
    if lora:
        adapters, _ = io.read_safetensors(run / "adapters.safetensors")
        assert len(adapters) == 8 and all("lora_" in k for k in adapters)
        base_weights = io.load_safetensors(f"{base_run}/model.safetensors")
        ckpt = io.load_safetensors(run / "model.safetensors")
        for name, value in base_weights.items():  # frozen base (vocab rows grew)
            if name != "wte.weight":
                np.testing.assert_array_equal(ckpt[name].numpy(), value.numpy(), name)


def test_interrupted_run_resumes_exactly(base_run, records_file, tmp_path, monkeypatch):
    lora = {"rank": 2, "alpha": 4.0, "targets": "attention", "dropout": 0.0}
    straight = tmp_path / "straight"
    finetune_instruct(straight, records_file, base_run, train_config(8), lora=lora,
                      options=InstructOptions(max_new_tokens=2), progress=False)

    after_step = InstructTrainer._after_step

    def stop_at_4(self):
        after_step(self)
        if self.step == 4:
            self._stop_requested = True  # what Ctrl-C does

    monkeypatch.setattr(InstructTrainer, "_after_step", stop_at_4)
    broken = tmp_path / "broken"
    result = finetune_instruct(broken, records_file, base_run, train_config(8), lora=lora,
                               options=InstructOptions(max_new_tokens=2), progress=False)
    assert result.status == "interrupted" and result.step == 4
    assert not (broken / "evaluation.json").exists()
    monkeypatch.setattr(InstructTrainer, "_after_step", after_step)
    assert finetune_instruct(broken, resume=True, progress=False).status == "completed"
    losses = [[r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]
              for run in (straight, broken)]
    assert len(losses[0]) == 8 and losses[0] == losses[1]


def test_packing_and_training_on_the_prompt_from_the_command_line(base_run, records_file,
                                                                  tmp_path, capsys):
    code = cli.main(["finetune", "instruct", "--data", str(records_file), "--from", base_run,
                     "--steps", "3", "--warmup", "1", "--batch-size", "2", "--packing",
                     "--train-on-prompt", "--max-new-tokens", "2", "--no-progress", "--out",
                     str(tmp_path), "--name", "packed", "--lora", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "LoRA on 2 layers" in out and "test split (4 records" in out
    config = json.loads((tmp_path / "packed" / "config.json").read_text())
    assert config["finetune"]["options"]["packing"] is True
    assert config["finetune"]["lora"] == {"rank": 2, "alpha": 4.0, "targets": "attention",
                                          "dropout": 0.0}


@pytest.mark.parametrize("argv, message", [
    (["--lora-alpha", "4"], "--lora-alpha needs --lora RANK"),
    (["--lora", "-1"], "--lora must be a rank"),
    (["--lora", "2", "--lora-targets", "nothing"], "no Linear layer matches nothing"),
    (["--test-fraction", "0.99"], "sum to less than 1"),
])
def test_command_line_errors(base_run, records_file, tmp_path, capsys, argv, message):
    code = cli.main(["finetune", "instruct", "--data", str(records_file), "--from", base_run,
                     "--no-progress", "--out", str(tmp_path), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_resume_refuses_changed_settings(tmp_path, capsys):
    code = cli.main(["finetune", "instruct", "--resume", str(tmp_path), "--steps", "9"])
    assert code == 2 and "only --device may change" in capsys.readouterr().err


# -- the judge --------------------------------------------------------------------------
class FakeJudge(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeJudge.requests.append((self.path, dict(self.headers), body))
        reply = {"choices": [{"message": {"content": f"Score: {70 + len(FakeJudge.requests)}"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_judge_requests_scores_from_a_local_endpoint(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(judge.API_KEY_ENV, "secret")
    FakeJudge.requests = []
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/"
        verdict = judge.judge_responses(make_records(2), ["cat cat", "dog"], url, "judge-1")
    finally:
        server.shutdown()
        server.server_close()
    assert verdict["scores"] == [71, 72] and verdict["mean_score"] == 71.5
    path, headers, body = FakeJudge.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer secret"
    assert body["model"] == "judge-1" and body["temperature"] == 0
    assert "cat cat" in body["messages"][0]["content"]


def test_judge_without_configuration_or_endpoint_is_a_note():
    assert judge.judge_responses([], [], None, None) == {"note": judge.NOT_CONFIGURED}
    server = HTTPServer(("127.0.0.1", 0), FakeJudge)
    port = server.server_port
    server.server_close()  # nothing listens there now
    verdict = judge.judge_responses(make_records(1), ["x"], f"http://127.0.0.1:{port}", "m",
                                    timeout=5)
    assert "failed" in verdict["note"] and verdict["scores"] == []


def test_starts_from_a_hugging_face_checkpoint(records_file, tmp_path):
    from gpt.pretrained import save_pretrained

    tok = bpe.Tokenizer.train([templates.ALPACA_INTRO, " ".join(WORDS)] * 3, vocab_size=320)
    model = GPT(GPTConfig(tok.vocab_size, 128, 1, 2, 16), generator=mg.Generator(0))
    save_pretrained(model, tmp_path / "hf")  # GPT-2 layout, as transformers writes it
    tok.save_huggingface(tmp_path / "hf" / "tokenizer.json")
    lora = {"rank": 2, "alpha": 4.0, "targets": "attention", "dropout": 0.0}
    result = finetune_instruct(tmp_path / "ft", records_file, str(tmp_path / "hf"),
                               train_config(2), InstructOptions(max_new_tokens=2), lora,
                               progress=False)
    assert result.status == "completed"
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["model"]["vocab_size"] == tok.vocab_size + 3  # the chat tokens were added
    assert (tmp_path / "ft" / "evaluation.json").exists()


# -- bad input: named, and no half-made run folder -------------------------------------
def test_a_start_that_fails_on_its_records_leaves_no_run_folder(base_run, tmp_path, capsys):
    long = tmp_path / "long.json"  # the prompt alone fills the block: nothing to train on
    long.write_text(json.dumps([{"instruction": "word " * 300, "output": "x"}] * 10))
    out = tmp_path / "runs"
    argv = ["finetune", "instruct", "--data", str(long), "--from", base_run, "--no-progress",
            "--out", str(out), "--name", "x"]
    assert cli.main(argv) == 2
    assert "no training example has a response token" in capsys.readouterr().err
    assert list(out.iterdir()) == []  # so the same --name can be used again


@pytest.mark.parametrize("name, content, message", [
    ("records.json", b"\xff\xfe[{}]", "is not UTF-8 text"),
    ("records.jsonl", b'{"instruction": "a", "output": "b"}\n{bad\n',
     "records.jsonl line 2: not valid JSON"),
    ("records.json", b'[{"instruction": 3, "output": "b"}]',
     "an Alpaca record's 'instruction' must be a string, got 3"),
    ("folder", None, "is a directory, not a records file"),
    ("missing.json", None, "missing.json is not found"),
])
def test_a_bad_records_file_is_named(base_run, tmp_path, name, content, message, capsys):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "folder":
        path.mkdir()
    assert cli.main(["finetune", "instruct", "--data", str(path), "--from", base_run,
                     "--no-progress", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Errno" not in err, err


CHAT, RESUME = ["chat"], ["finetune", "instruct", "--resume"]


@pytest.mark.parametrize("damage, message, commands", [
    (lambda c: [1], "expected a JSON object, got list", (CHAT, RESUME)),
    (lambda c: {**c, "finetune": None}, "key 'finetune' must be an object, got None",
     (CHAT, RESUME)),
    (lambda c: {k: v for k, v in c.items() if k != "train"}, "key 'train' must be an object",
     (CHAT, RESUME)),
    (lambda c: {**c, "finetune": {**c["finetune"], "lora": {"rank": "x"}}},
     "'lora' must be null or an object with rank (int)", (CHAT, RESUME)),
    (lambda c: {**c, "finetune": {**c["finetune"], "options": {"bogus": 1}}},
     "key 'finetune' -> 'options': unknown key(s) 'bogus'", (RESUME,)),
    (lambda c: {**c, "finetune": {**c["finetune"], "lora": {
        "rank": 2, "alpha": 4.0, "targets": "attention", "dropout": 0.0}}},
     "model.safetensors does not fit the model of", (CHAT,)),
])
def test_a_damaged_fine_tuning_config_is_one_clear_error(base_run, records_file, tmp_path,
                                                         damage, message, commands, capsys):
    import shutil

    run = shutil.copytree(base_run, tmp_path / "run")  # its weights, as a full fine-tune's
    config = json.loads((run / "config.json").read_text())
    config["data"] = str(records_file)
    config["finetune"] = {"kind": "instruct", "from": base_run, "template": "alpaca",
                          "options": dataclasses.asdict(InstructOptions()), "lora": None}
    (run / "config.json").write_text(json.dumps(damage(config)))
    for command in commands:
        assert cli.main([*command, str(run)]) == 2, command
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (command, err)


def test_resume_names_each_flag_it_would_ignore_and_makes_no_folder(tmp_path, capsys):
    for flags in (["--packing"], ["--name", "x"], ["--from", "elsewhere"]):
        assert cli.main(["finetune", "instruct", "--resume", str(tmp_path), *flags]) == 2
        assert f"only --device may change, not {flags[0]}" in capsys.readouterr().err
    missing = tmp_path / "missing"
    assert cli.main(["finetune", "instruct", "--resume", str(missing)]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    assert not missing.exists()


def test_a_run_started_with_a_relative_data_path_resumes_from_any_folder(
        base_run, records_file, tmp_path, monkeypatch):
    monkeypatch.chdir(records_file.parent)
    assert cli.main(["finetune", "instruct", "--data", records_file.name, "--from", base_run,
                     "--steps", "2", "--warmup", "1", "--batch-size", "2", "--eval-interval",
                     "0", "--max-new-tokens", "1", "--no-progress", "--out", str(tmp_path),
                     "--name", "rel"]) == 0
    monkeypatch.chdir(tmp_path)
    assert cli.main(["finetune", "instruct", "--resume", str(tmp_path / "rel"),
                     "--no-progress"]) == 0
