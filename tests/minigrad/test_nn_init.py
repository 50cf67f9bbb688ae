"""Initialisers: in place, seeded, with the variances (and gains, fans) PyTorch uses."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn


def _param(shape, device="cpu", dtype="float32"):
    return nn.Parameter(mg.zeros(*shape, device=device, dtype=dtype))


@pytest.mark.parametrize("name,kwargs,std", [
    ("xavier_uniform_", {}, math.sqrt(2 / (200 + 100))),
    ("xavier_normal_", {"gain": 2.0}, 2 * math.sqrt(2 / (200 + 100))),
    ("kaiming_uniform_", {}, math.sqrt(2) / math.sqrt(100)),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / 200)),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, 1 / math.sqrt(3 * 100)),
    ("normal_", {"mean": 1.0, "std": 0.02}, 0.02),
])
def test_scaled_initialisers_have_the_documented_spread(device, name, kwargs, std):
    p = _param((200, 100), device)
    out = getattr(nn.init, name)(p, generator=mg.Generator(0, device), **kwargs)
    assert out is p
    values = p.numpy()
    assert abs(values.std() - std) < 0.03 * std
    assert abs(values.mean() - kwargs.get("mean", 0.0)) < 0.05 * std
    if "uniform" in name:
        assert np.abs(values).max() <= math.sqrt(3) * std * (1 + 1e-6)


def test_uniform_bounds_and_constant_fills(device):
    p = _param((50, 40), device)
    nn.init.uniform_(p, -0.5, 2.0, generator=mg.Generator(1, device))
    assert p.numpy().min() >= -0.5 and p.numpy().max() < 2.0
    assert p.numpy().max() - p.numpy().min() > 2.4
    np.testing.assert_array_equal(nn.init.ones_(p).numpy(), np.ones((50, 40)))
    np.testing.assert_array_equal(nn.init.zeros_(p).numpy(), np.zeros((50, 40)))
    np.testing.assert_array_equal(nn.init.constant_(p, 3.0).numpy(), np.full((50, 40), 3.0))


def test_same_seed_same_values_and_dtype_kept():
    a, b = _param((3, 4), dtype="float64"), _param((3, 4), dtype="float64")
    nn.init.normal_(a, generator=mg.Generator(7))
    nn.init.normal_(b, generator=mg.Generator(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.float64


def test_fans_follow_pytorch_convention():
    assert nn.init.fans((8, 3)) == (3, 8)
    assert nn.init.fans((8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="xavier_uniform_: .*at least 2 dims.*\\(5,\\)"):
        nn.init.xavier_uniform_(_param((5,)))


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("selu", None)])
def test_gains_match_pytorch(nonlinearity, param, torch):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        nn.init.kaiming_normal_(_param((2, 2)), mode="fan")
    with pytest.raises(ValueError, match="generator is on cpu but the tensor is on strict"):
        nn.init.normal_(_param((2, 2), "strict"), generator=mg.Generator(0))


def test_init_writes_into_an_optimizer_view():
    # After an optimizer step parameters may be views into a flat buffer: init must
    # write through them, not rebind.
    model = nn.Linear(2, 2)
    model(mg.ones(1, 2)).sum().backward()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1)
    optimizer.step()
    data = model.weight.data
    nn.init.zeros_(model.weight)
    assert model.weight.data is data
    model.weight.grad = mg.ones(2, 2)
    model.bias.grad = mg.ones(2)
    optimizer.step()
    np.testing.assert_allclose(model.weight.numpy(), np.full((2, 2), -0.1), rtol=1e-6)
