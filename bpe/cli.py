"""Command line: ``python -m bpe {train,encode,decode,stats,convert}``.

    python -m bpe train corpus.txt --vocab-size 8192 --pattern cl100k -o tok.json
    python -m bpe encode -t tok.json input.txt -o ids.txt      (stdin/stdout without files)
    python -m bpe decode -t tok.json ids.txt
    python -m bpe stats -t tok.json corpus.txt
    python -m bpe encode -t cl100k_base.tiktoken --from tiktoken --pattern cl100k input.txt
    python -m bpe convert tokenizer.json --from huggingface --format tiktoken -o out.tiktoken
    python -m bpe train corpus.txt --vocab-size 8000 --format sentencepiece -o m.model

``--from`` names the format of the tokenizer file: ``bpe`` (ours, the default), ``tiktoken``
(a rank file; give ``--pattern``), ``gpt2`` (a folder with ``encoder.json`` and
``vocab.bpe``), ``huggingface`` (``tokenizer.json``) or ``sentencepiece`` (a BPE ``.model``).
``convert --format`` writes ``bpe``, ``tiktoken`` or ``huggingface`` from a byte-level
tokenizer, ``sentencepiece`` from a SentencePiece model. ``train --format sentencepiece``
learns a SentencePiece BPE model (:mod:`bpe.sentencepiece_training`).

Ids are written as one line of space-separated integers (``--format json`` for a JSON list);
decode reads integers separated by spaces, commas or newlines, with or without brackets.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import regex

from minigrad.instruments.progress import ProgressBar

from .char_tokenizer import CharTokenizer
from .files import write_atomically
from .patterns import NAMED_PATTERNS, unicode_version
from .sentencepiece import SentencePieceTokenizer
from .sentencepiece_training import train_sentencepiece_from_files
from .special_tokens import SpecialTokens
from .tokenizer import Tokenizer, load
from .training import TIE_BREAKS, read_stream
from .workers import resolve_workers


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, TypeError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpe", description="Byte-level BPE tokenizer.")
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version and the Unicode version that splits text")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="learn a tokenizer from UTF-8 text files")
    train.add_argument("files", nargs="+", help="training text files")
    train.add_argument("--vocab-size", type=int, required=True, help="tokens incl. specials")
    train.add_argument("--format", choices=TRAINABLE, default="bpe",
                       help="bpe (byte-level, our JSON; the default) or sentencepiece (a BPE "
                            ".model that the sentencepiece library loads)")
    train.add_argument(
        "--pattern", default=None,
        help=f"bpe: split regex or one of {', '.join(NAMED_PATTERNS)} (default gpt2)"
    )
    train.add_argument("--special-token", action="append", default=[], dest="special_tokens",
                       metavar="TOKEN",
                       help="bpe: a special token (repeatable), e.g. '<|endoftext|>'")
    train.add_argument("--min-frequency", type=int, default=1,
                       help="stop when the best pair occurs fewer times (default 1)")
    train.add_argument("--tie-break", choices=sorted(TIE_BREAKS), default=None,
                       help="bpe: how equally frequent pairs are ordered (default huggingface)")
    train.add_argument("--character-coverage", type=float, default=None,
                       help="sentencepiece: the share of character occurrences that the "
                            "characters with pieces cover (default 1.0)")
    train.add_argument("--no-byte-fallback", action="store_true",
                       help="sentencepiece: unknown characters become <unk>, not byte pieces")
    train.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    train.add_argument("--quiet", action="store_true", help="no progress on stderr")
    train.add_argument("-o", "--output", required=True,
                       help="tokenizer file to write (JSON, or a .model for sentencepiece)")
    train.set_defaults(run=_train)

    encode = commands.add_parser("encode", help="text to token ids")
    _tokenizer_options(encode)
    encode.add_argument("input", nargs="?", help="UTF-8 text file (default: stdin)")
    encode.add_argument("-o", "--output", help="output file (default: stdout)")
    encode.add_argument("--allowed-special", action="append", default=[], metavar="TOKEN",
                        help="encode this special token as its id (repeatable, or 'all')")
    encode.add_argument("--format", choices=["text", "json"], default="text")
    encode.add_argument("--workers", type=int, default=None,
                        help="processes (default: all cores)")
    encode.set_defaults(run=_encode)

    decode = commands.add_parser("decode", help="token ids to text")
    _tokenizer_options(decode)
    decode.add_argument("input", nargs="?", help="file of ids (default: stdin)")
    decode.add_argument("-o", "--output", help="output file (default: stdout)")
    decode.add_argument("--errors", choices=["replace", "strict"], default="replace",
                        help="what to do with invalid UTF-8 (default: replace)")
    decode.set_defaults(run=_decode)

    stats = commands.add_parser("stats", help="vocabulary preview and bytes per token")
    _tokenizer_options(stats)
    stats.add_argument("files", nargs="*", help="UTF-8 text files to measure")
    stats.add_argument("--top", type=int, default=10, help="tokens to preview (default 10)")
    stats.set_defaults(run=_stats)

    convert = commands.add_parser("convert", help="write a tokenizer in another format")
    _tokenizer_options(convert, positional=True)
    convert.add_argument("--format", choices=WRITABLE, required=True, help="format to write")
    convert.add_argument("-o", "--output", required=True, help="file to write")
    convert.set_defaults(run=_convert)
    return parser


READABLE = ["bpe", "tiktoken", "gpt2", "huggingface", "sentencepiece"]
WRITABLE = ["bpe", "tiktoken", "huggingface", "sentencepiece"]
TRAINABLE = ["bpe", "sentencepiece"]
# The train options that only one --format takes: option name to flag.
TRAIN_OPTIONS = {
    "bpe": {"pattern": "--pattern", "special_tokens": "--special-token",
            "tie_break": "--tie-break"},
    "sentencepiece": {"character_coverage": "--character-coverage",
                      "no_byte_fallback": "--no-byte-fallback"},
}


def _tokenizer_options(command: argparse.ArgumentParser, positional: bool = False) -> None:
    help_text = "tokenizer file (a folder for --from gpt2)"
    if positional:
        command.add_argument("tokenizer", help=help_text)
    else:
        command.add_argument("-t", "--tokenizer", required=True, help=help_text)
    command.add_argument("--from", dest="source_format", choices=READABLE, default="bpe",
                         help="format of the tokenizer file (default: bpe, our JSON)")
    command.add_argument("--pattern", dest="source_pattern", default=None,
                         help="split pattern of a --from tiktoken file (a tiktoken file has none)")


def _load_tokenizer(args: argparse.Namespace) -> Tokenizer | CharTokenizer | SentencePieceTokenizer:
    """The tokenizer that ``-t``/``--from``/``--pattern`` name."""
    path, source = args.tokenizer, args.source_format
    if source == "tiktoken" and args.source_pattern is None:
        raise ValueError("a tiktoken file holds no split pattern: give --pattern "
                         f"(one of {', '.join(NAMED_PATTERNS)} or a regex)")
    if args.source_pattern is not None and source != "tiktoken":
        raise ValueError(f"--pattern is for --from tiktoken; a {source} file names its own")
    if source == "gpt2":
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"--from gpt2 wants a folder with encoder.json and vocab.bpe, "
                             f"got {path!r}")
        return Tokenizer.from_gpt2(folder / "encoder.json", folder / "vocab.bpe")
    if source == "tiktoken":
        return Tokenizer.from_tiktoken(path, pattern=args.source_pattern)
    if source == "huggingface":
        return Tokenizer.from_huggingface(path)
    if source == "sentencepiece":
        return SentencePieceTokenizer.load(path)
    return load(path)


def _unicode() -> str:
    return f"{unicode_version()} (the tables of regex {regex.__version__} split the text)"


class _VersionAction(argparse.Action):
    """``--version``; the Unicode version is only worked out when asked for (a third second)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from minigrad import __version__

        print(f"bpe (minigrad {__version__}), Unicode {_unicode()}")
        parser.exit()


