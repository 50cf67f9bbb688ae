"""Where finite differences cannot judge a gradient: ties and kinks. The subgradient each
op picks there must be PyTorch's (ties share the gradient equally; relu, abs and clip
follow torch at 0 and at the bounds), on every device."""

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")

# sqrt and x**0.5 have an infinite derivative at 0 (as in torch); NumPy warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")

# (id, minigrad call, torch call, inputs with ties or kinks)
CASES = [
    ("amax ties", lambda x: x.amax(dim=1), lambda x: x.amax(dim=1),
     [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),
    ("max ties over all", lambda x: x.max(), lambda x: x.amax(), [[1.0, 3.0], [3.0, 0.0]]),
    ("amin ties keepdims", lambda x: x.amin(axis=0, keepdims=True),
     lambda x: x.amin(dim=0, keepdim=True), [[1.0, 0.0], [1.0, 5.0]]),
    ("relu at 0", mg.relu, torch.relu, [-1.0, 0.0, 2.0]),
    ("abs at 0", mg.abs, torch.abs, [-1.0, 0.0, 2.0]),
    ("clip at the bounds", lambda x: x.clip(-1.0, 1.0), lambda x: x.clamp(-1.0, 1.0),
     [-2.0, -1.0, 0.0, 1.0, 2.0]),
    ("sqrt at 0", mg.sqrt, torch.sqrt, [0.0, 4.0]),
    ("pow at 0", lambda x: x**0.5, lambda x: x**0.5, [0.0, 4.0]),
    ("square at 0", lambda x: x**2, lambda x: x**2, [0.0, -3.0]),
]
PAIRS = [
    ("maximum ties", mg.maximum, torch.maximum),
    ("minimum ties", mg.minimum, torch.minimum),
    ("pow with base 0", lambda a, b: a**b, lambda a, b: a**b),
]


def _torch_grad(fn, values):
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    out = fn(x)
    out.backward(torch.ones_like(out))
    return x.grad.numpy()


@pytest.mark.parametrize(("fn", "torch_fn", "values"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_subgradient_matches_torch(device, fn, torch_fn, values):
    x = mg.tensor(np.array(values), device=device, requires_grad=True)
    out = fn(x)
    out.backward(np.ones(out.shape))
    np.testing.assert_allclose(x.grad.numpy(), _torch_grad(torch_fn, values))


@pytest.mark.parametrize(("fn", "torch_fn"), [c[1:] for c in PAIRS], ids=[c[0] for c in PAIRS])
def test_two_input_subgradient_matches_torch(device, fn, torch_fn):
    a_values, b_values = [0.0, 1.0, 2.0, 0.0], [0.0, 1.0, 1.0, 2.0]
    a = mg.tensor(np.array(a_values), device=device, requires_grad=True)
    b = mg.tensor(np.array(b_values), device=device, requires_grad=True)
    fn(a, b).backward(np.ones(4))
    ta = torch.tensor(a_values, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b_values, dtype=torch.float64, requires_grad=True)
    torch_fn(ta, tb).backward(torch.ones(4, dtype=torch.float64))
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())
