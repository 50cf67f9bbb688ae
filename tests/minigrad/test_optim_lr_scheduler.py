"""Learning-rate schedules against their closed forms (and torch where it has the same)."""

import math

import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.optim import lr_scheduler as sched


def _optimizer(lrs=(0.1,)):
    return optim.SGD([{"params": [nn.Parameter(mg.zeros(1))], "lr": lr} for lr in lrs], lr=1.0)


def _lrs(scheduler, steps):
    """The lr of each group at steps 0 .. steps-1, stepping as a training loop does."""
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in scheduler.optimizer.param_groups])
        assert out[-1] == scheduler.get_last_lr()
        scheduler.step()
    return out


def test_warmup_cosine_closed_form():
    base, floor, warmup, total = 0.5, 0.05, 4, 14
    got = _lrs(sched.WarmupCosine(_optimizer((base,)), warmup, total, floor), 18)
    for step, (lr,) in enumerate(got):
        if step < warmup:
            expected = base * (step + 1) / warmup
        elif step >= total:
            expected = floor
        else:
            expected = floor + 0.5 * (base - floor) * (
                1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        assert lr == pytest.approx(expected, rel=1e-12)
    assert got[warmup - 1] == [pytest.approx(base)] and got[warmup] == [pytest.approx(base)]
    assert got[total] == [floor]
    assert sched.warmup_cosine_lr(9, base, warmup, total, floor) == pytest.approx(got[9][0])


def test_linear_decay_closed_form_and_groups():
    got = _lrs(sched.LinearDecay(_optimizer((0.4, 0.2)), total_steps=10, min_lr=0.0,
                                 warmup_steps=2), 12)
    for step, lrs in enumerate(got):
        for lr, base in zip(lrs, (0.4, 0.2)):
            if step < 2:
                expected = base * (step + 1) / 2
            else:
                expected = base * max(0.0, 1 - (step - 2) / 8)
            assert lr == pytest.approx(expected, abs=1e-15)
    assert sched.linear_decay_lr(6, 1.0, 10) == pytest.approx(0.4)


def test_constant_and_lambda_match_pytorch(torch):
    theirs_param = torch.zeros(1, requires_grad=True)
    for ours, theirs in [
        (lambda o: sched.Constant(o, factor=0.25, total_steps=3),
         lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.25, total_iters=3)),
        (lambda o: sched.Constant(o), lambda o: torch.optim.lr_scheduler.ConstantLR(o, 1.0, 0)),
        (lambda o: sched.LambdaLR(o, lambda s: 0.9 ** s),
         lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 0.9 ** s)),
    ]:
        got = [lr for (lr,) in _lrs(ours(_optimizer((0.3,))), 8)]
        t_opt = torch.optim.SGD([theirs_param], lr=0.3)
        t_sched = theirs(t_opt)
        expected = []
        for _ in range(8):
            expected.append(t_opt.param_groups[0]["lr"])
            t_opt.step()
            t_sched.step()
        assert got == pytest.approx(expected, rel=1e-12)


def test_lambda_takes_pytorchs_keyword():
    scheduler = sched.LambdaLR(_optimizer((0.4,)), lr_lambda=lambda s: 0.5 ** s)
    assert _lrs(scheduler, 3) == [[0.4], [0.2], [0.1]]


def test_lambda_per_group():
    got = _lrs(sched.LambdaLR(_optimizer((1.0, 2.0)), [lambda s: s, lambda s: 1 / (s + 1)]), 3)
    assert got == [[0.0, 2.0], [1.0, 1.0], [2.0, 2 / 3]]
    with pytest.raises(ValueError, match="1 functions for 2 param groups"):
        sched.LambdaLR(_optimizer((1.0, 2.0)), [lambda s: s])


def test_state_dict_resumes_the_schedule():
    first = sched.WarmupCosine(_optimizer((0.1,)), 3, 20, 0.01)
    for _ in range(7):
        first.step()
    state = first.state_dict()
    assert state == {"base_lrs": [0.1], "last_step": 7, "warmup_steps": 3, "total_steps": 20,
                     "min_lr": 0.01}
    optimizer = _optimizer((0.1,))
    optimizer.param_groups[0]["lr"] = 0.0123  # as loaded from a decayed optimizer state
    second = sched.WarmupCosine(optimizer, 3, 20, 0.01)
    second.load_state_dict(state)
    assert _lrs(second, 5) == _lrs(first, 5)


def test_lambda_state_dict_leaves_out_the_function():
    assert "fns" not in sched.LambdaLR(_optimizer(), lambda s: 1.0).state_dict()


def test_bad_step_counts():
    with pytest.raises(ValueError, match="WarmupCosine: need 0 <= warmup_steps < total_steps"):
        sched.WarmupCosine(_optimizer(), 10, 10)
    with pytest.raises(ValueError, match="LinearDecay: need"):
        sched.LinearDecay(_optimizer(), 0)
