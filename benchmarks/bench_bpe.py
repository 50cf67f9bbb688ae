"""Tokenizer benchmark: our byte-level BPE against Hugging Face tokenizers and tiktoken.

- Training wall time at each vocabulary size, ours (``Tokenizer.train_from_files``) against
  Hugging Face's byte-level ``BpeTrainer`` (``Tokenizer.train`` on the same file), and the
  peak resident memory of each. Every training runs in a fresh interpreter (imports not
  timed), alternating between the two, so neither inherits the other's caches or memory.
- Encoding speed with the vocabulary we trained (largest size): ours ``encode_ordinary`` with
  a fresh tokenizer (cold chunk cache) and again (warm), against tiktoken's single-threaded
  ``encode_ordinary`` over the same ranks and pattern; batch encoding on all cores (ours
  ``encode_batch``, tiktoken ``encode_ordinary_batch``) over the same list of pieces.
- Decoding speed, ours against tiktoken.
- A check that our trainer (``tie_break="huggingface"``) learns exactly Hugging Face's merges
  when both read the file line by line (as Hugging Face's ``train`` does).

Speeds are the median over rounds; the ids are checked to be identical. CPU seconds are
recorded too (training: the process, its threads and its workers; coding: this process for
the single-threaded runs), since on a shared, busy machine wall time includes waiting.

    python -m benchmarks bpe [--corpus PATH] [--vocab-sizes 8192 32768] [--rounds 3] [--out P]

Uses ../shared/data/shakespeare.txt when present, else Python's bundled pydoc topics.
Prints a table and writes benchmarks/results/bpe.json.
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
from pathlib import Path

from benchmarks.timing import Samples, Timing, print_table, timed, write_report

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "data" / "shakespeare.txt"
RESULTS_PATH = REPO_ROOT / "benchmarks" / "results" / "bpe.json"

_CHILD_PRELUDE = f"""
import json, resource, sys, time
sys.path.insert(0, {str(REPO_ROOT)!r})
path, vocab_size, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def cpu_seconds():
    # This process (all its threads) and its finished worker processes.
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
"""
_CHILD_REPORT = """
print(json.dumps({
    "seconds": seconds,
    "cpu_seconds": cpu,
    "vocab_size": vocab_size,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "peak_worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""
TRAIN_OURS = _CHILD_PRELUDE + """
from bpe import Tokenizer
started, cpu = time.perf_counter(), cpu_seconds()
tokenizer = Tokenizer.train_from_files([path], vocab_size=vocab_size, pattern="gpt2")
seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
tokenizer.save(output)
vocab_size = tokenizer.vocab_size
""" + _CHILD_REPORT
TRAIN_HUGGINGFACE = _CHILD_PRELUDE + """
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
started, cpu = time.perf_counter(), cpu_seconds()
tokenizer.train([path], trainer)
seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
vocab_size = tokenizer.get_vocab_size()
""" + _CHILD_REPORT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None, help="UTF-8 text file")
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        corpus_path, corpus_name = _corpus(args.corpus, Path(scratch))
        text = corpus_path.read_bytes().decode("utf-8")
        print(f"corpus: {corpus_name}, {len(text.encode()) / 1e6:.2f} MB; "
              f"{os.cpu_count()} cores; {args.rounds} rounds", flush=True)
        training = [_bench_training(corpus_path, size, args.rounds, Path(scratch))
                    for size in args.vocab_sizes]
        largest = Path(scratch) / f"ours-{max(args.vocab_sizes)}.json"
        coding = _bench_coding(largest, text, args.rounds)
        parity = _huggingface_parity(corpus_path, max(args.vocab_sizes))
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "corpus": {"name": corpus_name, "megabytes": len(text.encode()) / 1e6},
        "training": training,
        "huggingface_parity": parity,
        "coding": coding,
    }
    _print_table(results)
    write_report(args.out, results)
    return 0


def _corpus(requested: Path | None, scratch: Path) -> tuple[Path, str]:
    if requested is not None:
        return requested, requested.name
    if SHARED_CORPUS.is_file():
        return SHARED_CORPUS, SHARED_CORPUS.name
    sys.path.insert(0, str(REPO_ROOT))
    from bpe.corpus import builtin_corpus

    path = scratch / "pydoc_topics.txt"
    path.write_text(builtin_corpus(), encoding="utf-8")
    return path, "pydoc_data.topics (built-in)"


def _run_child(script: str, corpus: Path, vocab_size: int, output: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", script, str(corpus), str(vocab_size), str(output)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _median(runs: list[dict]) -> tuple[float, float]:
    """Median wall and CPU seconds of the training runs (a child reports its own, CPU time
    of its workers included)."""
    median = Samples([Timing(run["seconds"], run["cpu_seconds"]) for run in runs]).median()
    return median.wall, median.cpu


def _bench_training(corpus: Path, vocab_size: int, rounds: int, scratch: Path) -> dict:
    ours, theirs = [], []
    output = scratch / f"ours-{vocab_size}.json"
    for _ in range(rounds):
        ours.append(_run_child(TRAIN_OURS, corpus, vocab_size, output))
        theirs.append(_run_child(TRAIN_HUGGINGFACE, corpus, vocab_size, output))
    ours_seconds, ours_cpu = _median(ours)
    theirs_seconds, theirs_cpu = _median(theirs)
    print(f"trained vocab {vocab_size}: ours {ours_seconds:.2f}s (CPU {ours_cpu:.2f}s), "
          f"Hugging Face {theirs_seconds:.2f}s (CPU {theirs_cpu:.2f}s)", flush=True)
    return {
        "vocab_size": vocab_size,
        "ours_seconds": ours_seconds,
        "huggingface_seconds": theirs_seconds,
        "ours_over_huggingface": ours_seconds / theirs_seconds,
        "ours_cpu_seconds": ours_cpu,
        "huggingface_cpu_seconds": theirs_cpu,
        "ours_peak_rss_mb": max(run["peak_rss_mb"] for run in ours),
        "ours_peak_worker_rss_mb": max(run["peak_worker_rss_mb"] for run in ours),
        "huggingface_peak_rss_mb": max(run["peak_rss_mb"] for run in theirs),
        "ours_vocab_size": ours[0]["vocab_size"],
        "runs": {"ours": ours, "huggingface": theirs},
    }


def _huggingface_parity(corpus: Path, vocab_size: int) -> dict:
    """Whether our merges equal Hugging Face's when both see the file's lines as texts."""
    import json as json_module

    from tokenizers import Tokenizer as HfTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    from bpe import Tokenizer
    from bpe.files import bytes_to_chars

    theirs = HfTokenizer(models.BPE())
    theirs.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    theirs.train([str(corpus)], trainers.BpeTrainer(
        vocab_size=vocab_size, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    their_merges = [tuple(pair) for pair in
                    json_module.loads(theirs.to_str())["model"]["merges"]]
    parts = corpus.read_bytes().decode("utf-8").split("\n")  # lines as Hugging Face reads them
    lines = [line + "\n" for line in parts[:-1]] + [parts[-1]]
    ours = Tokenizer.train(lines, vocab_size=vocab_size, tie_break="huggingface")
    token_bytes = {token: data for data, token in ours.mergeable_ranks.items()}
    our_merges = [(bytes_to_chars(token_bytes[left]), bytes_to_chars(token_bytes[right]))
                  for left, right in ours.merges]
    identical = our_merges == their_merges
    print(f"merges identical to Hugging Face's ({len(their_merges)} merges, lines as texts): "
          f"{identical}", flush=True)
    return {"vocab_size": vocab_size, "merges": len(their_merges), "identical": identical}


def _bench_coding(tokenizer_path: Path, text: str, rounds: int) -> dict:
    import tiktoken

    from bpe import Tokenizer

    megabytes = len(text.encode()) / 1e6
    reference = Tokenizer.load(tokenizer_path)
    encoding = tiktoken.Encoding("bench", pat_str=reference.pattern.source,
                                 mergeable_ranks=reference.mergeable_ranks, special_tokens={})
    pieces = reference.pattern.cut(text, 1 << 18)
    workers = os.cpu_count() or 1
    samples = {name: Samples() for name in (
        "ours_cold", "ours_warm", "tiktoken", "ours_batch", "tiktoken_batch",
        "ours_decode", "tiktoken_decode")}

    def timed_as(name, function, *args, **kwargs):
        timing, result = timed(function, *args, **kwargs)
        samples[name].rounds.append(timing)
        return result

    for _ in range(rounds):
        fresh = Tokenizer.load(tokenizer_path)
        ids = timed_as("ours_cold", fresh.encode_ordinary, text)
        warm_ids = timed_as("ours_warm", fresh.encode_ordinary, text)
        their_ids = timed_as("tiktoken", encoding.encode_ordinary, text)
        assert ids == warm_ids == their_ids, "ours and tiktoken disagree"
        fresh = Tokenizer.load(tokenizer_path)
        batch = timed_as("ours_batch", fresh.encode_batch, pieces, num_workers=workers)
        their_batch = timed_as("tiktoken_batch", encoding.encode_ordinary_batch, pieces,
                            num_threads=workers)
        assert batch == their_batch, "batch results disagree"
        decoded = timed_as("ours_decode", fresh.decode, ids)
        their_decoded = timed_as("tiktoken_decode", encoding.decode, ids)
        assert decoded == their_decoded == text
    speeds = {name: megabytes / times.median().wall for name, times in samples.items()}
    # CPU speeds only for the single-threaded runs (batch work happens in other processes).
    cpu_speeds = {name: megabytes / times.median().cpu
                  for name, times in samples.items() if "batch" not in name}
    print(f"encoded {megabytes:.2f} MB into {len(ids)} tokens "
          f"({len(text.encode()) / len(ids):.2f} bytes/token)", flush=True)
    return {
        "vocab_size": reference.vocab_size,
        "tokens": len(ids),
        "bytes_per_token": len(text.encode()) / len(ids),
        "batch_pieces": len(pieces),
        "workers": workers,
        "mb_per_s": speeds,
        "mb_per_cpu_s": cpu_speeds,
        "ours_cold_over_tiktoken": speeds["ours_cold"] / speeds["tiktoken"],
        "ours_warm_over_tiktoken": speeds["ours_warm"] / speeds["tiktoken"],
        "ours_batch_over_tiktoken_batch": speeds["ours_batch"] / speeds["tiktoken_batch"],
        "seconds": {name: times.wall for name, times in samples.items()},
        "cpu_seconds": {name: times.cpu for name, times in samples.items()},
    }


def _print_table(results: dict) -> None:
    print()
    print_table(["training", "ours s", "HF s", "ours/HF", "ours CPU s", "HF CPU s", "ours MB",
                 "HF MB"],
                [[f"vocab {row['vocab_size']}", f"{row['ours_seconds']:.2f}",
                  f"{row['huggingface_seconds']:.2f}", f"{row['ours_over_huggingface']:.2f}",
                  f"{row['ours_cpu_seconds']:.2f}", f"{row['huggingface_cpu_seconds']:.2f}",
                  f"{row['ours_peak_rss_mb']:.0f}", f"{row['huggingface_peak_rss_mb']:.0f}"]
                 for row in results["training"]])
    coding = results["coding"]
    speeds, cpu_speeds = coding["mb_per_s"], coding["mb_per_cpu_s"]
    rows = []
    for label, ours, theirs in [
        ("encode, cold cache", "ours_cold", "tiktoken"),
        ("encode, warm cache", "ours_warm", "tiktoken"),
        (f"batch encode, {coding['workers']} workers", "ours_batch", "tiktoken_batch"),
        ("decode", "ours_decode", "tiktoken_decode"),
    ]:
        by_cpu = (f"{cpu_speeds[ours] / cpu_speeds[theirs]:.2f}" if ours in cpu_speeds
                  else "-")
        rows.append([label, f"{speeds[ours]:.2f}", f"{speeds[theirs]:.2f}",
                     f"{speeds[ours] / speeds[theirs]:.2f}", by_cpu])
    print()
    print_table([f"coding, vocab {coding['vocab_size']}", "ours MB/s", "tiktoken", "ratio",
                 "ratio by CPU time"], rows)


if __name__ == "__main__":
    sys.exit(main())
