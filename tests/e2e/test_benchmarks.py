"""Every benchmark runs as `python -m benchmarks NAME`: its `main` takes the argument list
`benchmarks/__main__.py` hands it, and `--help` shows its options. Nothing is timed.

The benchmarks are imported in one child interpreter (some set BLAS threads and environment
variables at import, which must not leak into the test process); its sys.argv holds an
unknown option, so a `main` that read sys.argv instead of its argument would fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import benchmarks
from benchmarks.__main__ import main as benchmarks_main

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = {"torch", "tiktoken", "tokenizers", "matplotlib", "cupy"}
CHILD = """
import contextlib, io, json, sys
from benchmarks.__main__ import benchmarks, main
sys.argv = ["benchmarks", "--not-an-option-of-any-benchmark"]
results = {}
for name in benchmarks():
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main([name, "--help"])
        results[name] = {"exit": code, "out": out.getvalue()}
    except SystemExit as exc:
        results[name] = {"exit": exc.code, "out": out.getvalue()}
    except ModuleNotFoundError as exc:
        results[name] = {"missing": exc.name}
    except Exception as exc:
        results[name] = {"error": repr(exc)}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def help_runs() -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", list(benchmarks()))
def test_help_of_every_benchmark(name, help_runs):
    run = help_runs[name]
    if run.get("missing", "").split(".")[0] in OPTIONAL:
        pytest.skip(f"benchmark {name} needs {run['missing']}, which is not installed")
    assert "error" not in run and "missing" not in run, run
    assert run["exit"] == 0, run
    assert run["out"].startswith("usage:") and "--help" in run["out"], run["out"]


def test_listing_and_unknown_names(capsys):
    assert benchmarks_main([]) == 0
    listing = capsys.readouterr().out
    assert {"gpt-speed", "fused", "overhead", "optimizers", "instruments"} <= set(benchmarks())
    assert all(f"  {name} " in listing for name in benchmarks())
    assert benchmarks_main(["no-such-benchmark"]) == 2
    assert "unknown benchmark 'no-such-benchmark'" in capsys.readouterr().err
