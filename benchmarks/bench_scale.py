"""`gpt prepare` and `bpe encode` at scale: peak memory and MB/s on a generated corpus.

The corpus is Python's bundled documentation (pydoc topics) repeated with numbered lines
(so no line repeats) until it reaches --megabytes, written to a temporary folder (never
committed). Each command runs in a fresh interpreter that reports its own peak RSS and the
largest of its worker processes' (``RUSAGE_CHILDREN``):

- `python -m gpt prepare --data FILE` (the CLI's defaults: NFC cleaning, line dedup,
  character tokenizer), with --workers;
- `python -m bpe encode -t TOK FILE -o OUT` with a byte-level BPE tokenizer (--vocab-size,
  gpt2 pattern) trained on the corpus's first megabyte, with --workers; and, up to
  --stdin-max-mb, the same text through stdin (also streamed), checked for identical ids.

    python -m benchmarks scale [--megabytes 1000] [--workers N] [--stdin-max-mb 100] [--out P]

Writes benchmarks/results/scale.json.
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
RESULTS_PATH = REPO_ROOT / "benchmarks" / "results" / "scale.json"
_CHILD = f"""
import json, resource, runpy, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
try:
    runpy.run_module(module, run_name="__main__")
except SystemExit as exit:
    code = exit.code
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({{"code": code, "peak_rss_mb": own, "worker_peak_rss_mb": workers}}),
      file=sys.stderr)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1000.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--stdin-max-mb", type=float, default=100.0)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--skip", nargs="*", default=[], choices=["prepare", "encode"])
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    workers = ["--workers", str(args.workers)]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpus = scratch / "corpus.txt"
        megabytes = _write_corpus(corpus, args.megabytes)
        if "prepare" not in args.skip:
            rows.append(_run(["gpt", "prepare", "--data", str(corpus), "--out",
                              str(scratch / "dataset"), "--no-progress", *workers], None,
                             megabytes, "gpt prepare (file)"))
        if "encode" not in args.skip:
            tokenizer = scratch / "tok.json"
            _train(corpus, tokenizer, args.vocab_size)
            encode = ["bpe", "encode", "-t", str(tokenizer), *workers]
            rows.append(_run([*encode, str(corpus), "-o", str(scratch / "ids.txt")], None,
                             megabytes, "bpe encode (file)"))
            if megabytes <= args.stdin_max_mb:
                with open(corpus, "rb") as stdin:
                    rows.append(_run([*encode, "-o", str(scratch / "ids2.txt")], stdin,
                                     megabytes, "bpe encode (stdin)"))
                same = (scratch / "ids.txt").read_bytes() == (scratch / "ids2.txt").read_bytes()
                rows[-1]["same_ids_as_file"] = same
    report = {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "megabytes": megabytes,
              "workers": args.workers, "vocab_size": args.vocab_size, "runs": rows}
    print_table(["command", "MB", "workers", "seconds", "MB/s", "peak RSS MB",
                 "largest worker MB"],
                [[r["mode"], f"{megabytes:.0f}", str(args.workers), f"{r['seconds']:.1f}",
                  f"{r['mb_per_s']:.2f}", f"{r['peak_rss_mb']:.0f}",
                  f"{r['worker_peak_rss_mb']:.0f}"] for r in rows])
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
                               capture_output=True, text=True)
    seconds = time.perf_counter() - started
    lines = completed.stderr.strip().splitlines()
    child = json.loads(lines[-1])
    if child["code"] not in (0, None):
        raise RuntimeError(f"{mode} failed:\n{completed.stderr[-2000:]}")
    row = {"mode": mode, "seconds": seconds, "mb_per_s": megabytes / seconds, **child,
           "output_tail": (completed.stdout.strip().splitlines() or [""])[-1],
           "log_tail": lines[-2] if len(lines) > 1 else ""}
    print(f"{mode}: {seconds:.1f}s, {row['mb_per_s']:.2f} MB/s, peak RSS "
          f"{row['peak_rss_mb']:.0f} MB (largest worker {row['worker_peak_rss_mb']:.0f} MB)",
          flush=True)
    return row
