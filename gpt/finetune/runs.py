"""Fine-tuning run folders: where a fine-tuning starts, and loading one back.

A fine-tuning run folder is a training run folder (`gpt.files`) whose config.json also
holds a "finetune" section: the kind (instruct, dpo), the starting model (`from`), the
prompt template, the data options and the LoRA settings (None for full fine-tuning). Its
checkpoint holds every weight, adapters included (so --resume needs nothing else); a
LoRA run also writes the adapters alone (ADAPTERS_FILE).

The starting model (`--from`) is a run folder (pretraining or fine-tuning; a LoRA run's
adapters are merged in) or a Hugging Face GPT-2 / Llama checkpoint with its tokenizer
(`gpt.pretrained`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import minigrad
from gpt import pretrained
from gpt.files import ADAPTERS_FILE, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from gpt.finetune.examples import read_records, split_records
from gpt.finetune.lora_options import apply_lora
from gpt.finetune.templates import CHATML, add_special_tokens, records_template
from gpt.model import GPT, GPTConfig
from gpt.run import load_tokenizer, load_trained_model, load_weights
from gpt.train import TrainConfig
from gpt.validation import ConfigFileError, config_from_dict, is_of_kind, read_json_object
from minigrad.io import atomic
from minigrad.nn import lora

KINDS = ("instruct", "dpo", "classify")
LORA_KEYS = {"rank": "int", "alpha": "float", "targets": "str", "dropout": "float"}


def read_config(run_dir) -> dict:
    """The folder's config.json, a JSON object; a fine-tuning run's is checked further
    (`check_finetune_config`). A damaged one is a ConfigFileError naming file and key."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    config = read_json_object(path)
    if "finetune" in config:
        check_finetune_config(config, path)
    return config


def check_finetune_config(config: dict, path) -> None:
    """The sections a fine-tuning run's config.json needs, of the right kinds, so that a
    damaged one fails here, naming the key, instead of as a KeyError deep in loading."""
    for key, kind, what in (("model", dict, "an object"), ("train", dict, "an object"),
                            ("data", str, "a file path"), ("finetune", dict, "an object")):
        if not isinstance(config.get(key), kind):
            raise ConfigFileError(f"{path}: key {key!r} must be {what}, got "
                                  f"{config.get(key)!r}")
    finetune, where = config["finetune"], f"{path}, key 'finetune'"
    if finetune.get("kind") not in KINDS:
        raise ConfigFileError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got "
                              f"{finetune.get('kind')!r}")
    for key, kind, what in (("from", str, "a run folder or checkpoint"),
                            ("options", dict, "an object")):
        if not isinstance(finetune.get(key), kind):
            raise ConfigFileError(f"{where}: {key!r} must be {what}, got "
                                  f"{finetune.get(key)!r}")
    lora = finetune.get("lora")
    if lora is not None and not (isinstance(lora, dict) and set(lora) == set(LORA_KEYS) and all(
            is_of_kind(lora[key], kind) for key, kind in LORA_KEYS.items())):
        raise ConfigFileError(f"{where}: 'lora' must be null or an object with "
                              f"{', '.join(f'{k} ({v})' for k, v in LORA_KEYS.items())}, got "
                              f"{lora!r}")
    labels = finetune.get("labels")
    if finetune["kind"] == "classify" and not (
            isinstance(labels, list) and len(labels) >= 2
            and all(isinstance(label, str) for label in labels)):
        raise ConfigFileError(f"{where}: 'labels' must be a list of two or more class "
                              f"names, got {labels!r}")


def read_finetune_config(run_dir, kind: str) -> tuple[dict, TrainConfig]:
    """The config of a `finetune KIND` run folder (ValueError for any other folder), and
    its TrainConfig."""
    config = read_config(run_dir)
    if config.get("finetune", {}).get("kind") != kind:
        raise ValueError(f"{run_dir} is not a `finetune {kind}` run folder")
    return config, config_from_dict(TrainConfig, config["train"],
                                    f"{Path(run_dir) / CONFIG_FILE}, key 'train'")


def read_options(config: dict, options_cls, run_dir):
    """The stage's options saved in a fine-tuning run's config, checked (`config_from_dict`)."""
    return config_from_dict(options_cls, config["finetune"]["options"],
                            f"{Path(run_dir) / CONFIG_FILE}, key 'finetune' -> 'options'")


def write_config(run_dir, model: GPTConfig, train: TrainConfig, data, finetune: dict) -> None:
    atomic.write_json(Path(run_dir) / CONFIG_FILE,
                      {"model": model.to_dict(), "train": train.to_dict(), "data": str(data),
                       "finetune": finetune})


def load_start(spec: str, device="cpu"):
    """(model, tokenizer, added special tokens) to fine-tune from `spec`: a run folder or a
    Hugging Face checkpoint. The model is plain (adapters merged), with the chat special
    tokens in its vocabulary."""
    path = Path(spec)
    if path.is_dir() and not (path / CONFIG_FILE).is_file():
        raise ValueError(f"--from {spec}: neither a run folder nor a Hugging Face checkpoint "
                         f"(no {CONFIG_FILE})")
    if (path / CONFIG_FILE).is_file() and "model" in read_config(path):
        if "finetune" in read_config(path):
            model, tokenizer, _ = load_finetuned(path, device)
            if lora.lora_modules(model):
                lora.remove_lora(model)
        else:
            model, tokenizer = load_trained_model(path, device), load_tokenizer(path)
    else:
        model = pretrained.load_pretrained(spec, device=device)
        tokenizer = pretrained.load_pretrained_tokenizer(spec)
    tokenizer, model, added = add_special_tokens(tokenizer, model)
    model.requires_grad_(True)
    return model, tokenizer, added


