"""The command line: `python -m gpt train | sample | eval | prepare | plan | finetune | chat |
classify | report`.

    python -m gpt train                      # tiny char-level GPT on Python's own docs
    python -m gpt train --data book.txt --tokenizer bpe --vocab-size 1024 --steps 5000
    python -m gpt train --resume runs/NAME   # continue exactly where it stopped
    python -m gpt sample runs/NAME --prompt "The " --max-new-tokens 300 --top-k 40
    python -m gpt eval runs/NAME --data held_out.txt
    python -m gpt prepare --data a.txt b.txt --out data/mine --tokenizer bpe --vocab-size 512
    python -m gpt plan --tokens 100_000_000
    python -m gpt plan --parallel --model llama-7b --gpus 8 --gpu-memory 80
    python -m gpt report runs/NAME           # why did it diverge: the last steps, per layer
    python -m gpt finetune instruct --data records.json --from runs/NAME --lora 8
    python -m gpt finetune dpo --data preferences.json --from runs/INSTRUCT_RUN
    python -m gpt chat runs/INSTRUCT_RUN
    python -m gpt sample --pretrained gpt2 --prompt "Hello"   # a Hugging Face checkpoint
    python -m gpt finetune classify --data spam.tsv --from runs/NAME --balance undersample
    python -m gpt classify runs/CLASSIFY_RUN "Win a prize now!" --out predictions.jsonl

The model, training and cleaning flags are generated from GPTConfig, TrainConfig and
CleaningOptions, so every field has a flag (--n-layer, --grad-accum, --ascii-only, ...).
Exit status: 0 done, 1 training stopped on a non-finite loss or divergence, 2 bad input
(nothing written), 130 stopped by Ctrl-C or SIGTERM after saving (README, "Crashes").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import minigrad
from bpe.corpus import BUILTIN_NAME, CorpusUnavailable, builtin_documents
from gpt import model as gpt_model
from gpt import pretrained
from gpt.data.cleaning import CleaningOptions, clean_documents
from gpt.data.dataset import Dataset, encode_documents, is_dataset, make_tokenizer, prepare
from gpt.data.dataset import read_documents as read_files
from gpt.evaluation import text_loss
from gpt.files import (
    METRICS_FILE,
    REPORT_PLOT_FILE,
    RUN_DATA_DIR,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
)
from gpt.finetune.chat import chat
from gpt.finetune.classify import (
    BALANCES,
    POOLINGS,
    ClassifyOptions,
    classify_texts,
    finetune_classify,
    load_classifier,
    read_texts,
    write_predictions,
)
from gpt.finetune.dpo import DPOOptions, finetune_dpo
from gpt.finetune.instruct import InstructOptions, finetune_instruct
from gpt.finetune.lora_options import add_lora_flags, lora_settings
from gpt.finetune.runs import read_config
from gpt.hardware import matmul_peak_flops
from gpt.model import GPT, GPTConfig
from gpt.parallel import start as start_parallel
from gpt.parallel.data import batches_for, record_layout
from gpt.plan import (
    DEFAULT_MFU,
    MODEL_PRESETS,
    PRECISIONS,
    ModelShape,
    format_layouts,
    make_plan,
    plan_layouts,
)
from gpt.report import LAST_STEPS, divergence_report, plot_report
from gpt.run import (
    check_resumable,
    generate_text,
    load_tokenizer,
    load_trained_model,
    lock_run_dir,
    new_run_dir,
    read_run_config,
    record_sample,
    removed_if_unfinished,
    write_run_config,
)
from gpt.runlog import LOGGERS, LoggerUnavailable, make_loggers, read_metrics
from gpt.stability import DIVERGENCE_MODES
from gpt.train import BATCHINGS, TrainConfig, Trainer, make_batches
from gpt.validation import check_number
from minigrad.distributed import local_device

# The default `python -m gpt train` (with TrainConfig's defaults: 3000 steps of 16 x 64
# tokens): about five minutes on two CPU cores, long enough for recognisable words and
# Python syntax (figures in benchmarks/RESULTS.md, "GPT quality").
DEFAULT_MODEL = {"block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.1}
CHOICES = {"positions": gpt_model.POSITIONS, "norm": gpt_model.NORMS, "mlp": gpt_model.MLPS,
           "norm_placement": gpt_model.NORM_PLACEMENTS, "batching": BATCHINGS,
           "on_divergence": DIVERGENCE_MODES,
           "normalization": ("NFC", "NFKC", "NFD", "NFKD"),
           "balance": BALANCES, "pooling": POOLINGS}
# Flags a resumed run may change: they do not alter what is computed.
RESUME_FLAGS = {"device"}
# The data and run-folder flags of `train`: a resumed run keeps its own dataset and folder,
# so it would silently ignore them.
NEW_RUN_FLAGS = ("out", "name", "tokenizer", "vocab_size", "val_fraction", "workers")
USER_ERRORS = (ValueError, OSError, CorpusUnavailable, LoggerUnavailable)
EXIT_CODES = {"completed": 0, "non-finite": 1, "diverged": 1, "interrupted": 130}


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
    group.add_argument("--workers", type=int, default=None,
                       help="processes that clean and tokenize the data (default: every "
                            "core; corpora under 8 MB use one)")
    add_dataclass_flags(parser.add_argument_group("cleaning"), CleaningOptions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpt", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a GPT (default: tiny, char-level, on "
                                "Python's documentation)", argument_default=argparse.SUPPRESS)
    train.set_defaults(run=cmd_train)
    add_data_flags(train, prepared_ok=True)
    add_dataclass_flags(train.add_argument_group("model"), GPTConfig,
                        skip=("vocab_size", "rope_scaling"),
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
    run.add_argument("--parallel", metavar="LAYOUT", default=None,
                     help="train on the N processes of an MPI launch, laid out as "
                          "dp=D,tp=T,pp=P[,zero=1] with D x T x P = N: mpiexec -n N python -m "
                          "gpt train --parallel dp=2 (the 'distributed' extra)")
    add_sampling_flags(run, max_new_tokens=400, seed_flag=False)

    sample = commands.add_parser("sample", help="generate text from a trained run or a "
                                 "pretrained checkpoint")
    sample.set_defaults(run=cmd_sample)
    add_model_source_flags(sample)
    add_sampling_flags(sample, max_new_tokens=500)
    sample.add_argument("--device", default="cpu")

    evaluate = commands.add_parser("eval", help="loss and perplexity of a run (or a pretrained "
                                   "checkpoint) on a text")
    evaluate.set_defaults(run=cmd_eval)
    add_model_source_flags(evaluate)
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
    prep.add_argument("--no-progress", action="store_true", default=False,
                      help="no progress bar on stderr")

    report = commands.add_parser("report", help="why a run diverged: its last steps before "
                                 "a rollback or stop, layer by layer")
    report.set_defaults(run=cmd_report)
    report.add_argument("run_dir", metavar="RUN")
    report.add_argument("--last", type=int, default=LAST_STEPS,
                        help=f"steps to show (default: {LAST_STEPS})")

    plan = commands.add_parser("plan", help="compute-optimal model size, FLOPs and time",
                               argument_default=argparse.SUPPRESS)
    plan.set_defaults(run=cmd_plan)
    add_data_flags(plan, prepared_ok=True)
    plan.add_argument("--tokens", type=float, default=None,
                      help="training tokens (instead of --data)")
    plan.add_argument("--mfu", type=float, default=DEFAULT_MFU,
                      help=f"utilisation of the matmul peak to assume (default: {DEFAULT_MFU})")
    plan.add_argument("--device", default="cpu")
    layouts = plan.add_argument_group("parallel layouts (with --parallel)")
    layouts.add_argument("--parallel", action="store_true", default=False,
                         help="per-rank memory, communication and step time of every dp x tp "
                              "x pp (x ZeRO-1, x recomputation) layout of --gpus, best first")
    layouts.add_argument("--model", default="gpt2", choices=tuple(MODEL_PRESETS),
                         help="model size (default: gpt2, 124M)")
    layouts.add_argument("--gpus", type=int, default=8, help="(default: 8)")
    layouts.add_argument("--gpu-memory", type=float, default=80.0,
                         help="GB per GPU (default: 80)")
    layouts.add_argument("--gpu-tflops", type=float, default=312.0,
                         help="peak TFLOP/s per GPU (default: 312, an A100's bf16)")
    layouts.add_argument("--bandwidth", type=float, default=100.0,
                         help="GB/s per GPU for collectives (default: 100)")
    layouts.add_argument("--global-batch", type=int, default=512,
                         help="sequences per step (default: 512)")
    layouts.add_argument("--micro-batch", type=int, default=4,
                         help="sequences per micro-batch (default: 4)")
    layouts.add_argument("--precision", choices=tuple(PRECISIONS), default="mixed",
                         help="mixed (fp16/bf16 with fp32 Adam) or fp32 (default: mixed)")
    add_finetune_commands(commands)
    return parser


def add_model_source_flags(parser) -> None:
    """RUN, or --pretrained: a Hugging Face folder or hub id (see gpt.pretrained)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("run_dir", metavar="RUN", nargs="?", default=None,
                        help="a run folder made by `train`")
    source.add_argument("--pretrained", metavar="PATH", default=None,
                        help="instead of RUN: a Hugging Face GPT-2 / Llama folder or hub id")
    parser.add_argument("--block-size", type=int, default=None,
                        help="with --pretrained: a shorter context than the checkpoint's")


