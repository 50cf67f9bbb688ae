"""LoRA adapters: gradients (finite differences in float64, and a plain PyTorch adapter
on the PyTorch GPT twin), injection by name, frozen base weights, merge exactness, and
adapters saved and loaded alone."""

import numpy as np
import pytest

import minigrad as mg
from gpt.model import GPT, GPTConfig
from minigrad import io, nn, optim
from minigrad.nn import lora

CONFIG = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)


def tiny_gpt(dtype="float64", seed=0, **overrides) -> GPT:
    return GPT(GPTConfig(**{**CONFIG, **overrides}), generator=mg.Generator(seed)).to(
        dtype=dtype)


def randomise_b(model, seed=5) -> None:
    """B starts at zero (the adapter is a no-op); tests want an adapter that does something."""
    rng = np.random.default_rng(seed)
    for m in lora.lora_modules(model).values():
        m.lora_B.data[...] = rng.standard_normal(m.lora_B.shape).astype(m.lora_B.dtype) * 0.3


def ids(seed=1, B=2, T=8):
    return np.random.default_rng(seed).integers(0, CONFIG["vocab_size"], (B, T))


def test_lora_linear_gradcheck_float64():
    gen = mg.Generator(0)
    layer = nn.LoRALinear(nn.Linear(5, 4, dtype="float64", generator=gen), rank=3, alpha=6.0,
                          generator=gen)
    layer.lora_B.data[...] = mg.randn(4, 3, dtype="float64", generator=gen).data
    layer.weight.requires_grad_(True)
    x = mg.randn(2, 3, 5, dtype="float64", requires_grad=True, generator=gen)

    def forward(x, A, B, W, b):
        # Evaluate the module itself with gradcheck's copies of its parameters.
        layer._parameters.update(lora_A=A, lora_B=B, weight=W, bias=b)
        return layer(x)

    params = (layer.lora_A, layer.lora_B, layer.weight, layer.bias)
    assert mg.gradcheck(forward, x, *params)


def test_lora_linear_starts_as_the_base_layer_and_scales_by_alpha_over_rank():
    gen = mg.Generator(0)
    base = nn.Linear(6, 4, generator=gen)
    x = mg.randn(3, 6, generator=gen)
    expected = base(x).numpy()
    layer = nn.LoRALinear(base, rank=2, alpha=8.0, generator=gen)
    np.testing.assert_array_equal(layer(x).numpy(), expected)  # B = 0
    assert layer.scaling == 4.0
    B = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    layer.lora_B.data[...] = B
    update = x.numpy() @ layer.lora_A.numpy().T @ B.T * 4.0
    np.testing.assert_allclose(layer(x).numpy(), expected + update, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rank, alpha, message", [(0, None, "rank must be a positive int"),
                                                  (2, -1.0, "alpha must be positive")])
def test_lora_linear_rejects_bad_settings(rank, alpha, message):
    with pytest.raises(ValueError, match=message):
        nn.LoRALinear(nn.Linear(3, 3), rank=rank, alpha=alpha)


@pytest.mark.parametrize("targets, expected", [
    ("attention", ["attn.c_attn", "attn.c_proj"]),
    ("mlp", ["mlp.c_fc", "mlp.c_proj"]),
    ("all", ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]),
    ("attention,mlp", ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]),
    (["c_attn"], ["attn.c_attn"]),
    ("h.1.*c_fc", None),
])
def test_inject_by_preset_or_pattern_freezes_the_rest(targets, expected):
    model = tiny_gpt()
    report = lora.inject_lora(model, rank=2, targets=targets)
    names = ([f"h.{i}.{n}" for i in range(2) for n in expected] if expected else
             ["h.1.mlp.c_fc"])
    assert sorted(report.modules) == sorted(names)
    adapters = lora.lora_modules(model)
    per_layer = {name: 2 * (m.in_features + m.out_features) for name, m in adapters.items()}
    assert report.trainable == sum(per_layer.values())
    assert report.total == sum(p.numel() for p in model.parameters())
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.{k}" for n in names for k in ("lora_A", "lora_B")}
    assert "trainable of" in str(report)


