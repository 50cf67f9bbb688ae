"""Parallel training computes what one process computes: the losses and the weights
after 10 AdamW steps (float64 to 1e-10, float32 to 1e-5; gradient accumulation and
clipping on) of a run under mpiexec equal those of a single process with the same
global batch. Also: resuming after Ctrl-C under other layouts, and failing ranks."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from mpi_launch import WORKERS, run_mpi
from tiny_run import losses, run, weights

TOL = dict(rtol=1e-10, atol=1e-12)


def layout_of(spec: str) -> dict:
    return {"dp": 1, "tp": 1, "pp": 1, **{k: int(v) for k, v in
                                          (kv.split("=") for kv in spec.split(","))
                                          if k != "schedule"}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The one-process runs, by data shard count and model."""
    cache = {}

    def get(shards: int, llama_like: bool = False):
        if (shards, llama_like) not in cache:
            run_dir = tmp_path_factory.mktemp(f"single{shards}")
            assert run(run_dir, shards=shards, llama_like=llama_like).status == "completed"
            cache[shards, llama_like] = (losses(run_dir), weights(run_dir))
        return cache[shards, llama_like]

    return get


def assert_same_run(run_dir, expected, tol=TOL) -> None:
    want_losses, want_weights = expected
    got = losses(run_dir)
    assert len(got) == len(want_losses) == 10
    np.testing.assert_allclose(got, want_losses, **tol)
    got_weights = weights(run_dir)
    assert got_weights.keys() == want_weights.keys()
    for name, value in want_weights.items():
        np.testing.assert_allclose(got_weights[name], value, **tol, err_msg=name)


# n = 4 runs oversubscribe the 2 cores (MPICH does so by itself).
LAYOUTS = ["dp=2", "dp=2,zero=1", "tp=2", "pp=2", "pp=2,schedule=1f1b", "tp=2,pp=2",
           "dp=2,tp=2,zero=1"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_equals_one_process(layout, tmp_path, reference):
    sizes = layout_of(layout)
    n = sizes["dp"] * sizes["tp"] * sizes["pp"]
    out = run_mpi(n, [WORKERS / "train.py", layout, tmp_path / "run"])
    assert out.stdout.count("completed at step 10") == n
    assert_same_run(tmp_path / "run", reference(sizes["dp"]))


def test_float32_data_parallel_within_1e_5(tmp_path):
    """In float32 the replicas' sums round differently from one process's: 1e-5."""
    single = tmp_path / "single"
    assert run(single, shards=2, dtype="float32").status == "completed"
    run_mpi(2, [WORKERS / "train.py", "dp=2", tmp_path / "run", "float32"])
    assert_same_run(tmp_path / "run", (losses(single), weights(single)),
                    dict(rtol=1e-5, atol=1e-5))


def test_tensor_parallel_llama_like_model(tmp_path, reference):
    """Grouped-query heads, SwiGLU's two halves, RMSNorm, rope and an untied head."""
    run_mpi(2, [WORKERS / "train.py", "tp=2", tmp_path / "run", "llama"])
    assert_same_run(tmp_path / "run", reference(1, llama_like=True))


def test_resume_after_interrupt_under_any_layout(tmp_path, reference):
    """A dp=2 ZeRO-1 run stopped by Ctrl-C at step 5 continues, under its own layout, a
    pipeline layout, or one process, exactly as if never stopped."""
    first = tmp_path / "stopped"
    out = run_mpi(2, [WORKERS / "train.py", "dp=2,zero=1", first, "stop=5"])
    assert out.stdout.count("interrupted at step 5") == 2
    for name, how in (("same", ["dp=2,zero=1"]), ("pipeline", ["pp=2", "2"]), ("one", None)):
        run_dir = tmp_path / name
        shutil.copytree(first, run_dir)
        if how is None:
            assert run(run_dir, shards=2, resume=True).status == "completed"
        else:
            run_mpi(2, [WORKERS / "train.py", how[0], run_dir, *how[1:], "resume"])
        assert_same_run(run_dir, reference(2))


def test_a_dead_rank_ends_the_job(tmp_path):
    """Rank 1 is killed at step 3; rank 0, waiting for it in the gradient all-reduce, is
    ended by the launcher within seconds, and the exit status says it failed."""
    started = time.perf_counter()
    out = run_mpi(2, [WORKERS / "train.py", "dp=2", tmp_path / "run", "die"], timeout=30,
                  check=False)
    assert out.returncode != 0
    assert time.perf_counter() - started < 30
    assert "completed" not in out.stdout
    assert "KILLED" in out.stdout + out.stderr or "signal 9" in out.stdout + out.stderr


def test_an_error_on_one_rank_aborts_all(tmp_path):
    """A Python error on one rank (here: rank 1 cannot read its checkpoint) is printed
    with its rank and aborts every process."""
    (tmp_path / "run").mkdir()
    out = run_mpi(2, [WORKERS / "train.py", "dp=2", tmp_path / "run", "resume"], timeout=30,
                  check=False)
    assert out.returncode != 0
    assert "aborting all 2 processes" in out.stderr