def _train(args: argparse.Namespace) -> int:
    for other, options in TRAIN_OPTIONS.items():
        for name, flag in options.items():
            if other != args.format and getattr(args, name) not in (None, [], False):
                raise ValueError(f"{flag} is for --format {other}, not {args.format}")
    started = time.perf_counter()
    tokenizer: Tokenizer | SentencePieceTokenizer
    if args.format == "sentencepiece":
        tokenizer = train_sentencepiece_from_files(
            args.files,
            vocab_size=args.vocab_size,
            byte_fallback=not args.no_byte_fallback,
            character_coverage=1.0 if args.character_coverage is None else args.character_coverage,
            min_frequency=args.min_frequency,
            progress=not args.quiet,
            num_workers=args.workers,
        )
    else:
        tokenizer = Tokenizer.train_from_files(
            args.files,
            vocab_size=args.vocab_size,
            pattern=args.pattern or "gpt2",
            special_tokens=args.special_tokens,
            min_frequency=args.min_frequency,
            tie_break=args.tie_break or "huggingface",
            progress=not args.quiet,
            num_workers=args.workers,
        )
    tokenizer.save(args.output)
    if not args.quiet:
        print(
            f"trained {tokenizer.vocab_size} tokens in {time.perf_counter() - started:.1f}s, "
            f"saved to {args.output}",
            file=sys.stderr,
        )
    return 0


