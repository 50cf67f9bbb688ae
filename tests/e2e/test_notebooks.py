"""The committed notebooks are exactly what notebooks/build.py writes: no outputs, no
hand edits that the next build would lose. (Executing them is nbmake's job: `notebooks`
is in pytest's testpaths and `--nbmake` in its addopts.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = load_build()


def test_every_notebook_comes_from_the_build_script():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(BUILD.NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(BUILD.NOTEBOOKS))
def test_committed_notebook_is_the_built_one_without_outputs(name):
    text = (NOTEBOOKS / name).read_text(encoding="utf-8")
    cells = json.loads(text)["cells"]
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in cells if c["cell_type"] == "code"), \
        f"{name} has outputs: run `python notebooks/build.py` (outputs stay stripped)"
    assert text == BUILD.notebook_text(BUILD.NOTEBOOKS[name]), \
        f"{name} differs from notebooks/build.py: edit the cells there and rebuild"
