"""A run folder: what one training run writes, and loading it back for sampling or
evaluation.

    config.json        {"model": GPTConfig, "train": TrainConfig, "data": dataset folder}
    tokenizer.json     the tokenizer (bpe.load reads it)
    model.safetensors  the weights of the latest checkpoint
    training_state.safetensors  optimizer moments, schedule, RNG and data-order states
    model.safetensors  the weights; the training state a resume needs lies beside it
    metrics.jsonl      per-step loss, lr, grad norm, tokens/s, MFU; val loss; events
    loss.png           train and validation loss curves
    samples.txt        text sampled at the end of training
    data/              the prepared dataset, when the run prepared its own
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from gpt.generate import generate
from gpt.model import GPT, GPTConfig
from gpt.train import WEIGHTS_FILE, TrainConfig
from minigrad import io

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
SAMPLES_FILE = "samples.txt"


def new_run_dir(out, name: str | None) -> Path:
    """out/name, or out/<date-time> when no name is given; refuses a folder that
    already holds a run (continue that one with --resume)."""
    run_dir = Path(out) / (name or time.strftime("%Y%m%d-%H%M%S"))
    if (run_dir / CONFIG_FILE).exists():
        raise FileExistsError(f"run folder {run_dir} already holds a run: continue it with "
                              f"--resume {run_dir}, or pick another --name")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def write_run_config(run_dir: Path, model: GPTConfig, train: TrainConfig, data: Path) -> None:
    config = {"model": model.to_dict(), "train": train.to_dict(), "data": str(data)}
    (run_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def read_run_config(run_dir) -> tuple[GPTConfig, TrainConfig, Path]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE}); runs are "
                                "made by `python -m gpt train`")
    config = json.loads(path.read_text(encoding="utf-8"))
    return (GPTConfig.from_dict(config["model"]), TrainConfig.from_dict(config["train"]),
            Path(config["data"]))


def load_tokenizer(run_dir):
    import bpe

    return bpe.load(Path(run_dir) / TOKENIZER_FILE)


def load_trained_model(run_dir, device="cpu") -> GPT:
    """The run's model with its latest checkpointed weights, in eval mode."""
    run_dir = Path(run_dir)
    model_config, _, _ = read_run_config(run_dir)
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{run_dir} has no weights yet ({WEIGHTS_FILE} is written "
                                "at the first checkpoint)")
    model = GPT(model_config).to(device)
    model.load_state_dict(io.load_safetensors(weights, device=device))
    return model.eval()


def stream_text(tokenizer, ids):
    """Text pieces for token ids arriving one at a time. A byte-level token may end in
    the middle of a character; its bytes wait for the rest."""
    if hasattr(tokenizer, "stream_decoder"):
        decoder = tokenizer.stream_decoder()
        for token in ids:
            yield decoder.feed(token)
        yield decoder.finish()
    else:
        for token in ids:
            yield tokenizer.decode([token])


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    try:
        ids = tokenizer.encode(prompt)
    except ValueError as exc:
        raise ValueError(f"--prompt {prompt!r} cannot be encoded by this run's tokenizer: "
                         f"{exc}") from None
    if not ids:
        raise ValueError("--prompt must not be empty")
    return ids


def sample(model, tokenizer, prompt: str, max_new_tokens: int, temperature: float = 0.8,
           top_k: int | None = None, top_p: float | None = None, seed: int = 0,
           out=None) -> str:
    """Generate a continuation of `prompt`, writing text to `out` as it comes (if given);
    returns prompt + continuation."""
    ids = encode_prompt(tokenizer, prompt)
    tokens = generate(model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                      top_p=top_p, generator=seed)
    pieces = [prompt]
    if out is not None:
        out.write(prompt)
        out.flush()
    for piece in stream_text(tokenizer, tokens):
        pieces.append(piece)
        if out is not None:
            out.write(piece)
            out.flush()
    return "".join(pieces)
