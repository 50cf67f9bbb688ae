"""`python -m gpt train --parallel`: the launch checks and their messages, the layout
syntax, and one real run under mpiexec in which only rank 0 speaks and writes."""

from __future__ import annotations

import json
import sys

import pytest
from mpi_launch import run_mpi

from gpt.cli import main
from gpt.parallel import Layout

LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
TEXT = "the quick brown fox jumps over the lazy dog. " * 200
TINY = ["--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
        "--batch-size", "2"]


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def train(tmp_path, *flags) -> int:
    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    return main(["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--steps", "2",
                 "--warmup", "0", "--no-progress", *flags])


def test_parallel_without_a_launcher_says_how_to_launch(tmp_path, no_launcher, capsys):
    assert train(tmp_path, "--parallel", "dp=2") == 2
    err = capsys.readouterr().err
    assert "needs 2 processes started by an MPI launcher" in err
    assert "mpiexec -n 2 python -m gpt train --parallel dp=2,tp=1,pp=1" in err
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_layout_must_match_the_launch(tmp_path, no_launcher, capsys):
    no_launcher.setenv("PMI_SIZE", "4")
    assert train(tmp_path, "--parallel", "dp=2,tp=1,pp=1") == 2
    err = capsys.readouterr().err
    assert "dp x tp x pp = 2 x 1 x 1 = 2 processes, but mpiexec started 4" in err


def test_missing_extra_is_named(tmp_path, no_launcher, capsys):
    no_launcher.setenv("PMI_SIZE", "2")
    no_launcher.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    assert train(tmp_path, "--parallel", "dp=2") == 2
    assert "pip install 'minigrad-llm[distributed]'" in capsys.readouterr().err


def test_one_process_layout_runs_without_a_launcher(tmp_path, no_launcher):
    assert train(tmp_path, "--parallel", "dp=1", "--max-new-tokens", "5", *TINY) == 0


@pytest.mark.parametrize("spec, message", [
    ("dp=2,tp=x", "cannot read 'tp=x'"), ("dp=2,dp=2", "dp is given twice"),
    ("ep=2", "cannot read 'ep=2'"), ("dp=0", "dp must be >= 1"),
    ("zero=2", "zero must be 0 or 1"), ("pp=2,schedule=zb", "schedule must be one of")])
def test_layout_syntax_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        Layout.parse(spec)


def test_layout_coordinates_cover_every_rank_once():
    layout = Layout.parse("dp=2,tp=2,pp=3")
    coordinates = {layout.coordinates(r) for r in range(layout.size)}
    assert len(coordinates) == 12
    assert layout.coordinates(0) == (0, 0, 0)
    assert layout.coordinates(1) == (0, 0, 1)  # tensor-parallel ranks are neighbours
    assert layout.coordinates(2) == (0, 1, 0)
    assert layout.coordinates(4) == (1, 0, 0)


def test_cli_run_under_mpiexec_rank_0_reports(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    out = run_mpi(2, ["-m", "gpt", "train", "--parallel", "tp=2", "--data", data, "--out",
                      tmp_path / "runs", "--name", "r", "--steps", "4", "--warmup", "0", *TINY,
                      "--eval-interval", "2", "--eval-batches", "1",
                      "--max-new-tokens", "8", "--no-progress"], timeout=120)
    assert out.stdout.count("run folder:") == 1  # rank 0 only
    assert out.stdout.count("final val loss") == 1
    assert "rank 1: stage 0, replica 0, shard 1" in out.stdout
    run_dir = tmp_path / "runs" / "r"
    assert json.loads((run_dir / "parallel.json").read_text()) == {
        "layout": "dp=1,tp=2,pp=1", "data_shards": 1}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    # The checkpoint holds the whole model: one process samples from it.
    assert main(["sample", str(run_dir), "--max-new-tokens", "5", "--prompt", "the"]) == 0


def test_schedule_orders():
    """GPipe: all forwards then all backwards; 1F1B: warm-up forwards, then alternating,
    each stage holding at most pp micro-batches; both run every pass once."""
    from gpt.parallel.pipeline import schedule_order

    assert schedule_order("gpipe", 2, 0, 3) == [("F", 0), ("F", 1), ("F", 2),
                                                ("B", 0), ("B", 1), ("B", 2)]
    assert schedule_order("1f1b", 3, 0, 4) == [("F", 0), ("F", 1), ("F", 2), ("B", 0),
                                               ("F", 3), ("B", 1), ("B", 2), ("B", 3)]
    assert schedule_order("1f1b", 3, 2, 4) == [("F", 0), ("B", 0), ("F", 1), ("B", 1),
                                               ("F", 2), ("B", 2), ("F", 3), ("B", 3)]
    for stage in range(3):
        order = schedule_order("1f1b", 3, stage, 5)
        assert sorted(order) == sorted(schedule_order("gpipe", 3, stage, 5))
        held = max(sum(op == "F" for op, _ in order[:i]) - sum(op == "B" for op, _ in order[:i])
                   for i in range(len(order) + 1))
        assert held == 3 - stage