def test_inject_errors_name_the_problem():
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"no Linear layer matches nothing.*h\.0\.attn\.c_attn"):
        lora.inject_lora(model, rank=2, targets="nothing")
    with pytest.raises(ValueError, match="rank must be a positive int"):
        lora.inject_lora(model, rank=0)
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen by the failure
    lora.inject_lora(model, rank=2)
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        lora.inject_lora(model, rank=2)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        lora.merge_lora(tiny_gpt())


def torch_lora_twin(torch, model, rank, alpha):
    """The PyTorch GPT twin with a plain PyTorch adapter on the same layers, same weights."""
    from tests.torch_gpt import TorchGPT

    class TorchLoRALinear(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.weight, self.bias = base.weight, base.bias
            self.lora_A = torch.nn.Parameter(torch.zeros(rank, base.in_features))
            self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

        def forward(self, x):
            out = torch.nn.functional.linear(x, self.weight, self.bias)
            return out + (x @ self.lora_A.T @ self.lora_B.T) * (alpha / rank)

    twin = TorchGPT(model.config)
    for name in lora.lora_modules(model):
        parent_name, _, child = name.rpartition(".")
        parent = twin.get_submodule(parent_name)
        setattr(parent, child, TorchLoRALinear(getattr(parent, child)))
    twin = twin.to(torch.float64)
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()).to(torch.float64)
                          for k, v in model.state_dict().items()})
    twin.requires_grad_(False)
    for name, p in twin.named_parameters():
        p.requires_grad_("lora_" in name)
    return twin