def _encode(args: argparse.Namespace) -> int:
    tokenizer = _load_tokenizer(args)
    if isinstance(tokenizer, Tokenizer):
        _encode_stream(tokenizer, args)
        return 0
    ids = tokenizer.encode(_read_text(args.input))
    rendered = json.dumps(ids) if args.format == "json" else " ".join(map(str, ids))
    _write_output(args.output, (rendered + "\n").encode("utf-8"))
    return 0


def _encode_stream(tokenizer: Tokenizer, args: argparse.Namespace) -> None:
    """Encode a file or stdin in pieces cut where the split cannot change (so the ids equal
    those of the whole text) on every worker, writing ids as they come: memory stays that
    of a few pieces. Progress and the speed go to stderr."""
    allowed = "all" if "all" in args.allowed_special else set(args.allowed_special)
    from_stdin = args.input in (None, "-")
    total = None if from_stdin else os.path.getsize(args.input) / 1e6
    name = "stdin" if from_stdin else args.input
    json_format = args.format == "json"
    separator = b", " if json_format else b" "
    progress = ProgressBar(total=round(total) if total else 0, label=f"encoding {name}",
                           unit="MB", interval=0.5)
    started = time.perf_counter()
    tokens, done = 0, 0
    sizes: collections.deque[int] = collections.deque()  # bytes of the pieces in flight

    def measured(file):
        for piece in read_stream(file, tokenizer.pattern, SpecialTokens(tokenizer.special_tokens)):
            sizes.append(len(piece.encode("utf-8", "surrogatepass")))
            yield piece

    with _input_text(args.input) as file, _output_file(args.output) as out:
        out.write(b"[" if json_format else b"")
        for ids in tokenizer.encode_pieces(measured(file), allowed_special=allowed,
                                           num_workers=args.workers):
            if len(ids):
                out.write((separator if tokens else b"") +
                          separator.join(b"%d" % i for i in ids.tolist()))
                tokens += len(ids)
            done += sizes.popleft()
            seconds = max(time.perf_counter() - started, 1e-9)
            progress.update(round(done / 1e6), **{"MB/s": done / 1e6 / seconds})
        out.write(b"]\n" if json_format else b"\n")
    progress.close()
    seconds = max(time.perf_counter() - started, 1e-9)
    workers = resolve_workers(args.workers)
    print(f"encoded {name}: {done / 1e6:.1f} MB, {tokens:,} tokens in {seconds:.1f}s "
          f"({done / 1e6 / seconds:.2f} MB/s, {workers} worker{'s' if workers > 1 else ''})",
          file=sys.stderr)


@contextlib.contextmanager
def _input_text(path: str | None):
    """The input as a UTF-8 text stream that keeps line endings: stdin or the file."""
    try:
        if path in (None, "-"):
            yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
            return
        with open(path, encoding="utf-8", newline="") as file:
            yield file
    except UnicodeDecodeError as exc:  # only reading the input decodes bytes
        raise _not_utf8(path, exc) from None


@contextlib.contextmanager
def _output_file(path: str | None):
    """A binary file to write the output to: stdout, or one that replaces ``path``
    atomically when the block succeeds."""
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    from minigrad.io.atomic import atomic_write  # as in files.write_atomically

    with atomic_write(path) as file:
        yield file


