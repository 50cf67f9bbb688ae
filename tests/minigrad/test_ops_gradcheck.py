"""Every op's backward against central finite differences (float64), on random shapes
(broadcasting, size-1 axes, 0-d, empty axes where the op allows them), on 'cpu' and on
the GPU stand-in 'strict'. The table of ops is `op_specs.OP_SPECS`."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_specs import OP_SETTINGS, OP_SPECS, draw_inputs, minigrad_inputs, params_for

import minigrad as mg


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda spec: spec.name)
@OP_SETTINGS
@given(data=st.data())
def test_backward_matches_finite_differences(spec, device, data):
    case, arrays = draw_inputs(data, spec)
    inputs = minigrad_inputs(case, arrays, device, "float64")
    params = params_for(case.params, lambda a: mg.tensor(a, device=device))
    assert mg.gradcheck(lambda *xs: spec.fn(*xs, **params), *inputs)
