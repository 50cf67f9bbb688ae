"""Instruction fine-tuning (the book's chapter 7): teach a pretrained GPT to answer.

    python -m gpt finetune instruct --data instruction-data.json --from runs/base

Records (Alpaca or chat, see `gpt.finetune.templates`) are split into train / val /
test in file order, tokenized with the prompt masked out of the loss (or not, with
train_on_prompt), padded into batches (or packed), and trained on with the pretraining
loop: same checkpoints, resume, metrics and Ctrl-C handling (`gpt.train.Trainer`), the
validation loss being the held-out loss per response token.

After training the test split is answered (greedy decoding up to the end-of-response
token) and written to RESPONSES_FILE, each record with a "model_response" beside its
own fields (the book's instruction-data-with-response.json); EVALUATION_FILE holds the
test loss and perplexity per response token before and after training, and the judge's
scores when one is configured (`gpt.finetune.judge`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from gpt.files import CONFIG_FILE, EVALUATION_FILE, RESPONSES_FILE
from gpt.finetune import judge
from gpt.finetune.examples import ExampleBatches, encode_examples, heldout_loss, pack_examples
from gpt.finetune.runs import open_run, train_stage
from gpt.finetune.templates import generation_prompt, stop_token, template_of
from gpt.generate import generate
from gpt.train import TrainConfig, Trainer, TrainResult
from minigrad.io import atomic


@dataclass
class InstructOptions:
    val_fraction: float = 0.05
    test_fraction: float = 0.1
    train_on_prompt: bool = False  # also train on the prompt tokens
    packing: bool = False  # several short examples per row
    max_new_tokens: int = 128  # the longest test response generated


class InstructTrainer(Trainer):
    """The pretraining loop on padded example batches; evaluation is the held-out loss
    per response token over `val_batches` (None: no evaluation)."""

    def __init__(self, model, batches, val_batches, config, run_dir, **kwargs):
        super().__init__(model, batches, None, config, run_dir, **kwargs)
        self.val_batches = val_batches

    def evaluate(self) -> float | None:
        if self.val_batches is None:
            return None
        return heldout_loss(self.model, self.val_batches, self.device)[0]


def split_batches(tokenizer, splits: dict, block_size: int, options: InstructOptions,
                  train: TrainConfig) -> tuple[dict, int]:
    """({split: ExampleBatches or None}, dropped examples): train shuffled (packed if
    asked), val and test in order."""
    batches, dropped = {}, 0
    for name, records in splits.items():
        examples, lost = encode_examples(tokenizer, records, block_size, options.train_on_prompt)
        dropped += lost
        if name == "train" and options.packing:
            examples = pack_examples(examples, block_size)
        batches[name] = (ExampleBatches(examples, train.batch_size, train.seed,
                                        shuffle=name == "train") if examples else None)
    if batches["train"] is None:
        raise ValueError(f"no training example has a response token within block size "
                         f"{block_size}")
    return batches, dropped


def respond(model, tokenizer, record: dict, max_new_tokens: int) -> str:
    """The model's greedy answer to a record, up to its end-of-response token."""
    stop = stop_token(tokenizer, template_of(record))
    tokens = generate(model, generation_prompt(tokenizer, record), max_new_tokens,
                      temperature=0.0, stop=[[stop]])
    return tokenizer.decode(list(tokens)).strip()


def finetune_instruct(run_dir, data=None, start=None, train: TrainConfig | None = None,
                      options: InstructOptions | None = None, lora: dict | None = None,
                      resume: bool = False, judge_url: str | None = None,
                      judge_model: str | None = None, progress: bool = True,
                      stream=None) -> TrainResult:
    """Fine-tune `start` (a run folder or Hugging Face checkpoint) on the records in
    `data`, in `run_dir` (resume=True continues the run there with its saved settings;
    a `train` given then changes only the device). lora: `lora_options.lora_settings`
    values or None. Writes the test responses and EVALUATION_FILE when training completes."""
    stream = stream or sys.stdout
    run = open_run(run_dir, "instruct", InstructOptions, data=data, start=start, train=train,
                   options=options, lora_settings=lora, resume=resume, stream=stream)
    run_dir, model, tokenizer, config = run.run_dir, run.model, run.tokenizer, run.config
    train, options, splits = run.train, run.options, run.splits
    batches, dropped = split_batches(tokenizer, splits, model.config.block_size, options, train)
    print(f"records: {', '.join(f'{len(v)} {k}' for k, v in splits.items())}"
          + (f" ({dropped} without a response token in block size "
             f"{model.config.block_size}, left out)" if dropped else ""), file=stream)
    before = config["finetune"].get("test_loss_before")
    if not resume and batches["test"] is not None:
        before = heldout_loss(model, batches["test"], train.device)[0]
        config["finetune"]["test_loss_before"] = before
        atomic.write_json(run_dir / CONFIG_FILE, config)
    trainer = InstructTrainer(model, batches["train"], batches["val"], train, run_dir,
                              progress=progress)
    result = train_stage(trainer, model, run_dir, resume, lambda m: print(m, file=stream))
    if result.status == "completed":
        evaluation = evaluate_test_split(model, tokenizer, splits["test"], batches["test"],
                                         run_dir, options.max_new_tokens, train.device,
                                         judge_url, judge_model)
        evaluation["test_loss_before"] = before
        atomic.write_json(run_dir / EVALUATION_FILE, evaluation)
        print(format_evaluation(evaluation), file=stream)
    return result


def evaluate_test_split(model, tokenizer, records, batches, run_dir, max_new_tokens: int,
                        device, judge_url=None, judge_model=None) -> dict:
    """Answer the test records (written to RESPONSES_FILE) and score them: held-out loss
    and perplexity per response token, and the judge's verdict (or a note)."""
    if not records:
        return {"note": "no test split (--test-fraction 0): nothing to evaluate"}
    responses = [respond(model, tokenizer, r, max_new_tokens) for r in records]
    atomic.write_json(Path(run_dir) / RESPONSES_FILE,
                      [{**r, "model_response": text} for r, text in zip(records, responses)])
    evaluation = {"test_records": len(records), "responses": RESPONSES_FILE}
    if batches is not None:
        loss, scored = heldout_loss(model, batches, device)
        evaluation.update(test_loss=loss, test_perplexity=math.exp(loss), test_tokens=scored)
    evaluation["judge"] = judge.judge_responses(records, responses, judge_url, judge_model)
    return evaluation


def format_evaluation(evaluation: dict) -> str:
    if "test_loss" not in evaluation:
        return evaluation.get("note", "")
    before = evaluation.get("test_loss_before")
    lines = [f"test split ({evaluation['test_records']} records, {evaluation['test_tokens']:,} "
             f"response tokens): loss {evaluation['test_loss']:.4f}, perplexity "
             f"{evaluation['test_perplexity']:.2f}"
             + (f" (before fine-tuning: loss {before:.4f})" if before is not None else ""),
             f"responses: {evaluation['responses']}"]
    verdict = evaluation["judge"]
    lines.append(verdict["note"] if "note" in verdict else
                 f"judge {verdict['model']}: mean score {verdict['mean_score']}")
    return "\n".join(lines)