def add_sampling_flags(parser, max_new_tokens: int, seed_flag: bool = True) -> None:
    """How to sample each next token, and how much text; training generates with its own
    --seed, so it has no seed flag."""
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    if seed_flag:
        parser.add_argument("--seed", type=int, default=0, help="sampling seed")


def check_sampling_flags(args) -> None:
    """The sampling flags in range (NaN and infinity never are), before any work."""
    check_number("--max-new-tokens", args.max_new_tokens, minimum=0)
    check_number("--temperature", args.temperature, minimum=0)
    check_number("--top-k", args.top_k, minimum=1)
    check_number("--top-p", args.top_p, above=0, maximum=1)
    check_number("--seed", getattr(args, "seed", None), minimum=0)


# -- shared steps -----------------------------------------------------------------------
def documents_from_args(args) -> tuple[list[str], list[str]]:
    """The documents of --data, or the built-in corpus; and their source names."""
    if args.data:
        return read_files(args.data), list(args.data)
    return builtin_documents(), [BUILTIN_NAME]


def load_dataset(args, out_dir: Path) -> Dataset:
    """A prepared --data folder as is, else the documents prepared into out_dir (files
    are streamed, so a corpus larger than memory works); `check_data_flags` first."""
    if args.data and len(args.data) == 1 and is_dataset(args.data[0]):
        return Dataset.load(args.data[0])
    documents = [Path(path) for path in args.data] if args.data else builtin_documents()
    sources = list(args.data) if args.data else [BUILTIN_NAME]
    cleaning = CleaningOptions(**given(args, CleaningOptions))
    return prepare(out_dir, documents, sources, tokenizer=args.tokenizer,
                   vocab_size=args.vocab_size, cleaning=cleaning, val_fraction=args.val_fraction,
                   workers=args.workers, progress=not getattr(args, "no_progress", False))


