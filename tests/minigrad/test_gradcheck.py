"""The public gradient checker (`minigrad.gradcheck`) and the hypothesis strategies of
`minigrad.testing.strategies`: a correct backward passes, a wrong one fails with a report
that locates the error, and the strategies keep their promises (shapes, domains, ties)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.autograd import Function
from minigrad.testing import strategies as mt


def leaf(shape, seed=0, device="cpu", dtype="float64"):
    values = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return mg.tensor(values, device=device, requires_grad=True)


class ScaledExp(Function):
    """exp(x) whose backward is off by `factor` at one element (or everywhere)."""

    def __init__(self, factor=1.0, at=None):
        self.factor, self.at = factor, at

    def forward(self, x):
        out = self.xp.exp(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        grad = g * out
        if self.at is None:
            return grad * self.factor
        grad = self.device.to_host(grad).copy()  # test-only: corrupt one element
        grad[self.at] *= self.factor
        return self.device.asarray(grad)


class WrongShape(Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return self.xp.sum(g, axis=0)


class WrongDtype(Function):
    def forward(self, x):
        return x * 2

    def backward(self, g):
        return self.xp.astype(g * 2, self.device.dtype("float64"))


# -- correct gradients pass ----------------------------------------------------------------
@pytest.mark.parametrize("mode", [{}, {"full_jacobian": False}, {"directional": True}],
                         ids=["auto", "vjp", "directional"])
def test_correct_gradients_pass(device, mode):
    x, w = leaf((3, 4), 0, device), leaf((4, 2), 1, device)
    assert mg.gradcheck(lambda a, b: (a @ b).tanh().sum(axis=0), x, w, **mode) is True


def test_float32_inputs_are_checked_against_float64_differences():
    x = leaf((2, 3), dtype="float32")
    assert mg.gradcheck(lambda a: (a * a).exp().sum(axis=1), x)


def test_non_tensor_and_constant_arguments_pass_through():
    x = leaf((2, 3))
    mask = mg.tensor(np.array([[True, False, True], [False, True, True]]))
    constant = mg.tensor(np.full((2, 3), 0.5))  # no requires_grad: not checked
    assert mg.gradcheck(lambda a, m, c, k: a.masked_fill(m, 0.0) * c * k, x, mask, constant, 3.0)


def test_tuple_outputs_are_checked_as_one_vector():
    assert mg.gradcheck(lambda a: a.split([1, 3], axis=1), leaf((2, 4)))


def test_caller_gradients_are_left_alone():
    x = leaf((3,))
    x.grad = mg.tensor(np.full(3, 7.0))
    mg.gradcheck(lambda a: a.exp(), x)
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 7.0))


# -- wrong gradients fail, with a report ---------------------------------------------------
def test_wrong_element_is_located_in_the_full_jacobian():
    x = leaf((2, 3))
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a: ScaledExp(1.5, at=(1, 2))(a), x)
    error = info.value
    assert error.input_index == 0 and error.index == (1, 2)
    assert error.analytic == pytest.approx(1.5 * error.numeric, rel=1e-6)
    assert error.abs_error == pytest.approx(abs(error.analytic - error.numeric))
    report = str(error)
    assert "input 0 (shape (2, 3), float64), full Jacobian" in report
    assert "d output[1, 2] / d input[1, 2]" in report
    assert "1 of 36 entries exceed" in report


def test_wrong_element_is_located_with_a_random_cotangent():
    x, y = leaf((4, 5), 0), leaf((4, 5), 1)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a, b: a + ScaledExp(0.9, at=(3, 1))(b), x, y)
    error = info.value
    assert error.input_index == 1 and error.index == (3, 1)
    assert "input 1" in str(error) and "vector-Jacobian product" in str(error)
    assert "gradient[3, 1]" in str(error) and "rel error 0.1" in str(error)


def test_directional_check_names_the_wrong_input(device):
    x, y = leaf((30,), 0, device), leaf((30,), 1, device)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a, b: a.tanh() * ScaledExp(1.1)(b), x, y, directional=True)
    assert info.value.input_index == 1
    assert "directional derivative" in str(info.value)


def test_small_errors_pass_within_tolerance_and_fail_beyond_it():
    x = leaf((3,))
    assert mg.gradcheck(lambda a: ScaledExp(1 + 1e-5)(a), x)
    assert not mg.gradcheck(lambda a: ScaledExp(1 + 1e-2)(a), x, raise_exception=False)
    assert mg.gradcheck(lambda a: ScaledExp(1 + 1e-2)(a), x, rtol=0.05)


def test_gradient_of_the_wrong_shape_or_dtype_is_reported():
    with pytest.raises(mg.GradcheckError, match=r"gradient has shape \(3,\), expected \(2, 3\)"):
        mg.gradcheck(lambda a: WrongShape()(a), leaf((2, 3)))
    with pytest.raises(mg.GradcheckError, match="gradient has dtype float64, expected float32"):
        mg.gradcheck(lambda a: WrongDtype()(a), leaf((2,), dtype="float32"))


def test_missing_gradient_is_reported():
    x = leaf((2,))
    detached = lambda a: a.detach() * 2.0 + a * 0.0  # the real dependence is cut
    with pytest.raises(mg.GradcheckError, match="analytic 0, numeric 2"):
        mg.gradcheck(detached, x)


def test_inputs_without_requires_grad_are_an_error():
    with pytest.raises(ValueError, match="no input requires grad"):
        mg.gradcheck(lambda a: a * 2.0, mg.tensor([1.0]))


def test_function_must_return_tensors():
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        mg.gradcheck(lambda a: 3.0, leaf((2,)))


def test_seed_makes_the_check_reproducible():
    x = leaf((4, 5))
    errors = []
    for _ in range(2):
        with pytest.raises(mg.GradcheckError) as info:
            mg.gradcheck(lambda a: ScaledExp(1.01)(a), x, seed=3)
        errors.append((info.value.index, info.value.analytic, info.value.numeric))
    assert errors[0] == errors[1]


# -- minigrad.testing.strategies -------------------------------------------------------------
@given(mt.shapes(min_dims=1, max_dims=3, min_side=0, max_side=2))
def test_shapes_respect_their_bounds(shape):
    assert 1 <= len(shape) <= 3 and all(0 <= n <= 2 for n in shape)


@given(mt.broadcastable_shapes(num_shapes=3))
def test_broadcastable_shapes_broadcast(shapes):
    assert len(shapes) == 3
    np.broadcast_shapes(*shapes)  # raises if they do not


@given(mt.arrays((4, 3), domain=mt.safe_domain("log")))
def test_positive_domain(a):
    assert a.shape == (4, 3) and a.dtype == np.float64 and (a >= 0.2).all()


@given(mt.arrays(mt.shapes(), "float32", domain=mt.away_from(-1.0, 1.0, margin=0.1)))
def test_values_keep_away_from_kinks(a):
    assert a.dtype == np.float32
    assert (np.abs(np.abs(a) - 1.0) >= 0.1 - 1e-6).all()


@given(mt.arrays((12,), domain=mt.safe_domain("max")))
def test_distinct_domain_has_no_near_ties(a):
    gaps = np.diff(np.sort(a))
    assert (gaps >= 0.05 - 1e-12).all()


@given(st.lists(st.floats(-2, 2), min_size=1, max_size=8), st.floats(0.01, 0.5))
def test_separate_keeps_order_and_spaces_values(values, gap):
    a = np.array(values)
    (spread,) = mt.separate(a, gap=gap)
    order = np.argsort(a, kind="stable")
    assert (np.diff(spread[order]) >= gap - 1e-12).all()
    assert (spread >= a - 1e-12).all()  # values only ever move up


def test_safe_domain_of_a_smooth_op_is_the_real_line():
    assert mt.safe_domain("tanh") == mt.real()


@given(mt.tensors((2, 2), domain=mt.safe_domain("sqrt")))
def test_tensors_strategy_feeds_gradcheck(x):
    assert x.requires_grad
    assert mg.gradcheck(mg.sqrt, x)
