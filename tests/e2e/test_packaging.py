"""The distribution people install by name: a wheel and an sdist build from a copy of the
source tree, and the wheel, installed into a fresh virtual environment, runs the main job.

The venv sees the host's site-packages for NumPy and regex (so the test needs no network),
but the wheel is installed into the venv itself and the test checks that `gpt`, `bpe` and
`minigrad` are imported from there, not from this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOT_ONLY = {".git", "runs", "build", "dist", "data", "tests", "notebooks", "benchmarks"}
ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache", ".hypothesis")


def ignored(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: run outputs and non-packaged folders at the root, caches."""
    at_root = set(names) & ROOT_ONLY if Path(folder) == ROOT else set()
    return at_root | ANYWHERE(folder, names)


def version() -> str:
    namespace: dict = {}
    for line in (ROOT / "minigrad" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            exec(line, namespace)
    return namespace["__version__"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel, sdist) built with setuptools' PEP 517 hooks from a copy of the tree."""
    pytest.importorskip("setuptools")
    source = tmp_path_factory.mktemp("source") / "minigrad-llm"
    shutil.copytree(ROOT, source, ignore=ignored)
    out = source.parent / "dist"
    out.mkdir()
    # The hooks return the file names; the build's own log goes to stdout, so the names
    # travel in a file.
    script = ("import pathlib, sys; from setuptools import build_meta as b; out = sys.argv[1]; "
              "names = [b.build_wheel(out), b.build_sdist(out)]; "
              "pathlib.Path(out, 'names.txt').write_text(' '.join(names))")
    result = subprocess.run([sys.executable, "-c", script, str(out)], cwd=source,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    wheel, sdist = (out / "names.txt").read_text().split()
    return out / wheel, out / sdist


def test_wheel_and_sdist_carry_the_packages_and_metadata(built):
    wheel, sdist = built
    assert wheel.name == f"minigrad_llm-{version()}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"minigrad_llm-{version()}.dist-info/METADATA").decode()
    for package in ("minigrad", "bpe", "gpt"):
        assert f"{package}/__init__.py" in names
    assert "minigrad/backends/cuda/attention.cu" in names  # kernels ship with the wheel
    assert any(name.endswith("licenses/LICENSE") for name in names)
    assert "Name: minigrad-llm" in metadata and f"Version: {version()}" in metadata
    assert "License-Expression: MIT" in metadata
    assert "example.com" not in metadata  # no placeholder URLs
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert f"minigrad_llm-{version()}/pyproject.toml" in members
    assert f"minigrad_llm-{version()}/LICENSE" in members


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_main_job(built, tmp_path):
    wheel, _ = built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300)
    where = subprocess.run(
        [python, "-c", "import bpe, gpt, minigrad; print(gpt.__file__, bpe.__file__, "
         "minigrad.__file__, minigrad.__version__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(venv)) for path in where[:3]), where
    assert where[3] == version()
    run = subprocess.run([python, "-m", "gpt", "train", "--steps", "20"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "model.safetensors").is_file()