def check_data_flags(args) -> None:
    """Refuse bad data flags before any folder is made: numbers out of range, and beside a
    prepared dataset folder the flags that turn text into one (tokenizer, split, cleaning),
    which it would ignore."""
    check_number("--workers", args.workers, minimum=1)
    check_number("--val-fraction", args.val_fraction, minimum=0, below=1)
    if not (args.data and len(args.data) == 1 and is_dataset(args.data[0])):
        return
    names = ["tokenizer", "vocab_size", "val_fraction", "workers",
             *(field.name for field in dataclasses.fields(CleaningOptions))]
    flags = ["--" + name.replace("_", "-") for name in changed_flags(args, [args.command], names)]
    if flags:
        raise ValueError(f"--data {args.data[0]} is a prepared dataset folder, with its own "
                         f"tokenizer, split and cleaning: {', '.join(flags)} would be "
                         "ignored (they are for text files)")


def check_device(name: str) -> None:
    """Fail early, with the backend's reason (CuPy missing, no GPU, unknown name)."""
    try:
        minigrad.get_device(name)
    except (ImportError, RuntimeError) as exc:
        raise ValueError(f"--device {name}: {exc}") from None


# -- commands ---------------------------------------------------------------------------
def cmd_train(args) -> int:
    parallel = start_parallel(args.parallel) if args.parallel else None
    if parallel is None:
        return train_command(args)
    with parallel.guard():  # an error on any rank ends them all, instead of a hang
        if parallel.is_main:
            return train_command(args, parallel)
        return follow_main_rank(args, parallel)