def _decode(args: argparse.Namespace) -> int:
    tokenizer = _load_tokenizer(args)
    fields = _read_text(args.input).replace(",", " ").strip().strip("[]").split()
    try:
        ids = [int(field) for field in fields]
    except ValueError as exc:
        raise ValueError(f"token ids must be integers: {exc}") from None
    if isinstance(tokenizer, Tokenizer):
        text = tokenizer.decode(ids, errors=args.errors)
    else:
        text = tokenizer.decode(ids)
    _write_output(args.output, text.encode("utf-8", "surrogatepass"))
    return 0


def _stats(args: argparse.Namespace) -> int:
    tokenizer = _load_tokenizer(args)
    print(f"kind: {type(tokenizer).__name__}")
    print(f"vocab size: {tokenizer.vocab_size}")
    if isinstance(tokenizer, Tokenizer):
        print(f"pattern: {tokenizer.pattern.name or tokenizer.pattern.source}")
        print(f"unicode: {_unicode()}")
        print(f"special tokens: {tokenizer.special_tokens}")
        tokens = sorted(tokenizer.mergeable_ranks.items(), key=lambda item: item[1])[256:]
        longest = sorted(tokens, key=lambda item: (-len(item[0]), item[1]))
        print(f"first merged tokens: {[data for data, _ in tokens[: args.top]]}")
        print(f"last merged tokens: {[data for data, _ in tokens[-args.top :]]}")
        print(f"longest tokens: {[data for data, _ in longest[: args.top]]}")
    elif isinstance(tokenizer, SentencePieceTokenizer):
        pieces = [piece for piece, _, _ in tokenizer.pieces]
        print(f"first pieces: {pieces[: args.top]}")
        print(f"longest pieces: {sorted(pieces, key=len, reverse=True)[: args.top]}")
    else:
        print(f"alphabet: {''.join(tokenizer.chars)!r}")
    for path in args.files:
        data = _read_input(path)
        text = _utf8(data, path)
        started = time.perf_counter()
        if isinstance(tokenizer, Tokenizer):
            count = len(tokenizer.encode_ordinary(text))
        else:
            count = len(tokenizer.encode(text))
        seconds = time.perf_counter() - started
        ratio = len(data) / count if count else float("nan")
        print(f"{path}: {len(data)} bytes, {count} tokens, {ratio:.3f} bytes/token "
              f"({len(data) / 1e6 / max(seconds, 1e-9):.2f} MB/s)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    tokenizer = _load_tokenizer(args)
    if args.format == "sentencepiece":
        if not isinstance(tokenizer, SentencePieceTokenizer):
            raise ValueError(
                f"a {type(tokenizer).__name__} cannot be written as a SentencePiece model with "
                "the same ids: SentencePiece pieces are characters merged within ▁-words, not "
                "bytes (nor regex chunks); train one with `train --format sentencepiece`"
            )
        tokenizer.save(args.output)
        return 0
    if not isinstance(tokenizer, Tokenizer):
        raise ValueError(f"a {type(tokenizer).__name__} cannot be written as {args.format!r}; "
                         f"only byte-level BPE tokenizers convert to {args.format!r}")
    if args.format == "tiktoken":
        tokenizer.save_tiktoken(args.output)
    elif args.format == "huggingface":
        tokenizer.save_huggingface(args.output)
    else:
        tokenizer.save(args.output)
    return 0


def _read_input(path: str | None) -> bytes:
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as file:
        return file.read()


def _read_text(path: str | None) -> str:
    """The input file (or stdin) as UTF-8 text; other bytes are an error naming it."""
    return _utf8(_read_input(path), path)


def _utf8(data: bytes, path: str | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None


def _not_utf8(path: str | None, exc: UnicodeDecodeError) -> ValueError:
    name = "stdin" if path in (None, "-") else repr(path)
    return ValueError(f"{name} is not UTF-8 text ({exc.reason}: "
                      f"{exc.object[exc.start:exc.start + 4]!r}...)")


def _write_output(path: str | None, data: bytes) -> None:
    if path is None or path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomically(path, data)
