"""`python -m gpt chat RUN`: piped stdin, the conversation kept and reset under the chat
template, one answer per line under the Alpaca template."""

from __future__ import annotations

import io as textio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpt.finetune import chat as chat_module
from gpt.finetune.instruct import InstructOptions, finetune_instruct
from gpt.finetune.runs import load_finetuned
from gpt.train import TrainConfig
from tests.gpt.test_finetune_instruct import make_base_run, make_records

ROOT = Path(__file__).resolve().parents[2]


def quick(steps=3):
    return TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=1, eval_interval=0,
                       checkpoint_interval=0, log_interval=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    base = make_base_run(root)
    alpaca = root / "alpaca.json"
    alpaca.write_text(json.dumps(make_records(12)))
    chats = root / "chats.jsonl"
    chats.write_text("\n".join(json.dumps({"messages": [
        {"role": "user", "content": r["instruction"]},
        {"role": "assistant", "content": r["output"]}]}) for r in make_records(12)))
    for name, data in (("alpaca", alpaca), ("chatml", chats)):
        finetune_instruct(root / name, data, base, quick(), InstructOptions(max_new_tokens=2),
                          progress=False)
    return root


def test_chat_answers_piped_lines(runs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "gpt", "chat", str(runs / "alpaca"),
                           "--max-new-tokens", "4", "--temperature", "0"],
                          input="Repeat the word cat.\n\nRepeat the word dog.\n",
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("assistant> ") == 2  # the empty line is skipped


def test_chat_template_keeps_and_resets_the_conversation(runs, monkeypatch):
    prompts = []
    real_generate = chat_module.generate

    def recording_generate(model, ids, *args, **kwargs):
        prompts.append(list(ids))
        return real_generate(model, ids, *args, **kwargs)

    monkeypatch.setattr(chat_module, "generate", recording_generate)
    out = textio.StringIO()
    replies = chat_module.chat(runs / "chatml", textio.StringIO("hi\n/reset\nhi\nmore\n"), out,
                               max_new_tokens=3, temperature=0.0, system="Be brief.")
    assert len(replies) == 3 and out.getvalue().count("assistant> ") == 3
    assert prompts[0] == prompts[1] and replies[0] == replies[1]  # /reset forgot turn one
    _, tokenizer, template = load_finetuned(runs / "chatml")
    assert template == "chatml"
    first, second = tokenizer.decode(prompts[1]), tokenizer.decode(prompts[2])
    assert first.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert second.startswith(first + replies[1])  # the history carries the last reply
    assert second.endswith("<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n")


def test_chat_refuses_a_run_that_is_not_fine_tuned(runs, capsys):
    from gpt import cli

    assert cli.main(["chat", str(runs / "base")]) == 2
    assert "not a fine-tuning run" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--top-p", "0"), ("--top-p", "1.5"), ("--top-k", "0"),
                                         ("--temperature", "-1"), ("--temperature", "nan"),
                                         ("--max-new-tokens", "-1"), ("--seed", "-1")])
def test_chat_refuses_bad_sampling_flags_first(tmp_path, capsys, flag, value):
    """Named by flag, before the run is loaded or a line is read (they used to surface as
    generate's keyword errors after the first line, or NumPy's for a seed)."""
    from gpt import cli

    assert cli.main(["chat", str(tmp_path / "no-run"), flag, value]) == 2
    assert f"gpt chat: error: {flag} must be" in capsys.readouterr().err
