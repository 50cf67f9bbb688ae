"""The GPU stand-in: 'strict' arrays refuse implicit host conversion, every op runs its
forward and backward there without a single host transfer, and gives what the NumPy
backend gives. (The op suites themselves run on 'strict' through the `device` fixture.)"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_specs import OP_SETTINGS, OP_SPECS, assert_runs_close, draw_case, run_minigrad

import minigrad as mg

STRICT = mg.get_device("strict")


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda spec: spec.name)
@settings(OP_SETTINGS, max_examples=5)
@given(data=st.data())
def test_ops_make_no_host_transfers_and_agree_with_numpy(spec, data):
    case = draw_case(data, spec)
    strict = run_minigrad(spec.fn, case, "strict")
    assert strict.transfers == 0, f"{spec.name} copied device data to the host"
    # The same array-API code on both devices agrees to rounding; a fused op runs NumPy
    # kernels on 'cpu' and its array-API path on 'strict', which agree to its tolerance.
    tolerance = spec.tolerances["float64"] if spec.composite else {"rtol": 1e-13, "atol": 1e-15}
    assert_runs_close(strict, run_minigrad(spec.fn, case, "cpu"), f"{spec.name} strict vs cpu",
                      **tolerance)


@pytest.mark.parametrize("convert", [float, int, bool, np.asarray], ids=lambda f: f.__name__)
def test_strict_arrays_refuse_implicit_host_conversion(convert):
    array = mg.tensor([1.0], device="strict").data
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        convert(array)


def test_explicit_transfers_are_counted():
    x = mg.tensor([1.5, 2.5], device="strict")
    before = STRICT.host_transfers
    np.testing.assert_array_equal(x.numpy(), [1.5, 2.5])
    assert (x.sum() * 2).item() == 8.0
    assert STRICT.host_transfers == before + 2


def test_creation_places_arrays_on_the_device():
    gen = mg.Generator(0, device="strict")
    made = [mg.zeros(2, 3, device="strict"), mg.ones(2, device="strict"),
            mg.full((2,), 7.0, device="strict"), mg.arange(4, device="strict"),
            mg.randn(3, generator=gen), mg.rand(3, generator=gen),
            mg.randint(0, 5, (3,), generator=gen)]
    for t in made:
        assert t.device == "strict" and STRICT.is_array(t.data)
        assert str(t.data.device) != "CPU_DEVICE"


def test_a_training_step_stays_on_the_device():
    gen = mg.Generator(1, device="strict")
    w = mg.randn(4, 3, generator=gen, dtype="float64", requires_grad=True)
    x = mg.randn(8, 4, generator=gen, dtype="float64")
    targets = mg.randint(0, 3, (8,), generator=gen)
    before = STRICT.host_transfers
    for _ in range(3):
        logits = (x @ w).tanh()
        picked = logits[mg.arange(8, device="strict"), targets]
        loss = (logits.logsumexp(axis=-1) - picked).mean()
        loss.backward()
        with mg.no_grad():
            w.data = (w - w.grad * 0.1).data
        w.grad = None
    assert STRICT.host_transfers == before
