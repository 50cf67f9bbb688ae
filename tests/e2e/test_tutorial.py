"""The tutorial docs/seeing_backprop.md runs: its python blocks, joined in order into one
script, execute in an empty directory and produce the files the text promises."""

import re
import runpy
import shutil
from pathlib import Path

import pytest

from minigrad.autograd import Function

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "seeing_backprop.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
OUTPUT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(markdown: str) -> list[str]:
    return PYTHON_BLOCK.findall(markdown)


def shown_output_lines(markdown: str) -> list[str]:
    """The lines of output the text shows, except timings and file paths (which vary)."""
    return [line for block in OUTPUT_BLOCK.findall(markdown) if " ms" not in block
            for line in block.splitlines() if "seeing_backprop.py:" not in line]


def test_blocks_are_found():
    blocks = python_blocks(TUTORIAL.read_text())
    assert len(blocks) >= 8
    assert all(block.strip() for block in blocks)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the log(0) the tutorial catches
def test_tutorial_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))  # the tutorial imports gpt.model
    # A real file, so anomaly messages and tracebacks can show the tutorial's lines.
    script = tmp_path / "seeing_backprop.py"
    script.write_text("\n\n".join(python_blocks(TUTORIAL.read_text())))
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out.splitlines()
    expected = shown_output_lines(TUTORIAL.read_text())
    assert len(expected) >= 10
    missing = [line for line in expected if line not in printed]
    assert not missing, f"output shown in the tutorial but not printed: {missing}"
    for name in ("block.dot", "grad_flow.png", "attention.png", "gpt_attention.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "block.svg").exists() == (shutil.which("dot") is not None)
    assert Function.observers == ()
