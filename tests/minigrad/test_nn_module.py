"""Module: registration, traversal, modes, state dicts, hooks, devices, containers."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


class Block(nn.Module):
    def __init__(self, dim=4):
        super().__init__()
        self.fc = nn.Linear(dim, dim, generator=mg.Generator(0))
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(0.5)
        self.register_buffer("scale", mg.tensor([2.0]))
        self.register_buffer("cache", mg.zeros(3), persistent=False)

    def forward(self, x):
        return self.drop(self.norm(self.fc(x))) * self.scale


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3, generator=mg.Generator(1))
        self.head = nn.Linear(3, 5, bias=False, generator=mg.Generator(2))
        self.head.weight = self.embed.weight


def test_registration_order_and_names():
    block = Block()
    assert [n for n, _ in block.named_parameters()] == [
        "fc.weight", "fc.bias", "norm.weight", "norm.bias"]
    assert [n for n, _ in block.named_buffers()] == ["scale", "cache"]
    assert [n for n, _ in block.named_modules()] == ["", "fc", "norm", "drop"]
    assert [type(c).__name__ for c in block.children()] == ["Linear", "LayerNorm", "Dropout"]
    assert block.num_parameters() == 4 * 4 + 4 + 4 + 4


def test_tied_weights_counted_once_but_saved_under_each_name():
    model = Tied()
    assert len(list(model.parameters())) == 1
    assert model.num_parameters() == 15
    assert set(model.state_dict()) == {"embed.weight", "head.weight"}


def test_reassignment_changes_kind_and_rejects_plain_tensor_for_parameter():
    block = Block()
    with pytest.raises(TypeError, match="fc.*weight|weight is a parameter"):
        block.fc.weight = mg.zeros(4, 4)
    block.fc.bias = None
    assert [n for n, _ in block.fc.named_parameters()] == ["weight"]
    block.fc = 3  # a plain attribute now: no longer a submodule
    assert "fc" not in dict(block.named_children()) and block.fc == 3
    del block.norm
    assert [n for n, _ in block.named_children()] == ["drop"]


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.zeros(2))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Broken()


def test_train_eval_reach_every_submodule():
    block = Block()
    assert all(m.training for m in block.modules())
    assert block.eval() is block
    assert not any(m.training for m in block.modules())
    x = mg.randn(2, 4, generator=mg.Generator(3))
    np.testing.assert_array_equal(block(x).numpy(), block(x).numpy())  # dropout off
    block.train()
    assert all(m.training for m in block.modules())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    block = Block()
    block(mg.randn(2, 4, generator=mg.Generator(4))).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad(set_to_none=set_to_none)
    for p in block.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape))


def test_zero_grad_never_writes_into_a_shared_gradient_array():
    w = nn.Parameter(mg.zeros(3))
    upstream = mg.ones(3)
    w.backward(upstream)  # w.grad holds the caller's array itself
    model = nn.Module()
    model.w = w
    model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(upstream.numpy(), np.ones(3))


def test_apply_visits_children_first():
    block = Block()
    seen = []
    assert block.apply(lambda m: seen.append(type(m).__name__)) is block
    assert seen == ["Linear", "LayerNorm", "Dropout", "Block"]


def test_apply_with_init_changes_weights_in_place():
    block = Block()
    weight = block.fc.weight
    block.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert block.fc.weight is weight
    np.testing.assert_array_equal(weight.numpy(), np.zeros((4, 4)))


def test_repr_is_nested_and_readable():
    model = nn.Sequential(nn.Linear(2, 3), nn.GELU(approximate="tanh"), nn.RMSNorm(3))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): GELU(approximate='tanh')\n"
        "  (2): RMSNorm((3,), eps=1e-06, elementwise_affine=True)\n"
        ")")
    assert repr(Block()).startswith("Block(\n  (fc): Linear(in_features=4")
    assert repr(nn.Parameter(mg.zeros(1))).startswith("Parameter containing:\ntensor(")


# -- state dicts ------------------------------------------------------------------------
def test_state_dict_round_trip_is_bit_exact_and_in_place():
    source, target = Block(), Block()
    for p in source.parameters():
        nn.init.normal_(p, generator=mg.Generator(5))
    source.scale.data[...] = 7.0
    before = {n: p for n, p in target.named_parameters()}
    state = source.state_dict()
    assert set(state) == {"fc.weight", "fc.bias", "norm.weight", "norm.bias", "scale"}
    assert all(t.grad is None and not t.requires_grad for t in state.values())
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, t in target.state_dict().items():
        np.testing.assert_array_equal(t.numpy(), state[name].numpy())
    assert all(before[n] is p for n, p in target.named_parameters())


def test_load_state_dict_accepts_arrays_and_casts_dtype():
    model = nn.Linear(2, 2)
    state = {"weight": np.arange(4.0).reshape(2, 2), "bias": np.array([1.0, 2.0])}
    model.load_state_dict(state)
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.weight.numpy(), state["weight"].astype(np.float32))


def test_load_state_dict_errors_list_every_problem_and_change_nothing():
    model = Block()
    good = {n: t.numpy().copy() for n, t in model.state_dict().items()}
    state = dict(good)
    del state["fc.bias"]
    state["extra.weight"] = np.zeros(2)
    state["norm.weight"] = np.zeros(5)
    state["fc.weight"] = np.ones((4, 4))
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys (1): fc.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "mis-shaped keys (1): norm.weight: checkpoint (5,) vs model (4,)" in message
    np.testing.assert_array_equal(model.fc.weight.numpy(), good["fc.weight"])


def test_load_state_dict_non_strict_reports_keys_but_still_rejects_shapes():
    model = Block()
    state = model.state_dict()
    del state["fc.bias"]
    state["other"] = mg.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result == (["fc.bias"], ["other"])
    state["norm.bias"] = mg.zeros(7)
    with pytest.raises(RuntimeError, match="mis-shaped"):
        model.load_state_dict(state, strict=False)


# -- hooks ------------------------------------------------------------------------------
def test_forward_hooks_see_and_replace_inputs_and_outputs():
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, inputs: calls.append(("pre", m)) or
                                          (inputs[0] * 0,))
    post = layer.register_forward_hook(lambda m, inputs, out: calls.append(("post", out.shape))
                                       or out + 1)
    out = layer(mg.ones(3, 2))
    assert calls == [("pre", layer), ("post", (3, 2))]
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.bias.numpy() + 1, (3, 2)))
    pre.remove()
    post.remove()
    np.testing.assert_allclose(layer(mg.zeros(1, 2)).numpy(), layer.bias.numpy()[None])
    assert len(calls) == 2


def test_hook_handle_as_context_manager():
    layer = nn.ReLU()
    seen = []
    with layer.register_forward_hook(lambda m, i, o: seen.append(1)):
        layer(mg.ones(1))
    layer(mg.ones(1))
    assert seen == [1]


# -- devices ----------------------------------------------------------------------------
def test_to_moves_parameters_buffers_and_grads_keeping_identity():
    block = Block()
    block(mg.randn(2, 4, generator=mg.Generator(6))).sum().backward()
    params = list(block.parameters())
    expected = [p.numpy() for p in params]
    assert block.to("strict") is block
    assert all(a is b for a, b in zip(block.parameters(), params))
    for p, e in zip(params, expected):
        assert p.device == "strict" and p.grad.device == "strict"
        np.testing.assert_array_equal(p.numpy(), e)
    assert block.scale.device == "strict" and block.cache.device == "strict"
    block.to("cpu", dtype="float64")
    assert all(p.dtype == np.float64 and p.device == "cpu" for p in params)


def test_to_dtype_leaves_integer_buffers_alone():
    model = nn.Module()
    model.register_buffer("ids", mg.arange(3))
    model.w = nn.Parameter(mg.zeros(2))
    model.to(dtype="float64")
    assert model.ids.dtype == np.int64 and model.w.dtype == np.float64


def test_double_and_float_cast_in_place_and_return_the_module():
    model = nn.Linear(3, 2)
    weight = model.weight
    assert model.double() is model and weight.dtype == np.float64
    assert model.float() is model and weight.dtype == np.float32
    assert model.weight is weight


# -- containers -------------------------------------------------------------------------
def test_sequential_runs_in_order_and_slices():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = mg.randn(5, 3, generator=mg.Generator(7))
    expected = model[2](model[1](model[0](x)))
    np.testing.assert_array_equal(model(x).numpy(), expected.numpy())
    assert len(model) == 3 and isinstance(model[:2], nn.Sequential) and len(model[:2]) == 2
    assert model[-1] is model[2]
    with pytest.raises(IndexError, match="index 3 out of range for length 3"):
        model[3]


def test_module_list_registers_and_edits():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    layers.append(nn.Linear(2, 3))
    layers.insert(0, nn.ReLU())
    assert [n for n, _ in layers.named_children()] == ["0", "1", "2", "3"]
    assert isinstance(layers[0], nn.ReLU) and len(list(layers.parameters())) == 6
    layers[0] = nn.SiLU()
    assert isinstance(layers[0], nn.SiLU)
    with pytest.raises(TypeError, match="must be a Module"):
        layers.append(3)


def test_module_dict():
    heads = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Linear(2, 1)})
    heads["c"] = nn.GELU()
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight",
                                                        "b.bias"]
    del heads["a"]
    assert list(heads.keys()) == ["b", "c"]
    with pytest.raises(KeyError, match="without '.'"):
        heads["x.y"] = nn.ReLU()


def test_deepcopy_gives_an_independent_model_on_the_same_device():
    import copy

    model = Block().to("strict")
    twin = copy.deepcopy(model)
    assert twin.fc.weight is not model.fc.weight and twin.fc.weight.device is model.fc.weight.device
    nn.init.zeros_(twin.fc.weight)
    assert model.fc.weight.numpy().any()
