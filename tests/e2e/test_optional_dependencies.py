"""The finite-difference suite needs only NumPy, pytest and hypothesis, and nothing in
tests/ fails to import without the optional packages: a test that needs PyTorch,
tiktoken, Hugging Face tokenizers or safetensors skips, saying why.

Each check runs pytest in a fresh interpreter where importing those packages raises
ModuleNotFoundError, as it would where they are not installed."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("torch", "tiktoken", "tokenizers", "safetensors")

# Makes every import of an optional package fail, as where it is not installed.
HIDE = f"""
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)",
                                      name=name)
        return None

sys.meta_path.insert(0, Missing())
"""
# Then pytest; fails if an optional package got imported all the same.
RUN_PYTEST = HIDE + f"""
import pytest
code = pytest.main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.partition(".")[0] in {OPTIONAL!r})
sys.exit(f"imported anyway: {{leaked}}" if leaked else code)
"""


def run_hidden(source: str, *args) -> subprocess.CompletedProcess:
    # One hypothesis example per test (the `smoke` profile of conftest.py): this checks
    # what runs, not the ops again. PYTEST_ADDOPTS could add -n or other plugins.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run([sys.executable, "-c", source, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**env, "HYPOTHESIS_PROFILE": "smoke"})


def test_the_optional_packages_are_hidden_from_the_child():
    for name in OPTIONAL:
        result = run_hidden(HIDE + f"import {name}")
        assert f"No module named '{name}'" in result.stderr, result.stderr[-2000:]


def test_gradcheck_suite_passes_without_the_optional_packages():
    result = run_hidden(RUN_PYTEST, "-q", "-p", "no:cacheprovider",
                        "tests/minigrad/test_ops_gradcheck.py", "tests/minigrad/test_gradcheck.py")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]


def test_every_test_module_imports_without_the_optional_packages():
    result = run_hidden(RUN_PYTEST, "-q", "-p", "no:cacheprovider", "--collect-only", "tests")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]  # "N tests collected in 2.1s"
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s", summary), result.stdout[-4000:]
