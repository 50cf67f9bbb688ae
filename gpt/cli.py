"""The command line: `python -m gpt train | sample | eval | prepare | plan`.

    python -m gpt train                      # tiny char-level GPT on Python's own docs
    python -m gpt train --data book.txt --tokenizer bpe --vocab-size 1024 --steps 5000
    python -m gpt train --resume runs/NAME   # continue exactly where it stopped
    python -m gpt sample runs/NAME --prompt "The " --max-new-tokens 300 --top-k 40
    python -m gpt eval runs/NAME --data held_out.txt
    python -m gpt prepare --data a.txt b.txt --out data/mine --tokenizer bpe --vocab-size 512
    python -m gpt plan --tokens 100_000_000

The model, training and cleaning flags are generated from GPTConfig, TrainConfig and
CleaningOptions, so every field has a flag (--n-layer, --grad-accum, --ascii-only, ...).
Exit status: 0 done, 1 training stopped on a non-finite loss, 2 bad input, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import minigrad
from gpt import model as gpt_model
from gpt.corpus import BUILTIN_NAME, CorpusUnavailable, builtin_documents
from gpt.data.cleaning import CleaningOptions, clean_documents
from gpt.data.dataset import Dataset, encode_documents, is_dataset, make_tokenizer, prepare
from gpt.data.dataset import read_documents as read_files
from gpt.evaluation import text_loss
from gpt.hardware import matmul_peak_flops
from gpt.model import GPT, GPTConfig
from gpt.plan import DEFAULT_MFU, make_plan
from gpt.run import (
    SAMPLES_FILE,
    TOKENIZER_FILE,
    load_tokenizer,
    load_trained_model,
    new_run_dir,
    read_run_config,
    sample,
    write_run_config,
)
from gpt.runlog import LOGGERS, LoggerUnavailable, make_loggers
from gpt.train import BATCHINGS, TrainConfig, Trainer, make_batches

# The default `python -m gpt train` (with TrainConfig's defaults: 3000 steps of 16 x 64
# tokens): about five minutes on two CPU cores, long enough for recognisable words and
# Python syntax (figures in benchmarks/RESULTS.md, "GPT quality").
DEFAULT_MODEL = {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.1}
CHOICES = {"positions": gpt_model.POSITIONS, "norm": gpt_model.NORMS, "mlp": gpt_model.MLPS,
           "norm_placement": gpt_model.NORM_PLACEMENTS, "batching": BATCHINGS,
           "normalization": ("NFC", "NFKC", "NFD", "NFKD")}
# Flags a resumed run may change: they do not alter what is computed.
RESUME_FLAGS = {"device"}
USER_ERRORS = (ValueError, OSError, CorpusUnavailable, LoggerUnavailable)
EXIT_CODES = {"completed": 0, "non-finite": 1, "interrupted": 130}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as exc:
        print(f"gpt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while training, or one elsewhere
        print(f"gpt {args.command}: aborted", file=sys.stderr)
        return EXIT_CODES["interrupted"]


# -- flags ------------------------------------------------------------------------------
def add_dataclass_flags(group, cls, skip=(), defaults=None) -> None:
    """One flag per field of `cls`, typed from its annotation; absent unless given."""
    defaults = defaults or {}
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = str(field.type)
        default = defaults.get(field.name, field.default)
        if "bool" in kind:
            group.add_argument(flag, action=argparse.BooleanOptionalAction,
                               help=f"(default: {default})")
            continue
        value_type = int if "int" in kind else float if "float" in kind else str
        group.add_argument(flag, type=value_type, choices=CHOICES.get(field.name),
                           metavar=None if field.name in CHOICES else field.name.upper(),
                           help=f"(default: {default})")


def given(args, cls) -> dict:
    """The fields of `cls` set on the command line (GPTConfig's vocab_size comes from the
    tokenizer; --vocab-size is the tokenizer's)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if hasattr(args, f.name) and (cls, f.name) != (GPTConfig, "vocab_size")}


def add_data_flags(parser, prepared_ok: bool) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", nargs="+", metavar="FILE", default=None,
                       help="UTF-8 text files, one document each" +
                            (", or one folder made by `prepare`" if prepared_ok else "") +
                            f" (default: the built-in corpus, {BUILTIN_NAME})")
    group.add_argument("--tokenizer", default="char",
                       help="char, bpe (trained on the data) or a saved tokenizer file "
                            "(default: char)")
    group.add_argument("--vocab-size", type=int, default=None,
                       help="vocabulary size for --tokenizer bpe")
    group.add_argument("--val-fraction", type=float, default=0.1,
                       help="share of the tokens held out for validation (default: 0.1)")
    add_dataclass_flags(parser.add_argument_group("cleaning"), CleaningOptions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpt", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a GPT (default: tiny, char-level, on "
                                "Python's documentation)", argument_default=argparse.SUPPRESS)
    train.set_defaults(run=cmd_train)
    add_data_flags(train, prepared_ok=True)
    add_dataclass_flags(train.add_argument_group("model"), GPTConfig, skip=("vocab_size",),
                        defaults=DEFAULT_MODEL)
    add_dataclass_flags(train.add_argument_group("training"), TrainConfig)
    run = train.add_argument_group("run")
    run.add_argument("--out", default="runs", help="parent of run folders (default: runs)")
    run.add_argument("--name", default=None, help="run folder name (default: date-time)")
    run.add_argument("--resume", metavar="RUN", default=None,
                     help="continue the run in folder RUN from its checkpoint")
    run.add_argument("--logger", nargs="+", choices=LOGGERS, default=[],
                     help="also log to TensorBoard and/or Weights & Biases")
    run.add_argument("--no-progress", action="store_true", default=False,
                     help="no progress bar")
    add_sampling_flags(run, max_new_tokens=400, seed_flag=False)

    sample_cmd = commands.add_parser("sample", help="generate text from a trained run")
    sample_cmd.set_defaults(run=cmd_sample)
    sample_cmd.add_argument("run_dir", metavar="RUN")
    add_sampling_flags(sample_cmd, max_new_tokens=500)
    sample_cmd.add_argument("--device", default="cpu")

    evaluate = commands.add_parser("eval", help="loss and perplexity of a run on a text")
    evaluate.set_defaults(run=cmd_eval)
    evaluate.add_argument("run_dir", metavar="RUN")
    evaluate.add_argument("--data", nargs="+", metavar="FILE",
                          help="text files (default: the run's validation split)")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--device", default="cpu")

    prep = commands.add_parser("prepare", help="clean and tokenize text into a dataset folder",
                               argument_default=argparse.SUPPRESS)
    prep.set_defaults(run=cmd_prepare)
    add_data_flags(prep, prepared_ok=False)
    prep.add_argument("--out", default=None,
                      help="dataset folder (default: data/<first file's name>)")

    plan = commands.add_parser("plan", help="compute-optimal model size, FLOPs and time",
                               argument_default=argparse.SUPPRESS)
    plan.set_defaults(run=cmd_plan)
    add_data_flags(plan, prepared_ok=True)
    plan.add_argument("--tokens", type=float, default=None,
                      help="training tokens (instead of --data)")
    plan.add_argument("--mfu", type=float, default=DEFAULT_MFU,
                      help=f"utilisation of the matmul peak to assume (default: {DEFAULT_MFU})")
    plan.add_argument("--device", default="cpu")
    return parser


