"""Every op's forward and backward against PyTorch on the same inputs and the same
upstream gradient: float64 to ~1e-12, float32 to its own rounding (fused ops a little
looser). Shapes and dtypes of outputs and gradients must match exactly: float32 stays
float32. The table of ops is `op_specs.OP_SPECS`."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_specs import OP_SETTINGS, TORCH_SPECS, assert_runs_close, draw_case, run_minigrad, run_torch

torch = pytest.importorskip("torch", reason="PyTorch parity needs torch (the 'test' extra)")
torch.set_num_threads(1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", TORCH_SPECS, ids=lambda spec: spec.name)
@OP_SETTINGS
@given(data=st.data())
def test_forward_and_backward_match_torch(spec, dtype, device, data):
    case = draw_case(data, spec)
    assert_runs_close(run_minigrad(spec.fn, case, device, dtype), run_torch(spec, case, dtype),
                      f"{spec.name} {dtype} vs torch", **spec.tolerances[dtype])
