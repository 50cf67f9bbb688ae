"""Prepared datasets: text files cleaned, tokenized once, split into train and validation
token files, with the tokenizer and a record of how they were made (the folder's files
are listed in `gpt.files`; the val tokens are the last `val_fraction` of the stream).

`prepare` skips the work when the folder already holds the same inputs prepared the
same way (same fingerprint), so a corpus is tokenized once.

It streams, in bounded memory on every core: files are read in pieces of PIECE_BYTES;
worker processes clean them (`gpt.data.cleaning`), this process puts them in order into
a scratch file of cleaned text; the tokenizer is made from that file; workers tokenize
it a piece at a time into a scratch file of raw ids, which is copied a block at a time
into the train and val token files.

A folder commits atomically: the token and tokenizer files of a preparation carry its
own id in their names (train.<id>.npy, ...), so writing them leaves the previous dataset
untouched; replacing dataset.json, which names them, is the one step that switches to
the new dataset. The previous version's files go after that (or, if a kill came first,
at the next `prepare`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from itertools import chain
from pathlib import Path

import numpy as np

from bpe import id_dtype
from bpe.workers import ordered_map, resolve_workers
from gpt.data.cleaning import (
    CleaningOptions,
    CleaningReport,
    CleanPiece,
    CorpusCleaner,
    clean_piece,
    pieces_of,
)
from gpt.data.token_cache import load_tokens, max_token, save_token_range
from gpt.files import DATASET_FILE, TOKENIZER_FILE, TRAIN_TOKENS_FILE, VAL_TOKENS_FILE
from gpt.lock import FolderLock
from gpt.validation import ConfigFileError, read_json_object
from minigrad.instruments.progress import ProgressBar
from minigrad.io import atomic

DOCUMENT_SEPARATOR = "\n\n"
TOKENIZER_KINDS = ("char", "bpe")
# dataset.json's "files": role -> the base name that file_name() versions
ROLES = {"train": TRAIN_TOKENS_FILE, "val": VAL_TOKENS_FILE, "tokenizer": TOKENIZER_FILE}
_VERSIONED = re.compile(r"(train|val|tokenizer)\.[0-9a-f]{32}\.(npy|json)")
BINARY_SHARE = 0.5  # cleaning removing more than this share of the characters: not text?
PIECE_BYTES = 1 << 22  # files are read, cleaned and tokenized in pieces of about this size
PARALLEL_MIN_BYTES = 1 << 23  # smaller corpora stay in this process (workers cost more)
ENCODE_PIECE_CHARS = 1 << 20  # a character tokenizer's pieces (its lookup takes 30 bytes a char)
BPE_PATTERN = "gpt2"  # the split `bpe.Tokenizer.train` uses by default


def file_name(role: str, version: str) -> str:
    """train.npy -> train.<version>.npy (and so on for each role)."""
    stem, dot, suffix = ROLES[role].partition(".")
    return f"{stem}.{version}{dot}{suffix}"


@dataclass
class Dataset:
    path: Path
    tokenizer: object
    train: np.ndarray
    val: np.ndarray
    meta: dict

    @classmethod
    def load(cls, path) -> Dataset:
        """The dataset in folder `path`, checked: dataset.json well-formed, every file it
        names present, every token id inside the tokenizer's vocabulary."""
        import bpe

        path = Path(path)
        meta_path = path / DATASET_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"dataset: {path} is not a prepared dataset (no "
                                    f"{DATASET_FILE}); make one with `python -m gpt prepare`")
        meta = _read_meta(meta_path)
        files = {role: path / name for role, name in meta["files"].items()}
        if not files["tokenizer"].is_file():
            raise FileNotFoundError(f"dataset: no tokenizer file at {files['tokenizer']} (named "
                                    f"by {meta_path}); run `python -m gpt prepare` again")
        tokenizer = bpe.load(files["tokenizer"])
        train, val = load_tokens(files["train"]), load_tokens(files["val"])
        for role in ("train", "val"):
            top = max_token(files[role])
            if top >= tokenizer.vocab_size:
                raise ValueError(f"dataset: {files[role]} holds token id {top}, outside the "
                                 f"vocabulary of {files['tokenizer']} ({tokenizer.vocab_size} "
                                 "tokens); prepare the dataset again")
        return cls(path, tokenizer, train, val, meta)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size