def follow_main_rank(args, parallel) -> int:
    """A rank other than 0 of a parallel run: rank 0 sets up the run folder (or checks
    the one to resume) and says where it is; this rank reads it from there."""
    run_dir = Path(parallel.world.broadcast_object(None, root=0))
    model_config, train_config, data_dir = read_run_config(run_dir)
    train_config = dataclasses.replace(train_config, **given(args, TrainConfig))
    dataset = Dataset.load(data_dir)
    batches, val = data_streams(dataset, model_config.block_size, train_config, run_dir,
                                parallel)
    return train_run(args, run_dir, model_config, train_config, dataset, batches, val,
                     parallel)


def train_command(args, parallel=None) -> int:
    check_sampling_flags(args)
    if args.resume:
        run_dir = Path(args.resume)
        model_config, train_config, data_dir = read_run_config(run_dir)
        lock = lock_run_dir(run_dir)  # first: a run a live process holds is refused as such
        try:
            check_resumable(run_dir)
            changed = sorted(set(given(args, GPTConfig)) | set(given(args, TrainConfig))
                             - RESUME_FLAGS | set(given(args, CleaningOptions))
                             | set(changed_flags(args, ["train"], NEW_RUN_FLAGS)))
            if changed or args.data is not None:
                flags = ", ".join("--" + n.replace("_", "-") for n in changed or ["data"])
                raise ValueError(f"--resume continues {run_dir} with its saved settings, so that "
                                 f"it computes exactly what an unbroken run would; {flags} cannot "
                                 "change (start a new run instead)")
            train_config = dataclasses.replace(train_config, **given(args, TrainConfig))
            check_device(train_config.device)
            dataset = Dataset.load(data_dir)
            batches, val = data_streams(dataset, model_config.block_size, train_config, run_dir,
                                        parallel)
        except BaseException:
            lock.release()
            raise
    else:
        train_config = TrainConfig(**given(args, TrainConfig))
        check_device(train_config.device)
        model_settings = {**DEFAULT_MODEL, **given(args, GPTConfig)}
        GPTConfig(vocab_size=1, **model_settings)  # bad model flags fail before any work
        check_data_flags(args)
        run_dir, lock = new_run_dir(args.out, args.name)
        with removed_if_unfinished(run_dir, lock):
            dataset = load_dataset(args, run_dir / RUN_DATA_DIR)
            model_config = GPTConfig(vocab_size=dataset.vocab_size, **model_settings)
            batches, val = data_streams(dataset, model_config.block_size, train_config,
                                        run_dir, parallel)
            dataset.tokenizer.save(run_dir / TOKENIZER_FILE)
            write_run_config(run_dir, model_config, train_config, dataset.path)
    if parallel is not None:  # the other ranks read the folder rank 0 has set up
        if not args.resume:
            record_layout(run_dir, parallel.layout)
        parallel.world.broadcast_object(str(run_dir), root=0)
    with lock:  # held while training: a second process in this folder is refused
        return train_run(args, run_dir, model_config, train_config, dataset, batches, val,
                         parallel)


