"""Every op's backward against central finite differences (float64), on random shapes
(broadcasting, size-1 axes, 0-d, empty axes where the op allows them), on 'cpu' and on
the GPU stand-in 'strict'. The table of ops is `op_specs.OP_SPECS`; ops with nothing to
differentiate (argmin, eye, one_hot) are compared by the other suites only
(`OpSpec.finite_differences`).

Needs only NumPy, pytest and hypothesis (test_layout.py runs it with PyTorch blocked)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_specs import OP_SETTINGS, OP_SPECS, call, draw_case, minigrad_inputs, minigrad_params

import minigrad as mg


@pytest.mark.parametrize("spec", [spec for spec in OP_SPECS if spec.finite_differences],
                         ids=lambda spec: spec.name)
@OP_SETTINGS
@given(data=st.data())
def test_backward_matches_finite_differences(spec, device, data):
    case = draw_case(data, spec)
    inputs = minigrad_inputs(case, device, "float64")
    # Parameters are made afresh for every evaluation: a generator then draws the same
    # numbers each time (dropout).
    assert mg.gradcheck(
        lambda *xs: call(spec.fn, case, xs, minigrad_params(case, device, "float64")),
        *inputs, atol=1e-6, rtol=1e-4)