def is_dataset(path) -> bool:
    return (Path(path) / DATASET_FILE).is_file()


def _read_meta(meta_path: Path) -> dict:
    meta = read_json_object(meta_path)
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != set(ROLES):
        raise ConfigFileError(f"{meta_path}: key 'files' must map {', '.join(ROLES)} to file "
                              f"names, got {files!r}")
    for role, name in files.items():
        if not isinstance(name, str) or not _VERSIONED.fullmatch(name):
            raise ConfigFileError(f"{meta_path}: key 'files' -> {role!r} is not a dataset "
                                  f"file name: {name!r}")
    return meta


def read_documents(paths) -> list[str]:
    """One document per file, decoded as UTF-8 (undecodable bytes become U+FFFD, which
    cleaning removes and counts). A file holding NUL bytes is refused: it is binary."""
    return ["".join(piece for piece, _ in file_pieces(path)) for path in map(Path, paths)]


def file_pieces(path: Path) -> Iterator[tuple[str, int]]:
    """A file's text in pieces that end after a line end (the last may not), with their
    sizes in bytes, decoded as :func:`read_documents` says; memory stays that of a block
    (or of the longest line). An empty file is one empty piece."""
    _check_file(path)
    with open(path, "rb") as file:
        carry, pieces = b"", 0
        while block := file.read(PIECE_BYTES):
            _check_not_binary(path, block)
            data = carry + block
            cut = _last_line_end(data)
            carry = data[cut:]
            if cut:
                pieces += 1
                yield data[:cut].decode("utf-8", errors="replace"), cut
        if carry or not pieces:
            yield carry.decode("utf-8", errors="replace"), len(carry)


def _last_line_end(data: bytes) -> int:
    """Where a piece of ``data`` may end: after its last "\n", or after a later lone "\r"
    (not the last byte, which could start a "\r\n"); 0 if neither. Neither byte ever
    sits inside a UTF-8 sequence."""
    return max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1


def _check_file(path: Path) -> None:
    if not path.is_file():
        what = "a directory, not a text file" if path.is_dir() else "not found"
        raise FileNotFoundError(f"--data: {path} is {what}")
    with open(path, "rb") as file:
        if file.read(2) in (b"\xff\xfe", b"\xfe\xff"):  # never valid UTF-8
            raise ValueError(f"--data: {path} is UTF-16 or UTF-32 text (it starts with its "
                             "byte-order mark); convert it to UTF-8, e.g. with iconv -t UTF-8")


def _check_not_binary(path: Path, block: bytes) -> None:
    if b"\x00" in block:
        raise ValueError(f"--data: {path} is a binary file (it holds NUL bytes), not text")


def document_pieces(document: str | Path) -> Iterator[tuple[str, int]]:
    """A document (a text, or a Path to stream) in pieces, with their sizes."""
    if isinstance(document, Path):
        return file_pieces(document)
    return ((piece, len(piece)) for piece in pieces_of(document, PIECE_BYTES))


def check_tokenizer_spec(spec: str, vocab_size: int | None) -> None:
    """Refuse a tokenizer request that cannot work, before anything is read or written."""
    if spec == "bpe" and vocab_size is None:
        raise ValueError("--tokenizer bpe needs --vocab-size (e.g. 512; at least 256, "
                         "the byte alphabet)")
    if spec != "bpe" and vocab_size is not None:
        raise ValueError(f"--vocab-size is for --tokenizer bpe, not {spec!r} (a char "
                         "tokenizer's vocabulary is the text's characters, a saved one has "
                         "its own)")
    if spec not in TOKENIZER_KINDS and not Path(spec).is_file():
        raise FileNotFoundError(f"--tokenizer: {spec!r} is neither 'char', 'bpe' nor a saved "
                                "tokenizer file")


