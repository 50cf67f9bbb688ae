"""clip_grad_norm_ against torch.nn.utils.clip_grad_norm_, on both devices."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn

SHAPES = [(3, 4), (5,), (), (2, 1, 3)]


def _grads(scale: float, seed: int):
    rng = np.random.default_rng(seed)
    return [np.asarray(scale * rng.standard_normal(shape)) for shape in SHAPES]


def _with_grads(grads, device, dtype="float64"):
    params = []
    for g in grads:
        p = nn.Parameter(mg.zeros(g.shape, device=device, dtype=dtype))
        p.grad = mg.tensor(g, device=device, dtype=dtype)
        params.append(p)
    return params


@given(scale=st.sampled_from([1e-3, 0.5, 30.0]), max_norm=st.sampled_from([0.1, 1.0, 5.0]),
       norm_type=st.sampled_from([2.0, 1.0, 3.0, math.inf]), seed=st.integers(0, 10))
def test_matches_pytorch(scale, max_norm, norm_type, seed, torch):
    grads = _grads(scale, seed)
    ours = _with_grads(grads, "cpu")
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(theirs, grads):
        t.grad = torch.from_numpy(g.copy())
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_on_strict_without_host_transfers():
    device = mg.get_device("strict")
    params = _with_grads(_grads(10.0, 0), device, "float32")
    transfers = device.host_transfers
    total = nn.utils.clip_grad_norm_(params, 1.0)
    assert device.host_transfers == transfers and total.device == "strict"
    clipped = math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in params))
    assert clipped == pytest.approx(1.0, rel=1e-5)


def test_skips_params_without_grad_and_leaves_small_grads_alone():
    params = _with_grads(_grads(1e-3, 1), "cpu")
    params.append(nn.Parameter(mg.zeros(3)))
    before = [p.grad.numpy().copy() for p in params[:-1]]
    nn.utils.clip_grad_norm_(params, 1.0)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad.numpy(), b)
    assert params[-1].grad is None
    assert nn.utils.clip_grad_norm_([nn.Parameter(mg.zeros(2))], 1.0).item() == 0.0


def test_shared_gradient_arrays_are_scaled_once():
    # y = a + b hands the same upstream gradient array to both leaves.
    a, b = nn.Parameter(mg.zeros(4)), nn.Parameter(mg.zeros(4))
    (a + b).backward(mg.full((4,), 3.0))
    nn.utils.clip_grad_norm_([a, b], 1.0)
    expected = 3.0 / math.sqrt(2 * 4 * 9)
    np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), expected, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite(device, bad):
    grads = _grads(1.0, 2)
    grads[2] = np.array(bad)
    params = _with_grads(grads, device, "float32")
    with pytest.raises(RuntimeError, match=r"not finite; non-finite gradients in parameter\(s\) "
                                           r"#2 \(shape \(\)\)"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    total = nn.utils.clip_grad_norm_(params, 1.0)  # PyTorch's default: scale anyway
    assert not math.isfinite(total.item())


def test_bad_norm_type():
    with pytest.raises(ValueError, match="norm_type must be positive"):
        nn.utils.clip_grad_norm_(_with_grads(_grads(1.0, 0), "cpu"), 1.0, norm_type=0)


def _torch_grads(grads, torch):
    out = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(np.array(g))
        out.append(t)
    return out


def test_positional_arguments_follow_pytorch(torch):
    # PyTorch's order: (parameters, max_norm, norm_type, error_if_nonfinite, foreach).
    grads = _grads(3.0, 4)
    ours, theirs = _with_grads(grads, "cpu"), _torch_grads(grads, torch)
    total = nn.utils.clip_grad_norm_(ours, 0.5, 1.0, False, False)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, 1.0, False, False)
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_clip_grad_value_matches_pytorch(device, torch):
    grads = _grads(2.0, 5)
    grads[1][2] = math.nan  # NaN stays NaN
    ours, theirs = _with_grads(grads, device), _torch_grads(grads, torch)
    ours.append(nn.Parameter(mg.zeros(2, device=device)))  # no gradient: skipped
    assert nn.utils.clip_grad_value_(ours, 0.7, foreach=None) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    assert ours[-1].grad is None
