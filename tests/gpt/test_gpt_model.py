"""The GPT model: configuration checks, parity with a PyTorch twin for every variant
(logits, loss, gradients, AdamW training), initialisation, accounting, attention maps,
the GPU stand-in, and learning (overfitting one batch)."""

import math

import numpy as np
import pytest

import minigrad
from gpt.model import GPT, GPTConfig
from minigrad.optim import AdamW

TINY = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)
VARIANTS = {
    "gpt2": {},
    "rope": dict(positions="rope"),
    "rmsnorm": dict(norm="rmsnorm"),
    "swiglu": dict(mlp="swiglu"),
    "relu": dict(mlp="relu"),
    "post_norm": dict(norm_placement="post"),
    "untied": dict(tie_weights=False),
    "no_bias": dict(bias=False),
    "llama_like": dict(positions="rope", norm="rmsnorm", mlp="swiglu", bias=False,
                       tie_weights=False),
}


def make_model(dtype="float64", seed=0, **overrides):
    config = GPTConfig(**{**TINY, **overrides})
    model = GPT(config, generator=minigrad.Generator(seed))
    return model.to(dtype=dtype)


def batch(config, B=3, T=None, seed=1):
    rng = np.random.default_rng(seed)
    T = T or config.block_size
    ids = rng.integers(0, config.vocab_size, size=(B, T))
    targets = rng.integers(0, config.vocab_size, size=(B, T))
    targets[0, :3] = -100  # ignored positions
    return ids, targets


def rel_err(ours, theirs) -> float:
    theirs = theirs.detach().numpy()
    return float(np.max(np.abs(ours - theirs)) / (np.max(np.abs(theirs)) + 1e-300))


# -- configuration -----------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (dict(n_embd=30, n_head=4), "divisible by n_head"),
    (dict(n_embd=36, n_head=4, positions="rope"), "even head dim"),
    (dict(norm="batchnorm"), "'layernorm', 'rmsnorm'"),
    (dict(mlp="tanh"), "'gelu', 'swiglu', 'relu'"),
    (dict(positions="alibi"), "'learned', 'rope'"),
    (dict(norm_placement="sandwich"), "'pre', 'post'"),
    (dict(n_layer=0), "n_layer must be a positive int"),
    (dict(dropout=1.0), "dropout"),
])
def test_config_rejects_bad_options_with_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY, **overrides})


def test_config_round_trips_through_a_dict():
    config = GPTConfig(**TINY, positions="rope", mlp="swiglu", tie_weights=False)
    assert GPTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown keys \\['n_embed'\\].*valid keys"):
        GPTConfig.from_dict({**TINY, "n_embed": 8})


# -- parity with PyTorch ---------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch", reason="the PyTorch parity tests need torch "
                                "(pip install -e '.[test]')")
    torch.set_num_threads(1)  # tiny ops: threads only add overhead on a busy 2-core machine
    return torch


@pytest.fixture(scope="module")
def from_minigrad(torch):
    from torch_gpt import from_minigrad

    return from_minigrad


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_pytorch_twin_in_float64(variant, torch, from_minigrad):
    """Same weights, same batch: logits, loss, every gradient and the loss over 10 AdamW
    steps agree with PyTorch to float64 rounding."""
    model = make_model(**VARIANTS[variant])
    twin = from_minigrad(model)
    ids, targets = batch(model.config)

    logits, loss = model(minigrad.tensor(ids), minigrad.tensor(targets))
    t_logits, t_loss = twin(torch.from_numpy(ids), torch.from_numpy(targets))
    assert rel_err(logits.numpy(), t_logits) < 1e-10
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-10)

    loss.backward()
    t_loss.backward()
    t_params = dict(twin.named_parameters())
    assert sorted(name for name, _ in model.named_parameters()) == sorted(t_params)
    for name, p in model.named_parameters():
        assert rel_err(p.grad.numpy(), t_params[name].grad) < 1e-9, name

    ours = AdamW(model.optimizer_groups(0.1), lr=3e-3)
    theirs = torch.optim.AdamW(twin.optimizer_groups(0.1), lr=3e-3)
    for _ in range(10):
        ours.zero_grad()
        theirs.zero_grad()
        _, loss = model(minigrad.tensor(ids), minigrad.tensor(targets))
        _, t_loss = twin(torch.from_numpy(ids), torch.from_numpy(targets))
        loss.backward()
        t_loss.backward()
        ours.step()
        theirs.step()
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-9)
    for name, p in model.named_parameters():
        assert rel_err(p.numpy(), t_params[name]) < 1e-8, name


@pytest.mark.parametrize("variant", ["gpt2", "llama_like"])
def test_matches_pytorch_twin_in_float32(variant, torch, from_minigrad):
    model = make_model(dtype="float32", **VARIANTS[variant])
    twin = from_minigrad(model, dtype=torch.float32)
    ids, targets = batch(model.config)
    logits, loss = model(minigrad.tensor(ids), minigrad.tensor(targets))
    t_logits, t_loss = twin(torch.from_numpy(ids), torch.from_numpy(targets))
    assert logits.dtype == np.float32
    assert rel_err(logits.numpy(), t_logits) < 1e-4
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-4)
    loss.backward()
    t_loss.backward()
    t_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad.dtype == np.float32
        assert rel_err(p.grad.numpy(), t_params[name].grad) < 1e-3, name


