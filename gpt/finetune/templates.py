"""Prompt formats: how an instruction record becomes tokens, and which of them train.

Two kinds of record, told apart by their keys:

- Alpaca `{instruction, input, output}` (the book's chapter 7), rendered as

      Below is an instruction that describes a task. Write a response that ...

      ### Instruction:
      {instruction}

      ### Input:              (only when input is not empty)
      {input}

      ### Response:
      {output}<|endoftext|>

- chat `{messages: [{role, content}, ...]}` (roles system, user, assistant), rendered by
  the ChatML template:

      <|im_start|>user\\n{content}<|im_end|>\\n<|im_start|>assistant\\n{content}<|im_end|>\\n

The response (Alpaca's output; every assistant turn's content and its <|im_end|>) is what
a model learns to produce; the rest is the prompt. Text is encoded as ordinary text, so
a record cannot smuggle in control tokens; the special tokens are added by id.

A pretrained tokenizer may lack these special tokens: `add_special_tokens` gives the
tokenizer the missing ones (new ids after the last) and the model matching new rows of
its token embedding (each the mean of the existing rows, a neutral start).
"""

from __future__ import annotations

import dataclasses

import bpe
import minigrad
from gpt.model import GPT
from minigrad.autograd import no_grad

ALPACA, CHATML = "alpaca", "chatml"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (bpe.ENDOFTEXT, IM_START, IM_END)
ROLES = ("system", "user", "assistant")
ALPACA_INTRO = ("Below is an instruction that describes a task. Write a response that "
                "appropriately completes the request.")


def template_of(record: dict) -> str:
    """ALPACA or CHATML, from the record's keys (ValueError naming them otherwise)."""
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"),
                                                                              str)
                for m in messages):
            raise ValueError("a chat record's 'messages' must be a non-empty list of "
                             f"{{role, content}} with role one of {', '.join(ROLES)}")
        return CHATML
    if isinstance(record.get("instruction"), str):
        return ALPACA
    if "instruction" in record:
        raise ValueError(f"an Alpaca record's 'instruction' must be a string, got "
                         f"{record['instruction']!r}")
    raise ValueError(f"a record needs 'instruction' (Alpaca) or 'messages' (chat); got keys "
                     f"{sorted(record)}")


def records_template(records) -> str:
    """The template a run's records use: ALPACA when all are Alpaca records, else CHATML."""
    return ALPACA if all(template_of(r) == ALPACA for r in records) else CHATML


def alpaca_prompt(record: dict) -> str:
    text = f"{ALPACA_INTRO}\n\n### Instruction:\n{record['instruction']}"
    if record.get("input"):
        text += f"\n\n### Input:\n{record['input']}"
    return text + "\n\n### Response:\n"


def render(tokenizer, record: dict, response: str | None = None) -> list[tuple[list[int], bool]]:
    """The record as (token ids, trained) pieces, in order.

    response: the reply to use instead of the record's own (Alpaca's output, or a final
    assistant turn appended to the chat): how DPO renders chosen and rejected."""
    if template_of(record) == ALPACA:
        output = record.get("output") if response is None else response
        if not isinstance(output, str):
            raise ValueError(f"an Alpaca record needs an 'output' string; got keys "
                             f"{sorted(record)}")
        return [(tokenizer.encode_ordinary(alpaca_prompt(record)), False),
                (tokenizer.encode_ordinary(output) + [special_id(tokenizer, bpe.ENDOFTEXT)],
                 True)]
    messages = list(record["messages"])
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    pieces = []
    for m in messages:
        trained = m["role"] == "assistant"
        pieces.append((chat_header(tokenizer, m["role"]), False))
        pieces.append((tokenizer.encode_ordinary(m["content"])
                       + [special_id(tokenizer, IM_END)], trained))
        pieces.append((tokenizer.encode_ordinary("\n"), False))
    return pieces


def generation_prompt(tokenizer, record: dict) -> list[int]:
    """The tokens a model continues to answer the record: the Alpaca prompt, or the chat
    so far followed by the assistant's header."""
    if template_of(record) == ALPACA:
        return tokenizer.encode_ordinary(alpaca_prompt(record))
    return [t for ids, _ in render(tokenizer, record) for t in ids] + \
        chat_header(tokenizer, "assistant")


def stop_token(tokenizer, template: str) -> int:
    """The token that ends a response."""
    return special_id(tokenizer, bpe.ENDOFTEXT if template == ALPACA else IM_END)


def chat_header(tokenizer, role: str) -> list[int]:
    return [special_id(tokenizer, IM_START)] + tokenizer.encode_ordinary(role + "\n")


def special_id(tokenizer, token: str) -> int:
    try:
        return tokenizer.special_token_id(token)
    except (AttributeError, ValueError):
        raise ValueError(f"the tokenizer has no special token {token!r}; fine-tuning adds "
                         "them with gpt.finetune.templates.add_special_tokens") from None


def add_special_tokens(tokenizer, model: GPT) -> tuple[object, GPT, list[str]]:
    """(tokenizer, model, added): the tokenizer with every token of SPECIAL_TOKENS, and a
    model whose vocabulary covers their ids. Both come back unchanged when nothing is
    missing; a character tokenizer (no special tokens) is refused."""
    if not isinstance(tokenizer, bpe.Tokenizer):
        raise ValueError("instruction and preference tuning need a BPE tokenizer (special "
                         f"tokens mark the turns); this run's is a {type(tokenizer).__name__}: "
                         "pretrain with --tokenizer bpe")
    specials = tokenizer.special_tokens
    missing = [t for t in SPECIAL_TOKENS if t not in specials]
    next_id = max(tokenizer.vocab_size, model.config.vocab_size)
    specials.update({t: next_id + i for i, t in enumerate(missing)})
    if missing:
        tokenizer = bpe.Tokenizer(tokenizer.mergeable_ranks, pattern=tokenizer.pattern,
                                  special_tokens=specials, merges=tokenizer.merges)
    if tokenizer.vocab_size > model.config.vocab_size:
        model = grow_vocabulary(model, tokenizer.vocab_size)
    return tokenizer, model, missing


def grow_vocabulary(model: GPT, vocab_size: int) -> GPT:
    """A copy of `model` with `vocab_size` tokens: the old rows of the token embedding
    (and of an untied output head) kept, each new row the mean of the old ones."""
    config = dataclasses.replace(model.config, vocab_size=vocab_size)
    state = model.state_dict()
    with no_grad():
        for name in ("wte.weight", "lm_head.weight"):
            if name in state:
                old = state[name]  # (V, C)
                mean = old.mean(axis=0, keepdims=True)  # (1, C)
                extra = mean.broadcast_to((vocab_size - old.shape[0], old.shape[1]))
                state[name] = minigrad.cat([old, extra], axis=0)
    device = model.output_weight.device
    grown = GPT(config).to(device, model.output_weight.dtype)
    grown.load_state_dict(state)
    return grown.train(model.training)
