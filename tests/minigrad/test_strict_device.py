"""The GPU stand-in: 'strict' arrays refuse implicit host conversion, every op runs its
forward and backward there without a single host transfer, and gives what the NumPy
backend gives. (The op suites themselves run on 'strict' through the `device` fixture.)"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_specs import OP_SETTINGS, OP_SPECS, as_tuple, draw_inputs, minigrad_inputs, params_for

import minigrad as mg

STRICT = mg.get_device("strict")


def run_op(spec, case, arrays, device):
    """Forward and backward (with a fixed upstream gradient) of one op; returns
    (outputs, input gradients) as tensors."""
    inputs = minigrad_inputs(case, arrays, device, "float64")
    outputs = as_tuple(spec.fn(*inputs, **params_for(
        case.params, lambda a: mg.tensor(a, device=device))))
    upstream = [mg.tensor(np.linspace(-1.0, 1.0, o.size).reshape(o.shape), device=device)
                for o in outputs]
    sum((o * u).sum() for o, u in zip(outputs, upstream)).backward()
    return outputs, [x.grad for x in inputs if x.requires_grad]


@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda spec: spec.name)
@settings(OP_SETTINGS, max_examples=5)
@given(data=st.data())
def test_ops_make_no_host_transfers_and_agree_with_numpy(spec, data):
    case, arrays = draw_inputs(data, spec)
    before = STRICT.host_transfers
    outputs, grads = run_op(spec, case, arrays, "strict")
    assert STRICT.host_transfers == before, f"{spec.name} copied device data to the host"
    want_outputs, want_grads = run_op(spec, case, arrays, "cpu")
    for got, want in zip([*outputs, *grads], [*want_outputs, *want_grads]):
        assert got.device == "strict" and got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-13, atol=1e-15)


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
