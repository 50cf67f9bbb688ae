"""A run folder (its files are listed in `gpt.files`): making one, holding it while a
process trains in it, and loading a trained run back to generate text or evaluate.

A new run folder is created exclusively (two runs started in the same second get two
folders) and locked (`gpt.lock`) for as long as its process lives. Paths inside it are
relative to the folder itself, so a run folder can be moved or copied whole.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import time
from pathlib import Path

from gpt.files import CONFIG_FILE, METRICS_FILE, SAMPLES_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from gpt.generate import generate
from gpt.lock import LOCK_FILE, FolderLock, make_folder
from gpt.model import GPT, GPTConfig
from gpt.runlog import read_metrics
from gpt.train import TrainConfig
from gpt.validation import ConfigFileError, config_from_dict, read_json_object
from minigrad import io
from minigrad.io import atomic
from minigrad.io.checkpoint import remove_stale_states


def new_run_dir(out, name: str | None) -> tuple[Path, FolderLock]:
    """Create and lock out/name, or out/<date-time>[-N] when no name is given (the first
    such folder that does not exist yet). Refuses a folder that already holds a run
    (continue that one with --resume) or that another process holds."""
    out = Path(out)
    check_run_name(name)
    make_folder(out, "--out")
    if name is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for candidate in itertools.chain([stamp], (f"{stamp}-{n}" for n in itertools.count(2))):
            with contextlib.suppress(FileExistsError):
                (out / candidate).mkdir()  # exclusive: exactly one process makes it
                return out / candidate, lock_run_dir(out / candidate)
    run_dir = out / name
    make_folder(run_dir, "run folder")  # an empty folder is fine to start in
    lock = lock_run_dir(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        lock.release()
        raise FileExistsError(f"run folder {run_dir} already holds a run: continue it with "
                              f"--resume {run_dir}, or pick another --name")
    if any(entry.name != LOCK_FILE for entry in run_dir.iterdir()):
        lock.release()
        raise FileExistsError(f"{run_dir} is not empty but holds no run (a start killed "
                              "before it wrote its config?): remove it or pick another --name")
    return run_dir, lock


def check_run_name(name: str | None) -> None:
    """--name is one folder inside --out: a path ('a/b', '..') would put the run, and its
    lock, somewhere else."""
    if name is not None and (name in ("", ".", "..") or Path(name).name != name):
        raise ValueError(f"--name must be a single folder name (no '/', not '.' or '..'), "
                         f"got {name!r}; choose the parent folder with --out")


def check_resumable(run_dir) -> None:
    """Fail before any work, naming the file, if `run_dir` cannot be resumed: no
    checkpoint yet, or a metrics.jsonl damaged elsewhere than in a torn last line."""
    run_dir = Path(run_dir)
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from ({WEIGHTS_FILE} "
                                "is missing: the run stopped before its first save); start "
                                "it again as a new run")
    if (run_dir / METRICS_FILE).exists():
        read_metrics(run_dir / METRICS_FILE)


def lock_run_dir(run_dir) -> FolderLock:
    """Hold `run_dir` against other processes; then remove what killed writes left in it
    (temporary files, a training state no checkpoint points to)."""
    lock = FolderLock(run_dir, "run folder")
    atomic.remove_stale_temporaries(run_dir)
    remove_stale_states(run_dir)
    return lock


@contextlib.contextmanager
def removed_if_unfinished(run_dir: Path, lock: FolderLock, started: str = CONFIG_FILE):
    """If the block fails before the file `started` (the run's config.json) is written,
    remove `run_dir` (just made by new_run_dir) and release its lock: a failed start
    leaves no folder behind."""
    try:
        yield
    except BaseException:
        if not (run_dir / started).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        lock.release()
        raise


def write_run_config(run_dir: Path, model: GPTConfig, train: TrainConfig, data: Path) -> None:
    """config.json; the dataset folder is stored relative to the run folder when it lies
    inside it (the run's own data/), else as an absolute path."""
    data, run_dir = Path(data).resolve(), Path(run_dir).resolve()
    stored = data.relative_to(run_dir) if data.is_relative_to(run_dir) else data
    config = {"model": model.to_dict(), "train": train.to_dict(), "data": str(stored)}
    atomic.write_json(run_dir / CONFIG_FILE, config)


def record_sample(run_dir, heading: str, text: str) -> None:
    """Add `text` under `--- heading` to the run's samples.txt. The file is rewritten whole
    (atomically): it holds one sample per finished training, so it stays small."""
    path = Path(run_dir) / SAMPLES_FILE
    earlier = path.read_text(encoding="utf-8") if path.exists() else ""
    atomic.write_text(path, f"{earlier}--- {heading}\n{text}\n")


def read_run_config(run_dir) -> tuple[GPTConfig, TrainConfig, Path]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE}); runs are "
                                "made by `python -m gpt train`")
    config = read_json_object(path)
    if "finetune" in config:
        raise ValueError(f"{run_dir} is a fine-tuning run: talk to it with `python -m gpt "
                         "chat` (instruct, dpo) or `python -m gpt classify`, continue it with "
                         "`python -m gpt finetune KIND --resume`")
    keys = {"model", "train", "data"}
    if set(config) != keys:
        raise ConfigFileError(f"{path}: expected the keys 'data', 'model', 'train', got "
                              f"{', '.join(map(repr, sorted(config)))}")
    if not isinstance(config["data"], str) or not config["data"]:
        raise ConfigFileError(f"{path}: key 'data' must be a folder path, got "
                              f"{config['data']!r}")
    data = Path(config["data"])
    return (config_from_dict(GPTConfig, config["model"], f"{path}, key 'model'"),
            config_from_dict(TrainConfig, config["train"], f"{path}, key 'train'"),
            data if data.is_absolute() else Path(run_dir) / data)


def load_tokenizer(run_dir):
    import bpe

    path = Path(run_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {TOKENIZER_FILE}, the run's tokenizer (its "
                                "dataset folder holds the same one, as tokenizer.<id>.json)")
    return bpe.load(path)


def load_trained_model(run_dir, device="cpu") -> GPT:
    """The run's model with its latest checkpointed weights, in eval mode."""
    run_dir = Path(run_dir)
    model_config, _, _ = read_run_config(run_dir)
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{run_dir} has no weights yet ({WEIGHTS_FILE} is written "
                                "at the first checkpoint)")
    model = GPT(model_config).to(device)
    load_weights(model, weights, device)
    return model.eval()


def load_weights(model, weights: Path, device="cpu") -> None:
    """Load the safetensors file `weights` (in a run folder) into `model`, built from that
    folder's config.json; weights of another config are a ConfigFileError naming both."""
    try:
        model.load_state_dict(io.load_safetensors(weights, device=device))
    except RuntimeError as exc:  # keys or shapes that are not this config's
        raise ConfigFileError(f"{weights} does not fit the model of "
                              f"{weights.parent / CONFIG_FILE}: {exc}") from None


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


def generate_text(model, tokenizer, prompt: str, max_new_tokens: int,
                  temperature: float = 0.8, top_k: int | None = None,
                  top_p: float | None = None, seed: int = 0, out=None) -> str:
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