def make_tokenizer(spec: str, documents: Iterable, vocab_size: int | None = None,
                   workers: int = 1):
    """'char' (one token per distinct character of the documents joined by
    DOCUMENT_SEPARATOR), 'bpe' (byte-level BPE trained on the documents to `vocab_size`
    tokens) or the path of a saved tokenizer. A document is a str, or an iterable of
    the pieces of one, cut where the BPE split cannot change (each is trained on alone,
    which for such cuts is the same as training on the whole); `workers` processes."""
    import bpe

    check_tokenizer_spec(spec, vocab_size)
    documents = [[doc] if isinstance(doc, str) else doc for doc in documents]
    if spec == "char":
        alphabet = set(DOCUMENT_SEPARATOR) if len(documents) > 1 else set()
        for chars in ordered_map(set, chain.from_iterable(documents), workers):
            alphabet |= chars
        if not alphabet:
            raise ValueError("prepare: the cleaned text is empty; a character tokenizer "
                             "needs at least one character")
        return bpe.CharTokenizer(sorted(alphabet))
    if spec == "bpe":
        return bpe.Tokenizer.train(chain.from_iterable(documents), vocab_size=vocab_size,
                                   num_workers=workers)
    return bpe.load(spec)


def encode_documents(tokenizer, documents: list[str]) -> np.ndarray:
    """The token stream of the documents, joined by DOCUMENT_SEPARATOR (int64)."""
    return np.asarray(tokenizer.encode(DOCUMENT_SEPARATOR.join(documents)), dtype=np.int64)


def _fingerprint(documents: list, settings: dict) -> str:
    """A digest of the settings and every document's bytes; reading the files here also
    refuses a missing or binary one before anything is written."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for doc in documents:
        if isinstance(doc, Path):
            _check_file(doc)
            file_digest = hashlib.sha256()
            with open(doc, "rb") as file:
                while block := file.read(PIECE_BYTES):
                    _check_not_binary(doc, block)
                    file_digest.update(block)
            digest.update(file_digest.digest())
        else:
            digest.update(hashlib.sha256(doc.encode("utf-8", errors="surrogatepass")).digest())
    return digest.hexdigest()


def _size(document: str | Path) -> int:
    return document.stat().st_size if isinstance(document, Path) else len(document)


def prepare(out_dir, documents: Iterable[str | Path], sources: list[str],
            tokenizer: str = "char", vocab_size: int | None = None,
            cleaning: CleaningOptions | None = None, val_fraction: float = 0.1, log=print,
            workers: int | None = None, progress: bool = False) -> Dataset:
    """Clean, tokenize and split `documents` into a dataset folder (see the module doc).

    A document is a text (str) or a UTF-8 file (a Path), which is streamed: memory stays
    bounded however large the corpus (see :mod:`gpt.data.cleaning`). Corpora of more than
    PARALLEL_MIN_BYTES are cleaned and tokenized on `workers` processes (None: every
    core); `progress` draws a bar with the speed on stderr.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"prepare: val_fraction must be in [0, 1), got {val_fraction}")
    check_tokenizer_spec(tokenizer, vocab_size)
    cleaning = cleaning or CleaningOptions()
    documents = list(documents)
    for path in documents:
        if isinstance(path, Path):
            _check_file(path)
    total_bytes = sum(map(_size, documents))
    workers = resolve_workers(workers) if total_bytes >= PARALLEL_MIN_BYTES else 1
    out_dir = Path(out_dir)
    settings = {"tokenizer": tokenizer, "vocab_size": vocab_size, "cleaning": asdict(cleaning),
                "val_fraction": val_fraction}
    if tokenizer not in TOKENIZER_KINDS:
        settings["tokenizer_sha256"] = hashlib.sha256(Path(tokenizer).read_bytes()).hexdigest()
    fingerprint = _fingerprint(documents, settings)
    created = not out_dir.exists()
    job = _Job(out_dir, documents, sources, tokenizer, vocab_size, cleaning, val_fraction, log,
               settings, fingerprint, workers, progress, total_bytes)
    try:
        return job.run()
    except BaseException:
        if created:  # a failed first preparation leaves no folder behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