def changed_flags(args, command: list[str], names) -> list[str]:
    """The options among `names` (argparse dests) that `args` holds with other values than
    the defaults of `command` (["train"], say): the flags given on the command line."""
    defaults = vars(build_parser().parse_args(command))
    return [name for name in names
            if hasattr(args, name) and getattr(args, name) != defaults.get(name)]


def data_streams(dataset: Dataset, block: int, config: TrainConfig, run_dir=None,
                 parallel=None):
    """The training batches (a parallel run's: this replica's data shards) and the
    validation tokens (None: no evaluation), checked to hold at least one window."""
    val = dataset.val if config.eval_interval and len(dataset.val) else None
    if val is not None and len(val) < block + 1:
        raise ValueError(f"the validation split has {len(val)} tokens, fewer than one window "
                         f"of block size {block} + 1; use more data, a larger --val-fraction, "
                         "a smaller --block-size, or --eval-interval 0")
    sharded = None if run_dir is None else batches_for(dataset.train, block, config, run_dir,
                                                       parallel)
    return (make_batches(dataset.train, block, config) if sharded is None else sharded), val


def train_run(args, run_dir: Path, model_config: GPTConfig, config: TrainConfig,
              dataset: Dataset, batches, val, parallel=None) -> int:
    minigrad.manual_seed(config.seed)  # the dropout stream
    if parallel is not None:  # one GPU per process
        config = dataclasses.replace(config, device=local_device(config.device))
    model = GPT(model_config, generator=minigrad.Generator(config.seed)).to(config.device)
    if parallel is not None:
        model = parallel.prepare_model(model)  # this rank's layers and shards
    main = parallel is None or parallel.is_main
    loggers = make_loggers(args.logger if main else [], run_dir,
                           {"model": model_config.to_dict(), "train": config.to_dict()})
    trainer = Trainer(model, batches, val, config, run_dir, loggers,
                      progress=not args.no_progress, parallel=parallel)
    if args.resume:
        trainer.load_checkpoint()
    if parallel is not None:
        report = parallel.describe(config.grad_accum)  # every rank takes part; 0 prints
        if main:
            print(report)
    if main:
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
        return finish_run(args, run_dir, config, dataset, trainer, model, result, loggers,
                          parallel)
    finally:
        for logger in loggers:
            logger.close()


def finish_run(args, run_dir, config, dataset, trainer, model, result, loggers,
               parallel) -> int:
    """After training: the outcome, the final validation loss and a sample (printed, kept
    in the run folder and sent to the loggers); the exit code."""
    main = parallel is None or parallel.is_main
    if result.message and main:
        print(result.message, file=sys.stderr)
    if result.status == "completed":
        val_loss = trainer.evaluate()  # every rank takes part
        if not main:
            return EXIT_CODES[result.status]
        if val_loss is not None:
            print(f"final val loss {val_loss:.4f}")
        print(f"\nsample (step {result.step}, temperature {args.temperature}):")
        if parallel is not None:  # rank 0 holds a part: sample from the whole, saved
            model = load_trained_model(run_dir, config.device)
        try:
            text = generate_text(model.eval(), dataset.tokenizer, args.prompt,
                                 args.max_new_tokens, args.temperature, args.top_k, args.top_p,
                                 config.seed, out=sys.stdout)
        except ValueError as exc:  # the prompt: training itself went well
            print(f"no sample: {exc}", file=sys.stderr)
            return EXIT_CODES[result.status]
        print()
        record_sample(run_dir, f"step {result.step}, temperature {args.temperature}, "
                      f"seed {config.seed}", text)
        for logger in loggers:
            logger.text(result.step, "sample", text)
    return EXIT_CODES[result.status]


def model_from_args(args):
    """(model in eval mode, its tokenizer) from RUN or --pretrained (argparse sees to it
    that exactly one is given)."""
    check_device(args.device)
    if args.pretrained is None:
        return load_trained_model(args.run_dir, args.device), load_tokenizer(args.run_dir)
    folder = pretrained.resolve_model_folder(args.pretrained)
    return (pretrained.load_pretrained(folder, args.device, block_size=args.block_size),
            pretrained.load_pretrained_tokenizer(folder))