@pytest.mark.parametrize("targets", ["attention", "all"])
def test_matches_a_pytorch_adapter_in_logits_and_adapter_gradients(torch, targets):
    model = tiny_gpt()
    lora.inject_lora(model, rank=3, alpha=5.0, targets=targets, generator=mg.Generator(2))
    randomise_b(model)
    twin = torch_lora_twin(torch, model, 3, 5.0)
    x, y = ids(1), ids(2)
    logits, loss = model(mg.tensor(x), mg.tensor(y))
    loss.backward()
    t_logits, t_loss = twin(torch.from_numpy(x), torch.from_numpy(y))
    t_loss.backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    ours = dict(model.named_parameters())
    grads = {name: p.grad for name, p in twin.named_parameters() if p.requires_grad}
    assert len(grads) == 2 * len(lora.lora_modules(model))
    for name, grad in grads.items():
        np.testing.assert_allclose(ours[name].grad.numpy(), grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    frozen = [p for name, p in ours.items() if "lora_" not in name]
    assert all(p.grad is None for p in frozen)  # no weight gradient is even computed


def test_frozen_base_weights_are_bit_identical_after_training():
    model = tiny_gpt(dtype="float32")
    lora.inject_lora(model, rank=2, targets="all", dropout=0.1)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    groups = model.optimizer_groups(weight_decay=0.1)
    trained = [p for g in groups for p in g["params"]]
    assert len(trained) == 2 * len(lora.lora_modules(model))  # optimizer sees adapters only
    opt = optim.AdamW(groups, lr=1e-2)
    model.train()
    losses = []
    for _ in range(15):
        _, loss = model(mg.tensor(ids(1)), mg.tensor(ids(2)))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    after = model.state_dict()
    for name, value in before.items():
        if "lora_" in name:
            assert not np.array_equal(after[name].numpy(), value), name
        else:
            np.testing.assert_array_equal(after[name].numpy(), value, err_msg=name)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_merge_gives_the_adapted_logits_and_unmerge_restores_the_base(dtype, tol):
    model = tiny_gpt(dtype=dtype)
    base_weights = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    lora.inject_lora(model, rank=2, alpha=4.0, targets="all")
    randomise_b(model)
    model.eval()
    x = mg.tensor(ids(3))
    adapted = model(x)[0].numpy()
    lora.merge_lora(model)
    merged = model(x)[0].numpy()
    np.testing.assert_allclose(merged, adapted, rtol=tol, atol=tol)
    for name, m in lora.lora_modules(model).items():  # merged: one matmul, W + s B A
        expected = base_weights[f"{name}.weight"] + m.scaling * (m.lora_B.numpy()
                                                                 @ m.lora_A.numpy())
        np.testing.assert_allclose(m.weight.numpy(), expected, rtol=tol, atol=tol)
    with pytest.raises(RuntimeError, match="already merged"):
        lora.merge_lora(model)
    with pytest.raises(RuntimeError, match="unmerge"), lora.adapters_disabled(model):
        pass
    lora.unmerge_lora(model)
    np.testing.assert_allclose(model(x)[0].numpy(), adapted, rtol=tol, atol=tol)
    for name, value in base_weights.items():
        np.testing.assert_allclose(model.state_dict()[name].numpy(), value, rtol=tol, atol=tol)


def test_adapters_disabled_computes_the_base_model():
    model = tiny_gpt()
    x = mg.tensor(ids(3))
    base = model(x)[0].numpy()
    lora.inject_lora(model, rank=2, targets="all")
    randomise_b(model)
    adapted = model(x)[0].numpy()
    assert not np.allclose(adapted, base)
    with lora.adapters_disabled(model):
        np.testing.assert_array_equal(model(x)[0].numpy(), base)
    np.testing.assert_array_equal(model(x)[0].numpy(), adapted)


def test_adapters_save_alone_and_load_onto_a_fresh_base(tmp_path):
    model = tiny_gpt()
    base_state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    lora.inject_lora(model, rank=2, alpha=3.0, targets="attention,mlp")
    randomise_b(model)
    x = mg.tensor(ids(4))
    adapted = model(x)[0].numpy()
    path = tmp_path / "adapters.safetensors"
    lora.save_adapters(model, path)
    tensors, _ = io.read_safetensors(path)
    assert set(tensors) == set(lora.adapter_state_dict(model))
    assert all("lora_" in k for k in tensors)

    fresh = tiny_gpt(seed=9)
    fresh.load_state_dict(base_state)
    report = lora.load_adapters(fresh, path)
    assert sorted(report.modules) == sorted(lora.lora_modules(model))
    assert lora.lora_modules(fresh)["h.0.attn.c_attn"].alpha == 3.0
    np.testing.assert_array_equal(fresh(x)[0].numpy(), adapted)
    lora.load_adapters(fresh, path)  # onto existing adapters at the same layers

    other = tiny_gpt()
    lora.inject_lora(other, rank=2, targets="mlp")
    with pytest.raises(ValueError, match="adapts"):
        lora.load_adapters(other, path)
    plain = tmp_path / "plain.safetensors"
    io.save_safetensors(tiny_gpt().state_dict(), plain)
    with pytest.raises(ValueError, match="holds no LoRA adapters"):
        lora.load_adapters(tiny_gpt(), plain)


def test_remove_lora_leaves_a_plain_model_with_the_merged_weights():
    model = tiny_gpt()
    lora.inject_lora(model, rank=2, targets="all")
    randomise_b(model)
    x = mg.tensor(ids(3))
    adapted = model(x)[0].numpy()
    lora.remove_lora(model)
    assert not lora.lora_modules(model)
    assert all(type(m) is nn.Linear for n, m in model.named_modules() if n.endswith("c_fc"))
    np.testing.assert_allclose(model(x)[0].numpy(), adapted, rtol=1e-12, atol=1e-12)
    plain = tiny_gpt(seed=4)
    plain.load_state_dict(model.state_dict())  # the same names as a model never adapted


def test_adapters_attach_to_a_base_loaded_from_a_hugging_face_checkpoint(tmp_path):
    from gpt.pretrained import load_pretrained, save_pretrained

    save_pretrained(tiny_gpt(dtype="float32"), tmp_path / "hf")  # GPT-2 layout on disk
    model = load_pretrained(tmp_path / "hf")
    lora.inject_lora(model, rank=2, targets="attention,mlp")
    randomise_b(model)
    x = mg.tensor(ids(5))
    adapted = model(x)[0].numpy()
    lora.save_adapters(model, tmp_path / "adapters.safetensors")
    fresh = load_pretrained(tmp_path / "hf")
    lora.load_adapters(fresh, tmp_path / "adapters.safetensors")
    np.testing.assert_array_equal(fresh(x)[0].numpy(), adapted)