@dataclass
class _Job:
    out_dir: Path
    documents: list
    sources: list
    tokenizer: str
    vocab_size: int | None
    cleaning: CleaningOptions
    val_fraction: float
    log: Callable
    settings: dict
    fingerprint: str
    workers: int
    progress: bool
    total_bytes: int

    def run(self) -> Dataset:
        out_dir = self.out_dir
        with FolderLock(out_dir, "dataset folder"):
            atomic.remove_stale_temporaries(out_dir)
            if is_dataset(out_dir):
                cached = Dataset.load(out_dir)
                if cached.meta.get("fingerprint") == self.fingerprint:
                    self.log(f"prepare: {out_dir} already holds these tokens; not tokenizing "
                             "again")
                    _remove_other_versions(out_dir, cached.meta["files"])
                    return cached
            started = time.perf_counter()
            # the scratch files' writes (a full disk) are named by the folder
            with atomic.file_named(out_dir, " while preparing the dataset; its previous "
                                   "contents, if any, are kept"), \
                    atomic.scratch_file(out_dir, "corpus") as corpus, \
                    atomic.scratch_file(out_dir, "ids") as ids_file:
                report, spans = self._clean(Path(corpus))
                tok = make_tokenizer(self.tokenizer, self._corpus_documents(corpus, spans),
                                     self.vocab_size, self.workers)
                count = self._encode(tok, Path(corpus), Path(ids_file))
                meta = self._commit(tok, Path(ids_file), count, report)
            seconds = max(time.perf_counter() - started, 1e-9)
        megabytes = self.total_bytes / 1e6
        self.log(f"prepare: {count:,} tokens ({meta['token_dtype']}, vocabulary "
                 f"{tok.vocab_size:,}): {meta['train_tokens']:,} train, {meta['val_tokens']:,} "
                 f"val -> {out_dir}; {megabytes:,.1f} MB in {seconds:.1f}s "
                 f"({megabytes / seconds:.2f} MB/s, {self.workers} "
                 f"worker{'s' if self.workers > 1 else ''})")
        return Dataset.load(out_dir)

    def _bar(self, label: str, total_bytes: int) -> ProgressBar | None:
        if not self.progress:
            return None
        return ProgressBar(total=max(round(total_bytes / 1e6), 1), label=f"prepare: {label}",
                           unit="MB", interval=0.5)

    def _clean(self, corpus: Path) -> tuple[CleaningReport, array]:
        """Clean the documents into `corpus`, joined by DOCUMENT_SEPARATOR; returns the
        report and the byte span (start, end) of each document kept."""
        items = ((index, *piece) for index, doc in enumerate(self.documents)
                 for piece in document_pieces(doc))
        cleaner = CorpusCleaner(self.cleaning)
        spans = array("q")
        bar, done, started = self._bar("cleaning", self.total_bytes), 0, time.perf_counter()
        with open(corpus, "wb") as out:
            document, current, start = None, None, 0

            def finish() -> None:
                if document.finish():
                    spans.extend((text_start, out.tell()))
                else:  # take back what it wrote (and its separator)
                    out.seek(start)
                    out.truncate()

            for index, size, piece in ordered_map(partial(_clean_item, options=self.cleaning),
                                                  items, self.workers):
                if index != current:
                    if document is not None:
                        finish()
                    document, current, start = cleaner.document(), index, out.tell()
                    out.write(DOCUMENT_SEPARATOR.encode() if spans else b"")
                    text_start = out.tell()
                out.write(document.add(piece).encode("utf-8"))
                done += size
                _show(bar, done, started)
            if document is not None:
                finish()
        if bar:
            bar.close()
        self._check_cleaned(cleaner.report)
        return cleaner.report, spans

    def _check_cleaned(self, report: CleaningReport) -> None:
        self.log(report.format())
        sources = ", ".join(self.sources)
        if not report.documents_out:
            raise ValueError(f"prepare: no text left after cleaning {sources} (empty input, "
                             "or every document filtered out)")
        if report.chars_in - report.chars_out > BINARY_SHARE * report.chars_in:
            self.log(f"prepare: WARNING: cleaning removed "
                     f"{1 - report.chars_out / report.chars_in:.0%} of the characters of "
                     f"{sources}: is this really text?")

    @staticmethod
    def _corpus_documents(corpus, spans: array) -> Iterator[Iterator[str]]:
        """Each kept document of the cleaned corpus, in pieces cut where the BPE split
        cannot change."""
        from bpe import SplitPattern
        from bpe.training import read_stream

        pattern = SplitPattern.resolve(BPE_PATTERN)
        for start, end in zip(spans[::2], spans[1::2]):
            yield read_stream(_text_range(corpus, start, end), pattern)

    def _encode(self, tok, corpus: Path, ids_file: Path) -> int:
        """Tokenize the cleaned corpus into `ids_file` (raw ids); returns how many."""
        import bpe
        from bpe.special_tokens import SpecialTokens
        from bpe.training import read_stream

        total = corpus.stat().st_size
        sizes: deque[int] = deque()  # bytes of the pieces in flight

        def measured(pieces: Iterable[str]) -> Iterator[str]:
            for piece in pieces:
                sizes.append(len(piece.encode("utf-8")))
                yield piece

        text = _text_range(corpus, 0, total)
        if isinstance(tok, bpe.CharTokenizer):  # any cut is safe
            pieces = measured(iter(lambda: text.read(ENCODE_PIECE_CHARS), ""))
            arrays = ordered_map(tok.encode_array, pieces, self.workers)
        else:
            specials = SpecialTokens(tok.special_tokens)
            pieces = measured(read_stream(text, tok.pattern, specials))
            arrays = tok.encode_pieces(pieces, num_workers=self.workers)
        bar, done, started = self._bar("tokenizing", total), 0, time.perf_counter()
        count, dtype = 0, id_dtype(tok.vocab_size)
        with open(ids_file, "wb") as out:
            for ids in arrays:
                out.write(ids.astype(dtype, copy=False).tobytes())
                count += len(ids)
                done += sizes.popleft()
                _show(bar, done, started)
        if bar:
            bar.close()
        return count

    def _commit(self, tok, ids_file: Path, count: int, report: CleaningReport) -> dict:
        """Write the token and tokenizer files under a new version, then dataset.json,
        which names them: the one step that switches the folder to the new dataset."""
        out_dir = self.out_dir
        n_val = int(count * self.val_fraction)
        version = uuid.uuid4().hex
        files = {role: file_name(role, version) for role in ROLES}
        save_token_range(out_dir / files["train"], ids_file, 0, count - n_val, tok.vocab_size)
        save_token_range(out_dir / files["val"], ids_file, count - n_val, n_val, tok.vocab_size)
        tok.save(out_dir / files["tokenizer"])
        meta = {"fingerprint": self.fingerprint, "files": files, "sources": list(self.sources),
                **self.settings, "tokenizer_vocab_size": tok.vocab_size,
                "token_dtype": id_dtype(tok.vocab_size).name,
                "train_tokens": count - n_val, "val_tokens": n_val,
                "cleaning_report": report.to_dict()}
        atomic.write_json(out_dir / DATASET_FILE, meta)  # the commit
        _remove_other_versions(out_dir, files)
        return meta


