"""`python -m gpt plan --parallel`: the cost model checked against published figures
(parameter counts, ZeRO's bytes per parameter, Megatron's activation formula, 6ND) and
against our own GPT, and the ranking of layouts."""

from __future__ import annotations

import pytest

import minigrad
from gpt.cli import main
from gpt.model import GPT, GPTConfig
from gpt.plan import (
    ModelShape,
    activation_bytes_per_layer,
    plan_layout,
    plan_layouts,
    ring_bytes,
    training_flops,
)

A100 = dict(gpu_memory_gb=80, gpu_flops=312e12, bandwidth=100e9)


@pytest.mark.parametrize("name, published", [
    ("gpt2", 124_439_808),  # GPT-2 small (Radford et al. 2019; the HF checkpoint)
    ("gpt2-xl", 1_557_611_200),  # GPT-2 1.5B
    ("llama-7b", 6_738_415_616)])  # LLaMA 7B (Touvron et al. 2023)
def test_parameter_counts_match_published_models(name, published):
    assert ModelShape.preset(name).parameters() == published


@pytest.mark.parametrize("variant", [
    {}, {"mlp": "swiglu", "positions": "rope", "norm": "rmsnorm", "bias": False,
         "tie_weights": False, "mlp_hidden_size": 40}])
def test_parameter_count_matches_our_gpt(variant):
    config = GPTConfig(vocab_size=50, block_size=12, n_layer=3, n_head=2, n_embd=16, **variant)
    shape = ModelShape(3, 2, 16, 50, 12, config.mlp, config.tie_weights,
                       variant.get("mlp_hidden_size"))
    assert shape.parameters() == GPT(config, generator=minigrad.Generator(0)).num_parameters()


def test_zero_memory_per_parameter():
    """ZeRO (Rajbhandari et al. 2020, fig. 1): a 7.5B model with mixed-precision Adam
    needs 16 bytes per parameter, 120 GB, on each data-parallel rank; ZeRO-1 over 64
    ranks 4 + 12 / 64 bytes, 31.4 GB."""
    psi = 7.5e9
    shape = ModelShape(1, 1, 1, 1, 1)  # any model: the states scale with its count

    def states_gb(zero: bool) -> float:
        plan = plan_layout(shape, 64, 1, 1, zero, True, 64, 1, **A100)
        per_param = (plan.weights_gb + plan.grads_gb + plan.optimizer_gb) / shape.parameters()
        return per_param * psi

    assert states_gb(False) == pytest.approx(120.0)
    assert states_gb(True) == pytest.approx(31.4, abs=0.05)


def test_megatron_activation_memory():
    """Korthikanti et al. 2022: s b h (34 + 5 a s / h) bytes per layer, (10 + 24/t +
    5 a s / (h t)) with tensor parallelism, 2 s b h with full recomputation."""
    shape = ModelShape(n_layer=1, n_head=32, n_embd=4096, vocab=1, sequence=2048)
    s, b, h, a = 2048, 4, 4096, 32
    assert activation_bytes_per_layer(shape, b) == s * b * h * (34 + 5 * a * s / h)
    assert activation_bytes_per_layer(shape, b, tp=8) == \
        s * b * h * (10 + 24 / 8 + 5 * a * s / (h * 8))
    assert activation_bytes_per_layer(shape, b, recompute=True) == 2 * s * b * h


def test_training_flops_6nd():
    """GPT-3 175B on 300B tokens: 3.14e23 FLOPs (Brown et al. 2020, table D.1)."""
    assert training_flops(175e9, 300e9) == pytest.approx(3.14e23, rel=0.01)


def test_ring_all_reduce_volume():
    assert ring_bytes(100.0, 1) == 0
    assert ring_bytes(100.0, 4) == 150.0  # 2 (k - 1) / k


def test_layouts_best_first_and_what_does_not_fit_last():
    plans = plan_layouts(ModelShape.preset("llama-7b"), 8, 512, 1, **A100)
    fits = [p.fits for p in plans]
    assert fits == sorted(fits, reverse=True) and fits[0] and not fits[-1]
    fitting = [p.step_seconds for p in plans if p.fits]
    assert fitting == sorted(fitting)
    names = {p.name for p in plans}
    assert "dp=8,tp=1,pp=1" in names and "dp=1,tp=8,pp=1 +recompute" in names
    # Plain data parallelism cannot hold 7B x 16 bytes in 80 GB; ZeRO-1 shrinks Adam 8x.
    plain = next(p for p in plans if p.name == "dp=8,tp=1,pp=1 +recompute")
    zero = next(p for p in plans if p.name == "dp=8,tp=1,pp=1,zero=1 +recompute")
    assert not plain.fits and zero.fits
    assert zero.optimizer_gb == pytest.approx(plain.optimizer_gb / 8)
    # Recomputation costs a forward pass: a third more compute.
    assert zero.step_seconds > next(p for p in plans
                                    if p.name == "dp=8,tp=1,pp=1,zero=1").step_seconds


def test_pipeline_bubble_and_tensor_parallel_comm():
    shape = ModelShape.preset("gpt2")
    pp = plan_layout(shape, 1, 1, 4, False, False, 32, 4, **A100)
    assert pp.micro_batches == 8 and pp.bubble == pytest.approx(3 / 11)
    # 1F1B: the same bubble, activations of 4 micro-batches in flight instead of 8.
    one_f = plan_layout(shape, 1, 1, 4, False, False, 32, 4, **A100, schedule="1f1b")
    assert one_f.bubble == pp.bubble and one_f.activations_gb == pp.activations_gb / 2
    tp = plan_layout(shape, 1, 4, 1, False, False, 32, 4, **A100)
    activation = 4 * 1024 * 768 * 2  # b s h in 16-bit
    assert tp.comm_gb * 1e9 == pytest.approx(4 * 12 * 8 * ring_bytes(activation, 4))


def test_plan_command_prints_the_table(capsys):
    assert main(["plan", "--parallel", "--model", "gpt2", "--gpus", "4",
                 "--gpu-memory", "16"]) == 0
    out = capsys.readouterr().out
    assert "124.4M parameters" in out and "dp=4,tp=1,pp=1" in out
    assert main(["plan", "--parallel", "--gpus", "3", "--global-batch", "6"]) == 2
    assert "no layout of 3 GPUs" in capsys.readouterr().err