def add_sampling_flags(parser, max_new_tokens: int, seed_flag: bool = True) -> None:
    """Generation flags; training samples with its own --seed, so it has no seed flag."""
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    if seed_flag:
        parser.add_argument("--seed", type=int, default=0, help="sampling seed")


# -- shared steps -----------------------------------------------------------------------
def documents_from_args(args) -> tuple[list[str], list[str]]:
    """The documents of --data, or the built-in corpus; and their source names."""
    if args.data:
        return read_files(args.data), list(args.data)
    return builtin_documents(), [BUILTIN_NAME]


def load_dataset(args, out_dir: Path) -> Dataset:
    """A prepared --data folder as is, else the documents prepared into out_dir."""
    if args.data and len(args.data) == 1 and is_dataset(args.data[0]):
        return Dataset.load(args.data[0])
    documents, sources = documents_from_args(args)
    cleaning = CleaningOptions(**given(args, CleaningOptions))
    return prepare(out_dir, documents, sources, tokenizer=args.tokenizer,
                   vocab_size=args.vocab_size, cleaning=cleaning, val_fraction=args.val_fraction)


def check_device(name: str) -> None:
    """Fail early, with the backend's reason (CuPy missing, no GPU, unknown name)."""
    try:
        minigrad.get_device(name)
    except (ImportError, RuntimeError) as exc:
        raise ValueError(f"--device {name}: {exc}") from None


# -- commands ---------------------------------------------------------------------------
def cmd_train(args) -> int:
    if args.resume:
        run_dir = Path(args.resume)
        model_config, train_config, data_dir = read_run_config(run_dir)
        changed = sorted(set(given(args, GPTConfig)) | set(given(args, TrainConfig))
                         - RESUME_FLAGS)
        if changed or args.data is not None:
            flags = ", ".join("--" + n.replace("_", "-") for n in changed or ["data"])
            raise ValueError(f"--resume continues {run_dir} with its saved settings, so that "
                             f"it computes exactly what an unbroken run would; {flags} cannot "
                             "change (start a new run instead)")
        train_config = dataclasses.replace(train_config, **given(args, TrainConfig))
        check_device(train_config.device)
        dataset = Dataset.load(data_dir)
        batches, val = data_streams(dataset, model_config.block_size, train_config)
    else:
        train_config = TrainConfig(**given(args, TrainConfig))
        check_device(train_config.device)
        model_settings = {**DEFAULT_MODEL, **given(args, GPTConfig)}
        GPTConfig(vocab_size=1, **model_settings)  # bad model flags fail before any work
        run_dir = new_run_dir(args.out, args.name)
        dataset = load_dataset(args, run_dir / "data")
        model_config = GPTConfig(vocab_size=dataset.vocab_size, **model_settings)
        batches, val = data_streams(dataset, model_config.block_size, train_config)
        dataset.tokenizer.save(run_dir / TOKENIZER_FILE)
        write_run_config(run_dir, model_config, train_config, dataset.path)
    return train_run(args, run_dir, model_config, train_config, dataset, batches, val)