# -- initialisation and accounting -------------------------------------------------------
def test_gpt2_initialisation():
    config = GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128)
    params = dict(GPT(config, generator=minigrad.Generator(0)).named_parameters())
    assert np.std(params["wte.weight"].numpy()) == pytest.approx(0.02, rel=0.05)
    assert np.std(params["h.0.attn.c_attn.weight"].numpy()) == pytest.approx(0.02, rel=0.05)
    residual = 0.02 / math.sqrt(2 * config.n_layer)
    assert np.std(params["h.3.mlp.c_proj.weight"].numpy()) == pytest.approx(residual, rel=0.05)
    assert np.std(params["h.1.attn.c_proj.weight"].numpy()) == pytest.approx(residual, rel=0.05)
    assert not np.any(params["h.2.mlp.c_fc.bias"].numpy())
    assert np.all(params["h.0.ln_1.weight"].numpy() == 1)
    assert params["wte.weight"].dtype == np.float32


def test_same_generator_seed_gives_the_same_weights():
    a, b = make_model(seed=3), make_model(seed=3)
    c = make_model(seed=4)
    for (name, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(),
                                         c.named_parameters()):
        assert np.array_equal(p.numpy(), q.numpy()), name
        if p.ndim == 2:
            assert not np.array_equal(p.numpy(), r.numpy()), name


def test_parameter_counts_and_flops():
    tied, untied = make_model(), make_model(tie_weights=False)
    c = tied.config
    C, V = c.n_embd, c.vocab_size
    per_block = (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C) + 4 * C
    non_embedding = c.n_layer * per_block + 2 * C  # blocks + ln_f
    assert tied.num_parameters(non_embedding=True) == non_embedding
    assert tied.num_parameters() == non_embedding + V * C + c.block_size * C
    assert untied.num_parameters() == tied.num_parameters() + V * C
    assert untied.num_parameters(non_embedding=True) == non_embedding
    assert tied.flops_per_token() == 6 * (non_embedding + V * C) + 12 * c.n_layer * C * 16


def test_optimizer_groups_decay_only_linear_matrices():
    model = make_model(tie_weights=False)
    decay, no_decay = model.optimizer_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): name for name, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "lm_head.weight" in decayed and "h.1.mlp.c_fc.weight" in decayed
    assert all(p.ndim == 2 for p in decay["params"])
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert {"wte.weight", "wpe.weight", "ln_f.weight", "h.0.attn.c_attn.bias"} <= skipped
    assert len(decayed) + len(skipped) == len(names)


# -- behaviour ------------------------------------------------------------------------
def test_attention_maps_are_causal_distributions():
    model = make_model(positions="rope")
    ids, _ = batch(model.config, B=2, T=10)
    maps = model.attention_maps(minigrad.tensor(ids))
    assert len(maps) == model.config.n_layer
    for att in maps:
        att = att.numpy()
        assert att.shape == (2, model.config.n_head, 10, 10)
        np.testing.assert_allclose(att.sum(-1), 1.0, rtol=1e-12)
        assert np.all(np.triu(att, k=1) == 0)
        assert np.all(att[..., np.tril(np.ones((10, 10), dtype=bool))] > 0)
    assert not any(block.attn._forward_hooks for block in model.h)  # hooks removed


def test_longer_than_block_size_is_rejected():
    model = make_model()
    with pytest.raises(ValueError, match="17 tokens.*block_size 16"):
        model(minigrad.tensor(np.zeros((1, 17), dtype=np.int64)))


def test_dropout_acts_in_training_mode_only():
    model = make_model(dropout=0.2)
    ids = minigrad.tensor(batch(model.config)[0])
    model.eval()
    a, b = model(ids)[0].numpy(), model(ids)[0].numpy()
    assert np.array_equal(a, b)
    model.train()
    c = model(ids)[0].numpy()
    assert not np.allclose(a, c)


def test_gpu_stand_in_matches_cpu_without_host_transfers():
    """On the 'strict' device a training step runs with no implicit host transfer and
    gives the same loss and gradients as on the CPU."""
    cpu = make_model(positions="rope", mlp="swiglu")
    dev = make_model(positions="rope", mlp="swiglu").to("strict")
    ids, targets = batch(cpu.config)
    _, loss = cpu(minigrad.tensor(ids), minigrad.tensor(targets))
    loss.backward()
    strict = minigrad.get_device("strict")
    ids_dev = minigrad.tensor(ids, device="strict")
    targets_dev = minigrad.tensor(targets, device="strict")
    before = strict.host_transfers
    _, loss_dev = dev(ids_dev, targets_dev)
    loss_dev.backward()
    AdamW(dev.parameters(), lr=1e-3).step()
    assert strict.host_transfers == before
    assert loss_dev.item() == pytest.approx(loss.item(), rel=1e-12)
    grads = {name: p.grad for name, p in cpu.named_parameters()}
    for name, p in dev.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name].numpy(), rtol=1e-9, atol=1e-14)


def test_overfits_one_batch():
    model = make_model(dtype="float32")
    ids, targets = batch(model.config, B=4, seed=5)
    targets[0, :3] = 7
    ids, targets = minigrad.tensor(ids), minigrad.tensor(targets)
    optimizer = AdamW(model.optimizer_groups(0.0), lr=1e-2)
    for _ in range(80):
        optimizer.zero_grad()
        _, loss = model(ids, targets)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.02  # from ln(50) = 3.9