def load_finetuned(run_dir, device="cpu", merge: bool = True):
    """(model in eval mode, tokenizer, template) of a fine-tuning run's latest checkpoint;
    LoRA adapters are merged into the weights unless merge=False."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    finetune = config.get("finetune")
    if finetune is None:
        raise ValueError(f"{run_dir} is not a fine-tuning run (its config has no 'finetune' "
                         "section); fine-tune it with `python -m gpt finetune instruct`")
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{run_dir} has no weights yet ({WEIGHTS_FILE})")
    model = build_model(config, device)
    load_weights(model, weights, device)
    if merge and lora.lora_modules(model):
        lora.merge_lora(model)
    tokenizer = load_tokenizer(run_dir)
    return model.eval(), tokenizer, finetune.get("template", CHATML)


def build_model(config: dict, device="cpu") -> GPT:
    """The run's architecture (adapters included), with fresh weights: load a checkpoint
    into it."""
    model = GPT(config_from_dict(GPTConfig, config["model"], "config.json, key 'model'"))
    model.to(device)
    apply_lora(model, config["finetune"].get("lora"))
    return model


def start_or_resume(run_dir, kind: str, *, resume: bool, start: str | None, data,
                    train: TrainConfig, options: dict, lora_settings: dict | None,
                    template: str, stream=None):
    """(model, tokenizer, config) for a fine-tuning run in `run_dir`.

    Fresh: the starting model (`load_start`) with the LoRA adapters asked for, and the
    run folder's tokenizer and config written. Resumed: the run's own architecture and
    tokenizer (load its checkpoint next); `train` may change only the device."""
    run_dir = Path(run_dir)
    if resume:
        config, _ = read_finetune_config(run_dir, kind)
        model = build_model(config, train.device)
        return model, load_tokenizer(run_dir), config
    if start is None:
        raise ValueError(f"finetune {kind}: --from RUN_OR_CHECKPOINT is required")
    model, tokenizer, added = load_start(start, train.device)
    report = apply_lora(model, lora_settings, train.seed)
    say = (lambda text: print(text, file=stream, flush=True))
    if added:
        say(f"added special tokens {', '.join(added)}: vocabulary {model.config.vocab_size:,}")
    say(str(report) if report else f"full fine-tuning: {model.num_parameters():,} parameters")
    run_dir.mkdir(parents=True, exist_ok=True)
    finetune = {"kind": kind, "from": str(start), "template": template, "options": options,
                "lora": lora_settings}
    tokenizer.save(run_dir / TOKENIZER_FILE)
    write_config(run_dir, model.config, train, Path(data).resolve(), finetune)  # any cwd resumes
    minigrad.manual_seed(train.seed)  # the dropout stream (a resume restores it)
    return model, tokenizer, read_config(run_dir)


def train_stage(trainer, model, run_dir, resume: bool, say):
    """What every fine-tuning stage shares: resume if asked, train, keep a LoRA run's
    adapters beside its checkpoint, say how training ended. Returns the TrainResult."""
    if resume:
        trainer.load_checkpoint()
    result = trainer.fit()
    save_adapters_if_any(model, run_dir)
    if result.message:
        say(result.message)
    return result


def save_adapters_if_any(model, run_dir) -> Path | None:
    """A LoRA run's adapters alone, beside its checkpoint."""
    if not lora.lora_modules(model):
        return None
    path = Path(run_dir) / ADAPTERS_FILE
    lora.save_adapters(model, path)
    return path


@dataclass
class FinetuneRun:
    """A fine-tuning run opened by `open_run`: its folder, config and model, ready to train."""

    run_dir: Path
    config: dict
    model: GPT
    tokenizer: object
    train: TrainConfig
    options: object  # the stage's options dataclass
    start: str
    splits: dict  # "train", "val", "test" -> records


def open_run(run_dir, kind: str, options_cls, *, data, start, train: TrainConfig | None,
             options, lora_settings: dict | None, resume: bool, stream=None) -> FinetuneRun:
    """Start a `finetune KIND` run in `run_dir`, or reopen it to resume (its saved data,
    starting model, options and training settings; a `train` given changes only the
    device): the records read and split, the model and tokenizer (`start_or_resume`)."""
    run_dir = Path(run_dir)
    if resume:
        saved, saved_train = read_finetune_config(run_dir, kind)
        options = read_options(saved, options_cls, run_dir)
        data, start = saved["data"], saved["finetune"]["from"]
        train = saved_train if train is None else dataclasses.replace(saved_train,
                                                                      device=train.device)
    train = train or TrainConfig()
    options = options or options_cls()
    if data is None:
        raise ValueError(f"finetune {kind}: --data FILE is required")
    records = read_records(data)
    splits = split_records(records, options.val_fraction, options.test_fraction)
    model, tokenizer, config = start_or_resume(
        run_dir, kind, resume=resume, start=start, data=data, train=train,
        options=dataclasses.asdict(options), lora_settings=lora_settings,
        template=records_template(records), stream=stream)
    return FinetuneRun(run_dir, config, model, tokenizer, train, options, start, splits)