def data_streams(dataset: Dataset, block: int, config: TrainConfig):
    """The training batches and the validation tokens (None: no evaluation), checked to
    hold at least one window."""
    val = dataset.val if config.eval_interval and len(dataset.val) else None
    if val is not None and len(val) < block + 1:
        raise ValueError(f"the validation split has {len(val)} tokens, fewer than one window "
                         f"of block size {block} + 1; use more data, a larger --val-fraction, "
                         "a smaller --block-size, or --eval-interval 0")
    return make_batches(dataset.train, block, config), val


def train_run(args, run_dir: Path, model_config: GPTConfig, config: TrainConfig,
              dataset: Dataset, batches, val) -> int:
    minigrad.manual_seed(config.seed)  # the dropout stream
    model = GPT(model_config, generator=minigrad.Generator(config.seed)).to(config.device)
    loggers = make_loggers(args.logger, run_dir, {"model": model_config.to_dict(),
                                                  "train": config.to_dict()})
    trainer = Trainer(model, batches, val, config, run_dir, loggers,
                      progress=not args.no_progress)
    if args.resume:
        trainer.load_checkpoint()
    print(f"run folder: {run_dir}\n"
          f"data: {len(dataset.train):,} train / {len(dataset.val):,} val tokens, "
          f"vocabulary {dataset.vocab_size:,} ({dataset.path})\n"
          f"model: {model.num_parameters():,} parameters ({model_config.n_layer} layers, "
          f"{model_config.n_head} heads, width {model_config.n_embd}, context "
          f"{model_config.block_size})\n"
          f"training: steps {trainer.step + 1}..{config.steps}, "
          f"{trainer.tokens_per_step:,} tokens each, on {config.device}", flush=True)
    try:
        result = trainer.fit()
    finally:
        for logger in loggers:
            logger.close()
    if result.message:
        print(result.message, file=sys.stderr)
    if result.status == "completed":
        val_loss = trainer.evaluate()
        if val_loss is not None:
            print(f"final val loss {val_loss:.4f}")
        print(f"\nsample (step {result.step}, temperature {args.temperature}):")
        try:
            text = sample(model.eval(), dataset.tokenizer, args.prompt, args.max_new_tokens,
                          args.temperature, args.top_k, args.top_p, config.seed,
                          out=sys.stdout)
        except ValueError as exc:  # the prompt: training itself went well
            print(f"no sample: {exc}", file=sys.stderr)
            return EXIT_CODES[result.status]
        print()
        with open(run_dir / SAMPLES_FILE, "a", encoding="utf-8") as f:
            f.write(f"--- step {result.step}, temperature {args.temperature}, "
                    f"seed {config.seed}\n{text}\n")
    return EXIT_CODES[result.status]


def cmd_sample(args) -> int:
    check_device(args.device)
    model = load_trained_model(args.run_dir, args.device)
    sample(model, load_tokenizer(args.run_dir), args.prompt, args.max_new_tokens,
           args.temperature, args.top_k, args.top_p, args.seed, out=sys.stdout)
    print()
    return 0


def cmd_eval(args) -> int:
    check_device(args.device)
    model = load_trained_model(args.run_dir, args.device)
    if args.data:
        documents, _ = clean_documents(read_files(args.data))
        try:
            tokens = encode_documents(load_tokenizer(args.run_dir), documents)
        except ValueError as exc:
            raise ValueError(f"{', '.join(args.data)}: the run's tokenizer cannot encode this "
                             f"text: {exc}") from None
        source = ", ".join(args.data)
    else:
        _, _, data_dir = read_run_config(args.run_dir)
        tokens, source = Dataset.load(data_dir).val, f"the validation split of {data_dir}"
    loss, perplexity, scored = text_loss(model, tokens, args.batch_size, args.device)
    print(f"{source}: loss {loss:.4f} nats/token, perplexity {perplexity:.3f} "
          f"({scored:,} tokens scored)")
    return 0


def cmd_prepare(args) -> int:
    name = Path(args.data[0]).stem if args.data else BUILTIN_NAME
    out = Path(args.out or Path("data") / name)
    dataset = load_dataset(args, out)
    print(f"dataset ready in {dataset.path}")
    return 0


def cmd_plan(args) -> int:
    check_device(args.device)
    if args.tokens is not None:
        tokens = int(args.tokens)
    elif args.data and len(args.data) == 1 and is_dataset(args.data[0]):
        dataset = Dataset.load(args.data[0])
        tokens = len(dataset.train) + len(dataset.val)
    else:
        documents, _ = documents_from_args(args)
        documents, _ = clean_documents(documents, CleaningOptions(**given(args, CleaningOptions)))
        if not documents:
            raise ValueError("plan: no text left after cleaning")
        tokenizer = make_tokenizer(args.tokenizer, documents, args.vocab_size)
        tokens = len(encode_documents(tokenizer, documents))
    print(make_plan(tokens, matmul_peak_flops(args.device), args.mfu).format())
    return 0
