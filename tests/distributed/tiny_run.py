"""A tiny training run (float64 unless asked), the same in the test process (one process) and in the
ranks of an mpiexec launch, so the two can be compared number for number."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import numpy as np

import minigrad
from gpt.model import GPT, GPTConfig
from gpt.parallel.data import ShardedWindows
from gpt.train import TrainConfig, Trainer

VOCAB = 13
TOKENS = np.random.default_rng(0).integers(0, VOCAB, 4000).astype(np.int64)
MODEL = dict(vocab_size=VOCAB, block_size=8, n_layer=2, n_head=2, n_embd=16)
# Llama-style: rotary positions, RMSNorm, SwiGLU, grouped-query attention, untied head.
LLAMA_LIKE = dict(positions="rope", norm="rmsnorm", mlp="swiglu", n_head=4, n_kv_head=2,
                  tie_weights=False, bias=False)
TRAIN = dict(steps=10, batch_size=2, grad_accum=2, lr=1e-2, warmup=2, log_interval=1,
             eval_interval=0, checkpoint_interval=0, grad_clip=0.5, seed=0)


class SignalAt:
    """Batches that send this process `signum` (SIGINT: a Ctrl-C; SIGKILL: a crash) as
    batch number `at` is drawn."""

    def __init__(self, inner, at: int, signum):
        self.inner, self.at, self.signum, self.calls = inner, at, signum, 0

    def next_batch(self):
        self.calls += 1
        if self.calls == self.at:
            signal.raise_signal(self.signum)
        return self.inner.next_batch()

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


def run(run_dir, parallel=None, shards: int = 1, stop_at_step: int | None = None,
        resume: bool = False, llama_like: bool = False, signum=signal.SIGINT,
        dtype: str = "float64"):
    """Train (or resume) in run_dir, sending this process `signum` as step stop_at_step
    starts; returns the Trainer's result."""
    config = TrainConfig(**TRAIN)
    model = GPT(GPTConfig(**{**MODEL, **(LLAMA_LIKE if llama_like else {})}),
                generator=minigrad.Generator(0)).to(dtype=dtype)
    if parallel is None:
        batches = ShardedWindows(TOKENS, MODEL["block_size"], config, shards, range(shards))
    else:
        model = parallel.prepare_model(model)
        batches = parallel.batches(TOKENS, MODEL["block_size"], config, shards)
    if stop_at_step is not None:
        batches = SignalAt(batches, (stop_at_step - 1) * config.grad_accum + 1, signum)
    trainer = Trainer(model, batches, None, config, run_dir, progress=False,
                      stream=io.StringIO(), parallel=parallel)
    if resume:
        trainer.load_checkpoint()
    return trainer.fit()


def losses(run_dir) -> list[float]:
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").open()]
    return [r["loss"] for r in records if "loss" in r]


def weights(run_dir) -> dict:
    from minigrad.io import load_safetensors

    return {k: v.numpy() for k, v in load_safetensors(Path(run_dir) / "model.safetensors").items()}
