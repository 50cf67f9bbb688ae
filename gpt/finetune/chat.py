"""`python -m gpt chat RUN`: talk to a fine-tuned run, one line per turn.

Each line read is a user turn. A chat-template run keeps the conversation: the prompt is
every turn so far (with an optional system message) and the assistant's header; an
Alpaca run answers each line as a fresh instruction (the format has no turns). Replies
are sampled with the KV cache (`gpt.generate.generate`) up to the template's
end-of-response token, and streamed as they come. `/reset` forgets the conversation;
an empty input (Ctrl-D) ends the chat. Works with piped stdin too.
"""

from __future__ import annotations

import sys

import minigrad
from gpt.finetune.runs import load_finetuned
from gpt.finetune.templates import ALPACA, generation_prompt, stop_token
from gpt.generate import generate
from gpt.run import stream_text

RESET = "/reset"


def chat(run_dir, lines=None, out=None, max_new_tokens: int = 256, temperature: float = 0.7,
         top_k: int | None = None, top_p: float | None = None, seed: int = 0,
         system: str | None = None, device="cpu") -> list[str]:
    """Answer each line read from `lines` (a text stream; default stdin), writing to
    `out` (default stdout); returns the replies."""
    lines = sys.stdin if lines is None else lines
    out = sys.stdout if out is None else out
    model, tokenizer, template = load_finetuned(run_dir, device)
    stop = [[stop_token(tokenizer, template)]]
    generator = minigrad.Generator(seed)
    interactive = lines.isatty()
    history, replies = [], []
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        line = lines.readline()
        if not line:  # end of input
            break
        text = line.rstrip("\n")
        if text.strip() == RESET:
            history = []
            continue
        if not text.strip():
            continue
        if template == ALPACA:
            record = {"instruction": text, "input": ""}
        else:
            history.append({"role": "user", "content": text})
            record = {"messages": ([{"role": "system", "content": system}] if system else [])
                      + history}
        tokens = generate(model, generation_prompt(tokenizer, record), max_new_tokens,
                          temperature=temperature, top_k=top_k, top_p=top_p,
                          generator=generator, stop=stop)
        out.write("assistant> ")
        pieces = []
        for piece in stream_text(tokenizer, tokens):
            pieces.append(piece)
            out.write(piece)
            out.flush()
        out.write("\n")
        reply = "".join(pieces).strip()
        replies.append(reply)
        if template != ALPACA:
            history.append({"role": "assistant", "content": reply})
    return replies