def cmd_sample(args) -> int:
    check_sampling_flags(args)
    model, tokenizer = model_from_args(args)
    generate_text(model, tokenizer, args.prompt, args.max_new_tokens,
                  args.temperature, args.top_k, args.top_p, args.seed, out=sys.stdout)
    print()
    return 0


def cmd_eval(args) -> int:
    if args.pretrained is not None and not args.data:
        raise ValueError("eval --pretrained needs --data (a checkpoint has no validation split)")
    check_number("--batch-size", args.batch_size, minimum=1)
    model, tokenizer = model_from_args(args)
    if args.data:
        documents, _ = clean_documents(read_files(args.data))
        try:
            tokens = encode_documents(tokenizer, documents)
        except ValueError as exc:
            whose = "run" if args.pretrained is None else "checkpoint"
            raise ValueError(f"{', '.join(args.data)}: the {whose}'s tokenizer cannot encode "
                             f"this text: {exc}") from None
        source = ", ".join(args.data)
    else:
        _, _, data_dir = read_run_config(args.run_dir)
        tokens, source = Dataset.load(data_dir).val, f"the validation split of {data_dir}"
    loss, perplexity, scored = text_loss(model, tokens, args.batch_size, args.device)
    if not math.isfinite(loss):
        raise ValueError(f"{source}: the loss is {loss}: the model's weights overflow on this "
                         "text (they are not usable)")
    print(f"{source}: loss {loss:.4f} nats/token, perplexity {perplexity:.3f} "
          f"({scored:,} tokens scored)")
    return 0


def cmd_prepare(args) -> int:
    name = Path(args.data[0]).stem if args.data else BUILTIN_NAME
    out = Path(args.out or Path("data") / name)
    check_data_flags(args)
    dataset = load_dataset(args, out)
    print(f"dataset ready in {dataset.path}")
    return 0


def cmd_plan(args) -> int:
    check_number("--tokens", args.tokens, minimum=1)
    check_number("--mfu", args.mfu, above=0, maximum=1)
    if args.parallel:
        return plan_parallel(args)
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


def plan_parallel(args) -> int:
    for flag in ("gpus", "global_batch", "micro_batch"):
        check_number("--" + flag.replace("_", "-"), getattr(args, flag), above=0)
    for flag in ("gpu_memory", "gpu_tflops", "bandwidth"):
        check_number("--" + flag.replace("_", "-"), getattr(args, flag), above=0)
    shape = ModelShape.preset(args.model)
    plans = plan_layouts(shape, args.gpus, args.global_batch, args.micro_batch,
                         args.gpu_memory, args.gpu_tflops * 1e12, args.bandwidth * 1e9, args.mfu,
                         args.precision)
    print(format_layouts(shape, plans, args.gpus, args.gpu_memory))
    return 0


def cmd_report(args) -> int:
    check_number("--last", args.last, minimum=1)
    metrics = Path(args.run_dir) / METRICS_FILE
    if not metrics.is_file():
        raise FileNotFoundError(f"{args.run_dir} has no {METRICS_FILE}: not a run folder, or "
                                "it has not logged a step yet")
    report = divergence_report(read_metrics(metrics), args.last)
    print(report.format())
    plot = plot_report(report, Path(args.run_dir) / REPORT_PLOT_FILE)
    if plot is not None:
        print(f"per-layer curves: {plot}")
    return 0


# -- fine-tuning ------------------------------------------------------------------------
# Short runs from a pretrained model (TrainConfig's own defaults are pretraining's).
FINETUNE_TRAIN = {"steps": 300, "batch_size": 8, "lr": 1e-4, "min_lr": 1e-5, "warmup": 10,
                  "eval_interval": 50, "checkpoint_interval": 100}
FINETUNE_SKIP = ("batching", "stride", "eval_batches")  # pretraining's window sampling
# Flags a resumed fine-tuning run may take: they change neither what it computes nor where.
FINETUNE_RESUME_FLAGS = {"resume", "device", "no_progress", "judge_url", "judge_model"}


