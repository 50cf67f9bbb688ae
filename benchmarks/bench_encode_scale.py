"""`bpe encode` at scale: peak memory and MB/s on a generated corpus of --megabytes.

The corpus is Python's bundled documentation (pydoc topics) repeated with numbered lines
until it reaches the size, written to a temporary folder (never committed). A byte-level
BPE tokenizer (--vocab-size, gpt2 pattern) is trained on the first megabyte. Then, each in
a fresh interpreter that reports its own peak RSS: `python -m bpe encode FILE -o OUT`
(streams the file piece by piece) and, up to --whole-max-mb, the same text through stdin,
which reads it whole (the path every input took before). Worker peak RSS is not counted.

    python -m benchmarks encode-scale [--megabytes 1000] [--whole-max-mb 200] [--out P]

Writes benchmarks/results/encode_scale.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import print_table, write_report

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = REPO_ROOT / "benchmarks" / "results" / "encode_scale.json"
_CHILD = f"""
import json, resource, runpy, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
sys.argv = ["bpe", *sys.argv[1:]]
try:
    runpy.run_module("bpe", run_name="__main__")
except SystemExit as exit:
    code = exit.code
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"code": code, "peak_rss_mb": peak}}), file=sys.stderr)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1000.0)
    parser.add_argument("--whole-max-mb", type=float, default=200.0)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpus = scratch / "corpus.txt"
        megabytes = _write_corpus(corpus, args.megabytes)
        tokenizer = scratch / "tok.json"
        _train(corpus, tokenizer, args.vocab_size)
        rows = [_run(["encode", "-t", str(tokenizer), str(corpus), "-o",
                      str(scratch / "ids.txt")], None, megabytes, "streamed (file)")]
        if megabytes <= args.whole_max_mb:
            with open(corpus, "rb") as stdin:
                rows.append(_run(["encode", "-t", str(tokenizer), "-o",
                                  str(scratch / "ids2.txt")], stdin, megabytes, "whole (stdin)"))
            same = (scratch / "ids.txt").read_bytes() == (scratch / "ids2.txt").read_bytes()
            rows[-1]["same_ids"] = same
    report = {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "megabytes": megabytes,
              "vocab_size": args.vocab_size, "runs": rows}
    print_table(["bpe encode", "MB", "seconds", "MB/s", "peak RSS MB"],
                [[r["mode"], f"{megabytes:.0f}", f"{r['seconds']:.1f}",
                  f"{r['mb_per_s']:.2f}", f"{r['peak_rss_mb']:.0f}"] for r in rows])
    write_report(args.out, report)
    return 0


def _write_corpus(path: Path, megabytes: float) -> float:
    sys.path.insert(0, str(REPO_ROOT))
    from bpe.corpus import builtin_corpus

    lines = builtin_corpus().splitlines(keepends=True)
    target, written, copy = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            block = "".join(f"{copy}.{i} {line}" for i, line in enumerate(lines))
            f.write(block)
            written += len(block.encode("utf-8"))
            copy += 1
    return written / 1e6


def _train(corpus: Path, output: Path, vocab_size: int) -> None:
    with open(corpus, encoding="utf-8") as f:
        sample = f.read(1_000_000)
    sys.path.insert(0, str(REPO_ROOT))
    from bpe import Tokenizer

    Tokenizer.train([sample], vocab_size=vocab_size, pattern="gpt2").save(output)


def _run(argv: list[str], stdin, megabytes: float, mode: str) -> dict:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", _CHILD, *argv], stdin=stdin,
                               capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    child = json.loads(completed.stderr.strip().splitlines()[-1])
    row = {"mode": mode, "seconds": seconds, "mb_per_s": megabytes / seconds, **child}
    print(f"{mode}: {seconds:.1f}s, {row['mb_per_s']:.2f} MB/s, peak RSS "
          f"{row['peak_rss_mb']:.0f} MB", flush=True)
    return row
