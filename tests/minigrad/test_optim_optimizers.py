"""SGD, Adam and AdamW: 20-step trajectories against torch.optim (float64), on the flat
and per-parameter paths and the 'strict' device; groups, state dicts, layout changes."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim

torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")

RNG = np.random.default_rng(0)
INIT = [RNG.standard_normal((3, 4)), RNG.standard_normal(4), RNG.standard_normal(4)]
X, Y = RNG.standard_normal((5, 3)), RNG.standard_normal(5)
STEPS = 20

# (device, flat): the flat-buffer path, the per-parameter path, the view-less device.
PATHS = [("cpu", None), ("cpu", False), ("strict", None)]


def _loss(params, x, y):
    w, b, v = params
    return ((((x @ w + b).tanh() @ v) - y) ** 2).mean()


def _groups(params, group_options):
    """group_options None: one plain list; else [(indices, options), ...]."""
    if group_options is None:
        return params
    return [{"params": [params[i] for i in idx], **opts} for idx, opts in group_options]


def run_minigrad(make, device="cpu", flat=None, group_options=None, steps=STEPS):
    params = [nn.Parameter(mg.tensor(a.copy(), device=device)) for a in INIT]
    optimizer = make(_groups(params, group_options), flat)
    x, y = mg.tensor(X, device=device), mg.tensor(Y, device=device)
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(params, x, y).backward()
        optimizer.step()
    return [p.numpy() for p in params], optimizer


def run_torch(make, group_options=None, steps=STEPS):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in INIT]
    optimizer = make(_groups(params, group_options))
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(params, x, y).backward()
        optimizer.step()
    return [p.detach().numpy() for p in params]


CASES = {
    "sgd": (optim.SGD, torch.optim.SGD, {"lr": 0.1}),
    "sgd_momentum": (optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "sgd_nesterov": (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8,
                                                  "nesterov": True}),
    "sgd_wd": (optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}),
    "sgd_dampening": (optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.3,
                                                   "weight_decay": 0.05}),
    "adam": (optim.Adam, torch.optim.Adam, {"lr": 0.05}),
    "adam_wd": (optim.Adam, torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99),
                                               "weight_decay": 0.1}),
    "adamw": (optim.AdamW, torch.optim.AdamW, {"lr": 0.05}),
    "adamw_no_wd": (optim.AdamW, torch.optim.AdamW,
                    {"lr": 0.05, "weight_decay": 0.0, "eps": 1e-6}),
}


@pytest.mark.parametrize("device,flat", PATHS)
@pytest.mark.parametrize("case", CASES)
def test_trajectory_matches_pytorch(case, device, flat):
    ours, theirs, options = CASES[case]
    got, _ = run_minigrad(lambda p, flat: ours(p, flat=flat, **options), device, flat)
    expected = run_torch(lambda p: theirs(p, **options))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    assert not np.allclose(got[0], INIT[0])  # it did move


@pytest.mark.parametrize("case", ["sgd_nesterov", "adam_wd", "adamw"])
def test_flat_update_in_small_blocks_matches_pytorch(case, monkeypatch):
    # 64-byte blocks: the 20-number flat buffer is updated in 3 blocks of up to 8.
    monkeypatch.setattr(mg.get_device("cpu"), "block_bytes", 64)
    ours, theirs, options = CASES[case]
    got, optimizer = run_minigrad(lambda p, flat: ours(p, flat=flat, **options))
    (bucket,) = optimizer._buckets[0]
    assert [block.segments for block in bucket.blocks] == [
        [(0, 0, 8)], [(0, 8, 12), (1, 0, 4)], [(2, 0, 4)]]
    expected = run_torch(lambda p: theirs(p, **options))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ours,theirs,args", [
    (optim.SGD, torch.optim.SGD, (0.1, 0.9, 0.3)),  # lr, momentum, dampening
    (optim.SGD, torch.optim.SGD, (0.1, 0.9, 0.0, 0.1, True)),  # ..., weight_decay, nesterov
    (optim.AdamW, torch.optim.AdamW, (0.05, (0.8, 0.99), 1e-6, 0.1)),
])
def test_positional_arguments_follow_pytorch(ours, theirs, args):
    got, _ = run_minigrad(lambda p, flat: ours(p, *args))
    expected = run_torch(lambda p: theirs(p, *args))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_amsgrad_is_refused_not_ignored(make):
    params = [nn.Parameter(mg.zeros(2))]
    with pytest.raises(NotImplementedError, match="amsgrad"):
        make(params, 1e-3, (0.9, 0.999), 1e-8, 0.0, True)  # PyTorch's positional amsgrad
    with pytest.raises(NotImplementedError, match="amsgrad"):
        make(params, amsgrad=True)


GROUPS = [((0,), {"weight_decay": 0.2}), ((1, 2), {"weight_decay": 0.0, "lr": 0.02})]


@pytest.mark.parametrize("device,flat", PATHS)
@pytest.mark.parametrize("case", ["sgd_wd", "adam_wd", "adamw"])
def test_param_groups_match_pytorch(case, device, flat):
    ours, theirs, options = CASES[case]
    got, optimizer = run_minigrad(lambda p, flat: ours(p, flat=flat, **options), device, flat,
                                  GROUPS)
    expected = run_torch(lambda p: theirs(p, **options), GROUPS)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.2, 0.0]
    assert optimizer.param_groups[1]["lr"] == 0.02
    assert optimizer.param_groups[0]["lr"] == options["lr"]


def test_parameters_without_grad_are_skipped_like_pytorch():
    # The bias gets no gradient on odd steps: flat buckets fall back to per-parameter.
    def run(make, tensor, step_fn):
        params = [tensor(a) for a in INIT]
        optimizer = make(params)
        for i in range(6):
            optimizer.zero_grad()
            step_fn(params, i)
            optimizer.step()
        return params, optimizer

    def ours_step(params, i):
        w, b, v = params
        x = mg.tensor(X)
        out = (x @ w).tanh() @ v if i % 2 else (x @ w + b).tanh() @ v
        out.sum().backward()

    def theirs_step(params, i):
        w, b, v = params
        x = torch.from_numpy(X)
        out = (x @ w).tanh() @ v if i % 2 else (x @ w + b).tanh() @ v
        out.sum().backward()

    got, optimizer = run(lambda p: optim.AdamW(p, lr=0.1),
                         lambda a: nn.Parameter(mg.tensor(a.copy())), ours_step)
    expected, _ = run(lambda p: torch.optim.AdamW(p, lr=0.1),
                      lambda a: torch.tensor(a.copy(), requires_grad=True), theirs_step)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.detach().numpy(), rtol=1e-10)
    assert [optimizer.state[p]["step"] for p in got] == [6, 3, 6]


def test_flat_layout_makes_parameters_views_of_one_buffer():
    params = [nn.Parameter(mg.tensor(a.copy())) for a in INIT]
    optimizer = optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = mg.ones_like(p)
    optimizer.step()
    flat = params[0].data.base
    assert flat is not None and flat.shape == (20,)
    assert all(p.data.base is flat for p in params)
    moments = [optimizer.state[p]["exp_avg"].base for p in params]
    assert moments[0] is not None and all(m is moments[0] for m in moments)


def test_model_moved_after_optimizer_creation_keeps_training():
    def trajectory(move):
        model = nn.Linear(3, 2, generator=mg.Generator(0), dtype="float64")
        optimizer = optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
        x = mg.tensor(X, dtype="float64")
        for i in range(6):
            if i == 3 and move:
                model.to("strict")
                x = x.to("strict")
            optimizer.zero_grad()
            model(x).sum().backward()
            optimizer.step()
        return [p.numpy() for p in model.parameters()], model

    stayed, _ = trajectory(False)
    moved, model = trajectory(True)
    assert all(p.device == "strict" for p in model.parameters())
    for a, b in zip(stayed, moved):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# -- state dicts ------------------------------------------------------------------------
@pytest.mark.parametrize("device,flat", PATHS)
@pytest.mark.parametrize("case", ["sgd_nesterov", "adamw"])
def test_state_dict_resume_is_bit_exact(case, device, flat):
    ours, _, options = CASES[case]
    make = lambda p, flat: ours(p, flat=flat, **options)  # noqa: E731
    straight, _ = run_minigrad(make, device, flat, GROUPS, steps=8)

    params = [nn.Parameter(mg.tensor(a.copy(), device=device)) for a in INIT]
    first = make(_groups(params, GROUPS), flat)
    x, y = mg.tensor(X, device=device), mg.tensor(Y, device=device)
    for _ in range(4):
        first.zero_grad()
        _loss(params, x, y).backward()
        first.step()
    saved = first.state_dict()
    saved = {"param_groups": saved["param_groups"],  # a host snapshot, as a file holds it
             "state": {i: {k: v.numpy().copy() if hasattr(v, "numpy") else v
                           for k, v in s.items()} for i, s in saved["state"].items()}}
    resumed_params = [nn.Parameter(mg.tensor(p.numpy(), device=device)) for p in params]
    resumed = make(_groups(resumed_params, [(i, {}) for i, _ in GROUPS]), flat)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["weight_decay"] == 0.2
    for _ in range(4):
        resumed.zero_grad()
        _loss(resumed_params, x, y).backward()
        resumed.step()
    for a, b in zip(straight, resumed_params):
        np.testing.assert_array_equal(a, b.numpy())


def test_state_dict_layout():
    _, optimizer = run_minigrad(lambda p, flat: optim.Adam(p, lr=0.1), steps=2)
    state = optimizer.state_dict()
    assert state["param_groups"] == [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                                      "weight_decay": 0.0, "params": [0, 1, 2]}]
    assert sorted(state["state"]) == [0, 1, 2]
    assert state["state"][1]["step"] == 2 and state["state"][1]["exp_avg"].shape == (4,)


def test_load_state_dict_errors():
    _, optimizer = run_minigrad(lambda p, flat: optim.Adam(p, lr=0.1), steps=1)
    state = optimizer.state_dict()
    fresh = optim.Adam([nn.Parameter(mg.zeros(2))])
    with pytest.raises(ValueError, match="group 0 has 3 parameters saved, 1 in the optimizer"):
        fresh.load_state_dict(state)
    other = optim.Adam([nn.Parameter(mg.zeros(3, 4)), nn.Parameter(mg.zeros(5)),
                        nn.Parameter(mg.zeros(4))])
    with pytest.raises(ValueError, match="'exp_avg' of parameter 1 has shape \\(4,\\), the "
                                         "parameter \\(5,\\)"):
        other.load_state_dict(state)


# -- behaviour --------------------------------------------------------------------------
@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    _, optimizer = run_minigrad(lambda p, flat: optim.SGD(p, lr=0.1), steps=1)
    params = optimizer.param_groups[0]["params"]
    _loss(params, mg.tensor(X), mg.tensor(Y)).backward()
    optimizer.zero_grad(set_to_none=set_to_none)
    for p in params:
        if set_to_none:
            assert p.grad is None
        else:
            assert not p.grad.numpy().any()


def test_step_with_closure_returns_loss():
    params = [nn.Parameter(mg.tensor(a.copy())) for a in INIT]
    optimizer = optim.SGD(params, lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = _loss(params, mg.tensor(X), mg.tensor(Y))
        loss.backward()
        return loss

    with mg.no_grad():  # the closure re-enables grad for itself
        first = optimizer.step(closure).item()
    assert optimizer.step(closure).item() < first


def test_adamw_routes_through_the_device_primitive(monkeypatch):
    calls = []

    def kernel(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step):
        calls.append((param.shape, lr, beta1, beta2, eps, weight_decay, step))
        param -= lr  # a recognisable update

    monkeypatch.setattr(mg.get_device("cpu"), "adamw_update", kernel)
    params = [nn.Parameter(mg.tensor(a.copy())) for a in INIT]
    optimizer = optim.AdamW(params, lr=0.5, weight_decay=0.1)
    for p in params:
        p.grad = mg.ones_like(p)
    optimizer.step()
    optimizer.step()
    assert calls == [((20,), 0.5, 0.9, 0.999, 1e-8, 0.1, 1), ((20,), 0.5, 0.9, 0.999, 1e-8, 0.1, 2)]
    np.testing.assert_allclose(params[0].numpy(), INIT[0] - 1.0)


def test_bad_arguments_are_named():
    p = nn.Parameter(mg.zeros(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas must be two numbers in \\[0, 1\\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="appears more than once"):
        optim.AdamW([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="unknown hyperparameter\\(s\\) \\['momentum'\\]"):
        optim.Adam([{"params": [p], "momentum": 0.9}])
    with pytest.raises(TypeError, match="not floating point"):
        optim.SGD([mg.arange(3)], lr=0.1)