def add_finetune_commands(commands) -> None:
    """`finetune instruct | dpo` (each with the LoRA flags) and `chat`."""
    finetune = commands.add_parser("finetune", help="fine-tune a run or a pretrained "
                                   "checkpoint (instruct, dpo)")
    stages = finetune.add_subparsers(dest="stage", required=True, metavar="STAGE")

    instruct = add_finetune_stage(stages, "instruct", "instruction fine-tuning on Alpaca "
                                  "or chat records", cmd_finetune_instruct)
    instruct.add_argument("--train-on-prompt", action="store_true", default=False,
                          help="also train on the prompt tokens (default: masked)")
    instruct.add_argument("--packing", action="store_true", default=False,
                          help="pack several short examples into each row")
    instruct.add_argument("--max-new-tokens", type=int, default=128,
                          help="longest test response generated (default: 128)")
    instruct.add_argument("--judge-url", default=None, metavar="URL",
                          help="an OpenAI-compatible endpoint to score the test responses "
                               "(key from $OPENAI_API_KEY if needed)")
    instruct.add_argument("--judge-model", default=None, metavar="NAME",
                          help="the judge's model name at --judge-url")

    dpo = add_finetune_stage(stages, "dpo", "preference alignment (DPO) on {instruction, "
                             "input, chosen, rejected} records", cmd_finetune_dpo)
    dpo.add_argument("--beta", type=float, default=0.1,
                     help="DPO's beta: larger keeps the policy closer to the reference "
                          "(default: 0.1)")

    classify = add_finetune_stage(stages, "classify", "a class head on labelled texts (TSV "
                                  "label<TAB>text, CSV or JSONL)", cmd_finetune_classify)
    add_dataclass_flags(classify.add_argument_group("classification"), ClassifyOptions,
                        skip=("val_fraction", "test_fraction"))
    predict = commands.add_parser("classify", help="classify texts with a `finetune "
                                  "classify` run (probabilities too)")
    predict.set_defaults(run=cmd_classify)
    predict.add_argument("run_dir", metavar="RUN")
    predict.add_argument("texts", nargs="*", metavar="TEXT")
    predict.add_argument("--file", default=None,
                         help="texts to classify: one per line, or JSONL with a text field")
    predict.add_argument("--out", default=None,
                         help="write the predictions here (JSONL, with probabilities)")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--device", default="cpu")

    chat = commands.add_parser("chat", help="talk to a fine-tuned run (one line per turn)")
    chat.set_defaults(run=cmd_chat)
    chat.add_argument("run_dir", metavar="RUN")
    chat.add_argument("--system", default=None, help="a system message (chat template)")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.add_argument("--top-k", type=int, default=None)
    chat.add_argument("--top-p", type=float, default=None)
    chat.add_argument("--seed", type=int, default=0, help="sampling seed")
    chat.add_argument("--device", default="cpu")


def add_finetune_stage(stages, name: str, help_text: str, run):
    """A `finetune NAME` parser with the flags every stage shares: data, starting model,
    splits, training (TrainConfig, fine-tuning defaults), run folder and LoRA."""
    stage = stages.add_parser(name, help=help_text, argument_default=argparse.SUPPRESS)
    stage.set_defaults(run=run)
    data = stage.add_argument_group("data")
    data.add_argument("--data", metavar="FILE", default=None,
                      help="records: a .json list or a .jsonl file")
    data.add_argument("--from", dest="start", metavar="RUN_OR_PRETRAINED", default=None,
                      help="the starting model: a run folder or a Hugging Face checkpoint")
    data.add_argument("--val-fraction", type=float, default=0.05)
    data.add_argument("--test-fraction", type=float, default=0.1)
    add_dataclass_flags(stage.add_argument_group("training"), TrainConfig, skip=FINETUNE_SKIP,
                        defaults=FINETUNE_TRAIN)
    run_group = stage.add_argument_group("run")
    run_group.add_argument("--out", default="runs", help="parent of run folders")
    run_group.add_argument("--name", default=None, help="run folder name (default: date-time)")
    run_group.add_argument("--resume", metavar="RUN", default=None,
                           help="continue the fine-tuning run in folder RUN")
    run_group.add_argument("--no-progress", action="store_true", default=False)
    add_lora_flags(stage)
    return stage


