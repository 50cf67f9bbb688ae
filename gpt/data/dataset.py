"""Prepared datasets: text files cleaned, tokenized once, split into train and validation
token files, with the tokenizer and a record of how they were made.

A dataset folder holds:

    dataset.json    sources, cleaning report, tokenizer kind, token counts, fingerprint
    tokenizer.json  the tokenizer (bpe.load reads it back)
    train.npy       training tokens (smallest unsigned dtype, memory-mapped on load)
    val.npy         validation tokens: the last `val_fraction` of the token stream

`prepare` skips the work when the folder already holds the same inputs prepared the
same way (same fingerprint), so a corpus is tokenized once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gpt.data.cleaning import CleaningOptions, clean_documents
from gpt.data.token_cache import load_tokens, save_tokens, smallest_uint_dtype

META_FILE = "dataset.json"
TOKENIZER_FILE = "tokenizer.json"
DOCUMENT_SEPARATOR = "\n\n"
TOKENIZER_KINDS = ("char", "bpe")


@dataclass
class Dataset:
    path: Path
    tokenizer: object
    train: np.ndarray
    val: np.ndarray
    meta: dict

    @classmethod
    def load(cls, path) -> Dataset:
        import bpe

        path = Path(path)
        if not (path / META_FILE).is_file():
            raise FileNotFoundError(f"dataset: {path} is not a prepared dataset (no "
                                    f"{META_FILE}); make one with `python -m gpt prepare`")
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        return cls(path, bpe.load(path / TOKENIZER_FILE), load_tokens(path / "train.npy"),
                   load_tokens(path / "val.npy"), meta)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size


def is_dataset(path) -> bool:
    return (Path(path) / META_FILE).is_file()


def read_documents(paths) -> list[str]:
    """One document per file, decoded as UTF-8 (undecodable bytes become U+FFFD, which
    cleaning removes and counts)."""
    documents = []
    for path in map(Path, paths):
        if not path.is_file():
            what = "a directory, not a text file" if path.is_dir() else "not found"
            raise FileNotFoundError(f"--data: {path} is {what}")
        documents.append(path.read_bytes().decode("utf-8", errors="replace"))
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
    if is_dataset(out_dir):
        cached = Dataset.load(out_dir)
        if cached.meta.get("fingerprint") == fingerprint:
            log(f"prepare: {out_dir} already holds these tokens; not tokenizing again")
            return cached

    docs, report = clean_documents(documents, cleaning)
    log(report.format())
    if not docs:
        raise ValueError(f"prepare: no text left after cleaning {', '.join(sources)} "
                         "(empty input, or every document filtered out)")
    tok = make_tokenizer(tokenizer, docs, vocab_size)
    ids = encode_documents(tok, docs)
    n_val = int(len(ids) * val_fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_tokens(out_dir / "train.npy", ids[:len(ids) - n_val], tok.vocab_size)
    save_tokens(out_dir / "val.npy", ids[len(ids) - n_val:], tok.vocab_size)
    tok.save(out_dir / TOKENIZER_FILE)
    meta = {"fingerprint": fingerprint, "sources": list(sources), **settings,
            "tokenizer_vocab_size": tok.vocab_size,
            "token_dtype": smallest_uint_dtype(tok.vocab_size).name,
            "train_tokens": len(ids) - n_val, "val_tokens": n_val,
            "cleaning_report": report.to_dict()}
    # Written last and atomically: its presence marks a complete dataset.
    tmp = out_dir / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / META_FILE)
    log(f"prepare: {len(ids):,} tokens ({meta['token_dtype']}, vocabulary "
        f"{tok.vocab_size:,}): {meta['train_tokens']:,} train, {n_val:,} val -> {out_dir}")
    return Dataset.load(out_dir)
