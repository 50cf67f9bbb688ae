"""The fused ops of minigrad.nn.functional against their composite twins: values and
gradients, float64, on 'cpu' and 'strict' (where the fused op must also make no host
transfer). The fused ops are the specs of `op_specs.OP_SPECS` that name a composite twin;
the same table runs them through finite differences, PyTorch parity and the strict
device with every other op. Op-specific behaviour (errors, stability, options) is in
test_functional_behaviour.py.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_specs import (
    FUSED_SPECS,
    OP_SETTINGS,
    assert_runs_close,
    call,
    cotangents,
    draw_case,
    minigrad_inputs,
    minigrad_params,
    run_minigrad,
)

import minigrad

IDS = [spec.name for spec in FUSED_SPECS]


@pytest.mark.parametrize("spec", FUSED_SPECS, ids=IDS)
@OP_SETTINGS
@given(data=st.data())
def test_fused_matches_composite(spec, device, data):
    case = draw_case(data, spec)
    fused = run_minigrad(spec.fn, case, device)
    assert fused.transfers == 0, f"{spec.name}: {fused.transfers} host transfers on {device}"
    assert_runs_close(fused, run_minigrad(spec.composite, case, device),
                      f"{spec.name} fused vs composite", rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("spec", FUSED_SPECS, ids=IDS)
@settings(max_examples=5)
@given(data=st.data())
def test_second_backward_with_retained_graph_doubles_the_gradient(spec, data):
    """A backward that wrote into its saved arrays would give a different second result."""
    case = draw_case(data, spec)
    inputs = minigrad_inputs(case, "cpu", "float64")
    out = call(spec.fn, case, inputs, minigrad_params(case, "cpu", "float64"))
    upstream = minigrad.tensor(cotangents([out.shape])[0])
    out.backward(upstream, retain_graph=True)
    first = [t.grad.numpy().copy() for t in inputs if t.requires_grad]
    out.backward(upstream)
    for t, g in zip([t for t in inputs if t.requires_grad], first):
        np.testing.assert_allclose(t.grad.numpy(), 2 * g, rtol=1e-12, atol=1e-14)
