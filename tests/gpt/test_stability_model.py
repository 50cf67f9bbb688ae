"""The stabilizers as model and loss options, each held to the PyTorch twin in float64:
QK-norm (RMSNorm over each head's queries and keys), logit soft-capping, and PaLM's
z-loss."""

import numpy as np
import pytest

import minigrad
from gpt.model import GPT, GPTConfig, z_loss

TINY = dict(vocab_size=40, block_size=12, n_layer=2, n_head=2, n_embd=16)
STABILIZED = {
    "qk_norm": dict(qk_norm=True),
    "qk_norm_rope_llama": dict(qk_norm=True, positions="rope", norm="rmsnorm", mlp="swiglu",
                               bias=False, tie_weights=False),
    "softcap": dict(logit_softcap=0.5),  # small enough that tanh bends every logit
    "both": dict(qk_norm=True, logit_softcap=2.0),
}


@pytest.fixture(scope="module")
def twin_module(torch):
    import torch_gpt

    return torch_gpt


def model_and_batch(seed=0, **overrides):
    config = GPTConfig(**{**TINY, **overrides})
    model = GPT(config, generator=minigrad.Generator(seed)).to(dtype="float64")
    rng = np.random.default_rng(seed + 1)
    ids = rng.integers(0, config.vocab_size, size=(3, config.block_size))
    targets = rng.integers(0, config.vocab_size, size=(3, config.block_size))
    return model, ids, targets


def max_rel_err(ours, theirs) -> float:
    theirs = theirs.detach().numpy()
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


@pytest.mark.parametrize("variant", STABILIZED)
def test_stabilized_model_matches_pytorch_twin(variant, torch, twin_module):
    """Logits, loss + 1e-2 z-loss, and every gradient (the q_norm / k_norm gains
    included) agree with the twin to float64 rounding."""
    model, ids, targets = model_and_batch(**STABILIZED[variant])
    twin = twin_module.from_minigrad(model)
    logits, loss = model(minigrad.tensor(ids), minigrad.tensor(targets))
    t_logits, t_loss = twin(torch.from_numpy(ids), torch.from_numpy(targets))
    assert max_rel_err(logits.numpy(), t_logits) < 1e-10
    objective = loss + 1e-2 * z_loss(logits)
    t_objective = t_loss + 1e-2 * twin_module.z_loss(t_logits)
    assert objective.item() == pytest.approx(t_objective.item(), rel=1e-12)
    objective.backward()
    t_objective.backward()
    t_params = dict(twin.named_parameters())
    names = sorted(name for name, _ in model.named_parameters())
    assert names == sorted(t_params)
    if model.config.qk_norm:
        assert "h.0.attn.q_norm.weight" in names and "h.1.attn.k_norm.weight" in names
    for name, p in model.named_parameters():
        assert max_rel_err(p.grad.numpy(), t_params[name].grad) < 1e-9, name


def test_z_loss_is_the_mean_squared_log_normaliser(torch, twin_module):
    logits = np.random.default_rng(0).normal(0, 3, (2, 5, 7))
    x = minigrad.tensor(logits, requires_grad=True)
    t = torch.tensor(logits, requires_grad=True)
    value, t_value = z_loss(x), twin_module.z_loss(t)
    log_z = np.log(np.exp(logits).sum(-1))
    assert value.item() == pytest.approx(np.mean(log_z ** 2), rel=1e-12)
    assert value.item() == pytest.approx(t_value.item(), rel=1e-12)
    value.backward()
    t_value.backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_soft_capping_bounds_the_logits_and_qk_norm_the_attention_scores():
    model, ids, _ = model_and_batch(logit_softcap=0.3)
    model.wte.weight.data = model.wte.weight.data * 100.0  # logits that would be huge
    logits, _ = model(minigrad.tensor(ids))
    assert np.abs(logits.numpy()).max() <= 0.3
    # With QK-norm (gains 1) each score q.k / sqrt(hs) is at most |q||k| / sqrt(hs) =
    # sqrt(hs), however large the c_attn weights grow; without it they grow with them.
    x = minigrad.tensor(np.random.default_rng(2).normal(size=(1, 12, 16)))
    for qk_norm, bounded in ((True, True), (False, False)):
        model, _, _ = model_and_batch(qk_norm=qk_norm)
        attn = model.h[0].attn
        attn.c_attn.weight.data = attn.c_attn.weight.data * 1e3
        q, k, _ = attn.heads(x)
        scores = (q @ k.swapaxes(-2, -1)).numpy() / np.sqrt(8)
        assert (np.abs(scores).max() <= np.sqrt(8) * (1 + 1e-9)) == bounded


def test_config_rejects_a_bad_soft_cap():
    with pytest.raises(ValueError, match="logit_softcap must be a finite number >= 0"):
        GPTConfig(**TINY, logit_softcap=-1.0)
    config = GPTConfig(**TINY, qk_norm=True, logit_softcap=30.0)
    assert GPTConfig.from_dict(config.to_dict()) == config


def test_qk_norm_and_soft_cap_decode_with_the_kv_cache_as_without():
    """Keys are normalised before they are cached, so one token at a time through the
    cache gives the logits of the full sequence."""
    from gpt.kv_cache import KVCache

    model, ids, _ = model_and_batch(qk_norm=True, logit_softcap=2.0, positions="rope")
    with minigrad.no_grad():
        full, _ = model(minigrad.tensor(ids))
        cache = KVCache(model.config.n_layer, model.config.block_size)
        steps = [model(minigrad.tensor(ids[:, t:t + 1]), kv_cache=cache)[0].numpy()
                 for t in range(ids.shape[1])]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full.numpy(), rtol=1e-10,
                               atol=1e-12)