def _clean_item(item: tuple[int, str, int], options: CleaningOptions
                ) -> tuple[int, int, CleanPiece]:
    """(document index, piece, its size) -> (index, size, the piece cleaned); run by workers."""
    index, piece, size = item
    return index, size, clean_piece(piece, options)


def _show(bar: ProgressBar | None, done_bytes: int, started: float) -> None:
    if bar is not None:
        seconds = max(time.perf_counter() - started, 1e-9)
        bar.update(min(round(done_bytes / 1e6), bar.total), **{"MB/s": done_bytes / 1e6 / seconds})


class _ByteRange(io.RawIOBase):
    """Bytes [start, end) of a file, as a readable raw stream."""

    def __init__(self, path, start: int, end: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 (closed with this stream)
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


def _text_range(path, start: int, end: int) -> io.TextIOWrapper:
    """Bytes [start, end) of a UTF-8 file as text, line endings as they are."""
    return io.TextIOWrapper(io.BufferedReader(_ByteRange(path, start, end)), encoding="utf-8",
                            newline="")


def _remove_other_versions(out_dir: Path, current: dict) -> None:
    """Delete the dataset files of earlier (or killed) preparations."""
    for entry in sorted(out_dir.iterdir()):
        if _VERSIONED.fullmatch(entry.name) and entry.name not in current.values():
            atomic.remove(entry)