def finetune_run(args, run) -> int:
    """A fresh fine-tuning run (in a new folder) or a resumed one, under the folder lock;
    `run(run_dir, train, resume)` does the stage's work."""
    lora = lora_settings(args)
    if args.resume:
        # Every other flag would be ignored: the run's data, options and folder are saved.
        changed = sorted(changed_flags(args, ["finetune", args.stage],
                                       set(vars(args)) - FINETUNE_RESUME_FLAGS))
        if changed:
            flags = ", ".join("--" + {"start": "from"}.get(n, n).replace("_", "-")
                              for n in changed)
            raise ValueError(f"--resume continues {args.resume} with its saved settings; "
                             f"only --device may change, not {flags}")
        train = TrainConfig(device=args.device) if hasattr(args, "device") else None
        if train is not None:
            check_device(train.device)
        run_dir = Path(args.resume)
        read_config(run_dir)  # not a run folder: said before the lock would create it
        with lock_run_dir(run_dir):
            result = run(run_dir, train, lora, resume=True)
        return EXIT_CODES[result.status]
    train = TrainConfig(**{**FINETUNE_TRAIN, **given(args, TrainConfig)})
    check_device(train.device)
    run_dir, lock = new_run_dir(args.out, args.name)
    # A stage writes its config before it has checked its records: until the first
    # checkpoint, a failure leaves nothing to resume, so no folder either.
    with lock, removed_if_unfinished(run_dir, lock, started=WEIGHTS_FILE):
        print(f"run folder: {run_dir}", flush=True)
        result = run(run_dir, train, lora, resume=False)
    return EXIT_CODES[result.status]


def cmd_finetune_instruct(args) -> int:
    options = InstructOptions(args.val_fraction, args.test_fraction, args.train_on_prompt,
                              args.packing, args.max_new_tokens)
    return finetune_run(args, lambda run_dir, train, lora, resume: finetune_instruct(
        run_dir, args.data, args.start, train, options, lora, resume, args.judge_url,
        args.judge_model, progress=not args.no_progress))


def cmd_finetune_dpo(args) -> int:
    options = DPOOptions(args.beta, args.val_fraction, args.test_fraction)
    return finetune_run(args, lambda run_dir, train, lora, resume: finetune_dpo(
        run_dir, args.data, args.start, train, options, lora, resume,
        progress=not args.no_progress))


def cmd_finetune_classify(args) -> int:
    options = ClassifyOptions(**given(args, ClassifyOptions))
    return finetune_run(args, lambda run_dir, train, lora, resume: finetune_classify(
        run_dir, args.data, args.start, train, options, lora, resume,
        progress=not args.no_progress))


def cmd_classify(args) -> int:
    check_device(args.device)
    check_number("--batch-size", args.batch_size, minimum=1)
    texts = list(args.texts) + (read_texts(args.file) if args.file else [])
    if not texts:
        raise ValueError("classify: give texts, or --file FILE")
    model, tokenizer, labels = load_classifier(args.run_dir, args.device)
    predictions = classify_texts(model, tokenizer, labels, texts, args.batch_size,
                                 args.device)
    if args.out:
        write_predictions(args.out, predictions)
        print(f"{len(predictions)} predictions written to {args.out}")
    for p in predictions if not args.out else ():
        print(f"{p['label']}\t{p['probabilities'][p['label']]:.3f}\t{p['text']}")
    return 0


def cmd_chat(args) -> int:
    check_sampling_flags(args)
    check_device(args.device)
    chat(args.run_dir, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
         top_k=args.top_k, top_p=args.top_p, seed=args.seed, system=args.system,
         device=args.device)
    return 0

