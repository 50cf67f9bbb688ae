"""Prepared datasets: text files cleaned, tokenized once, split into train and validation
token files, with the tokenizer and a record of how they were made (the folder's files
are listed in `gpt.files`; the val tokens are the last `val_fraction` of the stream).

`prepare` skips the work when the folder already holds the same inputs prepared the
same way (same fingerprint), so a corpus is tokenized once.

A folder commits atomically: the token and tokenizer files of a preparation carry its
own id in their names (train.<id>.npy, ...), so writing them leaves the previous dataset
untouched; replacing dataset.json, which names them, is the one step that switches to
the new dataset. The previous version's files go after that (or, if a kill came first,
at the next `prepare`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bpe import id_dtype
from gpt.data.cleaning import CleaningOptions, clean_documents
from gpt.data.token_cache import load_tokens, save_tokens
from gpt.files import DATASET_FILE, TOKENIZER_FILE, TRAIN_TOKENS_FILE, VAL_TOKENS_FILE
from gpt.lock import FolderLock
from gpt.validation import ConfigFileError, read_json_object
from minigrad.io import atomic

DOCUMENT_SEPARATOR = "\n\n"
TOKENIZER_KINDS = ("char", "bpe")
# dataset.json's "files": role -> the base name that file_name() versions
ROLES = {"train": TRAIN_TOKENS_FILE, "val": VAL_TOKENS_FILE, "tokenizer": TOKENIZER_FILE}
_VERSIONED = re.compile(r"(train|val|tokenizer)\.[0-9a-f]{32}\.(npy|json)")
BINARY_SHARE = 0.5  # cleaning removing more than this share of the characters: not text?


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
        tokenizer = bpe.load(files["tokenizer"])
        train, val = load_tokens(files["train"]), load_tokens(files["val"])
        for role, tokens in (("train", train), ("val", val)):
            top = int(tokens.max()) if len(tokens) else -1
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
    documents = []
    for path in map(Path, paths):
        if not path.is_file():
            what = "a directory, not a text file" if path.is_dir() else "not found"
            raise FileNotFoundError(f"--data: {path} is {what}")
        data = path.read_bytes()
        if b"\x00" in data:
            raise ValueError(f"--data: {path} is a binary file (it holds NUL bytes), not text")
        documents.append(data.decode("utf-8", errors="replace"))
    return documents


def make_tokenizer(spec: str, documents: list[str], vocab_size: int | None = None):
    """'char' (one token per distinct character of the documents), 'bpe' (byte-level BPE
    trained on the documents to `vocab_size` tokens) or the path of a saved tokenizer."""
    import bpe

    if spec == "char":
        return bpe.CharTokenizer.from_text(DOCUMENT_SEPARATOR.join(documents))
    if spec == "bpe":
        if vocab_size is None:
            raise ValueError("--tokenizer bpe needs --vocab-size (e.g. 512; at least 256, "
                             "the byte alphabet)")
        return bpe.Tokenizer.train(documents, vocab_size=vocab_size)
    if not Path(spec).is_file():
        raise FileNotFoundError(f"--tokenizer: {spec!r} is neither 'char', 'bpe' nor a saved "
                                "tokenizer file")
    return bpe.load(spec)


def encode_documents(tokenizer, documents: list[str]) -> np.ndarray:
    """The token stream of the documents, joined by DOCUMENT_SEPARATOR (int64)."""
    return np.asarray(tokenizer.encode(DOCUMENT_SEPARATOR.join(documents)), dtype=np.int64)


def _fingerprint(documents: list[str], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for doc in documents:
        digest.update(hashlib.sha256(doc.encode("utf-8", errors="surrogatepass")).digest())
    return digest.hexdigest()


def prepare(out_dir, documents: list[str], sources: list[str], tokenizer: str = "char",
            vocab_size: int | None = None, cleaning: CleaningOptions | None = None,
            val_fraction: float = 0.1, log=print) -> Dataset:
    """Clean, tokenize and split `documents` into a dataset folder (see the module doc)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"prepare: val_fraction must be in [0, 1), got {val_fraction}")
    cleaning = cleaning or CleaningOptions()
    out_dir = Path(out_dir)
    settings = {"tokenizer": tokenizer, "vocab_size": vocab_size, "cleaning": asdict(cleaning),
                "val_fraction": val_fraction}
    if tokenizer not in TOKENIZER_KINDS and Path(tokenizer).is_file():
        settings["tokenizer_sha256"] = hashlib.sha256(Path(tokenizer).read_bytes()).hexdigest()
    fingerprint = _fingerprint(documents, settings)
    created = not out_dir.exists()
    try:
        return _prepare_locked(out_dir, documents, sources, tokenizer, vocab_size, cleaning,
                               val_fraction, log, settings, fingerprint)
    except BaseException:
        if created:  # a failed first preparation leaves no folder behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _prepare_locked(out_dir: Path, documents, sources, tokenizer, vocab_size, cleaning,
                    val_fraction, log, settings, fingerprint) -> Dataset:
    with FolderLock(out_dir, "dataset folder"):
        atomic.remove_stale_temporaries(out_dir)
        if is_dataset(out_dir):
            cached = Dataset.load(out_dir)
            if cached.meta.get("fingerprint") == fingerprint:
                log(f"prepare: {out_dir} already holds these tokens; not tokenizing again")
                _remove_other_versions(out_dir, cached.meta["files"])
                return cached
        docs, report = clean_documents(documents, cleaning)
        log(report.format())
        if not docs:
            raise ValueError(f"prepare: no text left after cleaning {', '.join(sources)} "
                             "(empty input, or every document filtered out)")
        if report.chars_in - report.chars_out > BINARY_SHARE * report.chars_in:
            log(f"prepare: WARNING: cleaning removed "
                f"{1 - report.chars_out / report.chars_in:.0%} of the characters of "
                f"{', '.join(sources)}: is this really text?")
        tok = make_tokenizer(tokenizer, docs, vocab_size)
        ids = encode_documents(tok, docs)
        n_val = int(len(ids) * val_fraction)
        version = uuid.uuid4().hex
        files = {role: file_name(role, version) for role in ROLES}
        save_tokens(out_dir / files["train"], ids[:len(ids) - n_val], tok.vocab_size)
        save_tokens(out_dir / files["val"], ids[len(ids) - n_val:], tok.vocab_size)
        tok.save(out_dir / files["tokenizer"])
        meta = {"fingerprint": fingerprint, "files": files, "sources": list(sources),
                **settings, "tokenizer_vocab_size": tok.vocab_size,
                "token_dtype": id_dtype(tok.vocab_size).name,
                "train_tokens": len(ids) - n_val, "val_tokens": n_val,
                "cleaning_report": report.to_dict()}
        atomic.write_json(out_dir / DATASET_FILE, meta)  # the commit: it names the new files
        _remove_other_versions(out_dir, files)
    log(f"prepare: {len(ids):,} tokens ({meta['token_dtype']}, vocabulary "
        f"{tok.vocab_size:,}): {meta['train_tokens']:,} train, {n_val:,} val -> {out_dir}")
    return Dataset.load(out_dir)


def _remove_other_versions(out_dir: Path, current: dict) -> None:
    """Delete the dataset files of earlier (or killed) preparations."""
    for entry in sorted(out_dir.iterdir()):
        if _VERSIONED.fullmatch(entry.name) and entry.name not in current.values():
            atomic.remove(entry)
