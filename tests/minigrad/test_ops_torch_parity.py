"""Every op's forward and backward against PyTorch on the same inputs and the same
upstream gradient: float64 to ~1e-12, float32 to its own rounding. Shapes and dtypes of
outputs and gradients must match exactly. The table of ops is `op_specs.OP_SPECS`."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from op_specs import (
    OP_SETTINGS,
    OP_SPECS,
    as_tuple,
    draw_inputs,
    minigrad_inputs,
    params_for,
    torch_inputs,
)

import minigrad as mg

TOLERANCES = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 2e-5, "atol": 2e-6}}


def assert_same(ours: mg.Tensor, theirs: torch.Tensor, dtype: str, what: str) -> None:
    assert ours.shape == tuple(theirs.shape), f"{what}: shape {ours.shape} vs {theirs.shape}"
    assert mg.backend.dtype_name(ours.dtype) == dtype, f"{what}: dtype {ours.dtype}"
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), equal_nan=True,
                               err_msg=what, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda spec: spec.name)
@OP_SETTINGS
@given(data=st.data())
def test_forward_and_backward_match_torch(spec, dtype, device, data):
    case, arrays = draw_inputs(data, spec)
    ours_in = minigrad_inputs(case, arrays, device, dtype)
    theirs_in = torch_inputs(case, arrays, dtype)
    ours = as_tuple(spec.fn(*ours_in, **params_for(case.params,
                                                   lambda a: mg.tensor(a, device=device))))
    theirs = as_tuple(spec.torch_call(*theirs_in, **params_for(case.params, torch.from_numpy)))
    assert len(ours) == len(theirs)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        assert_same(o, t, dtype, f"{spec.name} output {k}")

    rng = np.random.default_rng(0)
    cotangents = [rng.standard_normal(t.shape).astype(dtype) for t in theirs]
    if len(ours) == 1:  # the op's own backward, seeded with an explicit upstream gradient
        ours[0].backward(cotangents[0])
    else:
        sum((o * mg.tensor(u, device=device)).sum() for o, u in zip(ours, cotangents)).backward()
    torch.autograd.backward(theirs, [torch.from_numpy(u) for u in cotangents])
    for i, (o, t) in enumerate(zip(ours_in, theirs_in)):
        if t.requires_grad:
            assert o.grad is not None, f"{spec.name}: no gradient for input {i}"
            assert_same(o.grad, t.grad, dtype, f"{spec.name} gradient of input {i}")
