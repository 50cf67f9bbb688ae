"""Anomaly mode: the first NaN/Inf, forward or backward, raises naming the op, the line
of user code that created it and the shapes; off by default and free when off."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.autograd import Function
from minigrad.instruments.anomaly import AnomalyError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's log(0) etc.


def test_log_of_zero_is_caught_in_forward_with_the_user_line(device):
    x = mg.tensor([1.0, 0.0, 2.0], requires_grad=True, device=device)
    with pytest.raises(AnomalyError) as info, mg.detect_anomaly():
        y = x.log()  # the line the error must name
        y.sum()
    error = info.value
    message = str(error)
    assert error.op == "log" and error.phase == "forward"
    assert "anomaly in forward: log" in message
    assert "1 -inf of 3 values" in message
    assert "shape (3,), float32" in message
    assert "test_anomaly.py" in message
    assert "y = x.log()  # the line the error must name" in message
    assert "in test_log_of_zero_is_caught_in_forward_with_the_user_line" in message
    assert "its inputs are finite" in message
    assert error.location[0].name == "test_log_of_zero_is_caught_in_forward_with_the_user_line"


def test_nan_gradient_is_caught_in_backward_naming_the_op_and_line(device):
    # sqrt(0) = 0 is fine forward; its derivative 1/(2 sqrt(0)) times a zero upstream
    # gradient is 0/0 = nan in backward.
    x = mg.tensor([0.0, 4.0], requires_grad=True, device=device)
    with pytest.raises(AnomalyError) as info, mg.detect_anomaly():
        loss = (x.sqrt() * 0.0).sum()  # sqrt is created here
        loss.backward()
    error = info.value
    message = str(error)
    assert error.op == "sqrt" and error.phase == "backward"
    assert "the backward of sqrt produced non-finite values in the gradient of its input 0" \
        in message
    assert "1 nan of 2 values" in message
    assert "shape (2,), float32" in message
    assert "loss = (x.sqrt() * 0.0).sum()  # sqrt is created here" in message
    assert x.grad is None  # stopped before the bad gradient reached the leaf


def test_the_same_computation_outside_anomaly_mode_goes_through_silently():
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    (x.sqrt() * 0.0).sum().backward()
    assert np.isnan(x.grad.numpy()[0])
    assert np.isneginf(mg.tensor([0.0]).log().numpy()[0])


def test_op_inside_a_hook_is_checked_like_any_other():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(AnomalyError) as info, mg.detect_anomaly():
        h = x.exp()
        h.register_hook(lambda g: g * float("inf"))  # the hook's own op
        (h * 2.0).sum().backward()
    assert info.value.op == "mul_scalar" and info.value.phase == "forward"
    assert "the hook's own op" in str(info.value)


def test_bad_gradient_from_a_hook_is_blamed_on_the_gradient_not_the_op():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(AnomalyError) as info, mg.detect_anomaly():
        h = x.exp()
        h.register_hook(lambda g: mg.full(g.shape, float("inf")))  # made without an op
        (h * 2.0).sum().backward()
    message = str(info.value)
    assert "the gradient arriving at output 0 of exp" in message
    assert "2 +inf of 2 values" in message
    assert "tensor hook" in message


def test_nan_from_a_leaf_is_reported_as_already_there():
    x = mg.tensor([float("nan"), 1.0], requires_grad=True)
    with pytest.raises(AnomalyError, match="input 0 was already non-finite") as info, \
            mg.detect_anomaly():
        x * 2.0
    assert info.value.op == "mul_scalar"


def test_infinities_passed_on_from_an_input_are_allowed():
    # The usual causal mask: -inf where attention is not allowed, softmax makes it 0.
    scores = mg.tensor([[0.5, 2.0], [1.0, -1.0]], requires_grad=True)
    keep = mg.tensor([[True, False], [True, True]])
    with mg.detect_anomaly():
        masked = mg.where(keep, scores, -float("inf"))
        weights = masked.exp() / masked.exp().sum(axis=-1, keepdims=True)
        (weights * mg.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert np.isfinite(scores.grad.numpy()).all()
    assert scores.grad.numpy()[0, 1] == 0.0


def test_infinity_turned_into_nan_is_caught():
    x = mg.tensor([1.0], requires_grad=True)
    inf = mg.tensor([float("inf")])
    with pytest.raises(AnomalyError, match="1 nan of 1 values") as info, mg.detect_anomaly():
        (x + inf) - inf
    assert info.value.op == "sub"


def test_location_includes_the_calling_user_frames():
    def make_bad(t):
        return t / 0.0  # inner line

    x = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(AnomalyError) as info, mg.detect_anomaly():
        make_bad(x)  # outer line
    message = str(info.value)
    assert "created at" in message and "return t / 0.0  # inner line" in message
    assert "called from" in message and "make_bad(x)  # outer line" in message
    assert message.index("inner line") < message.index("outer line")


def test_op_created_before_anomaly_mode_says_so():
    x = mg.tensor([0.0], requires_grad=True)
    loss = (x.sqrt() * 0.0).sum()
    with pytest.raises(AnomalyError, match="created outside detect_anomaly"), \
            mg.detect_anomaly():
        loss.backward()


def test_module_path_is_named_when_recorded():
    class Bad(nn.Module):
        def forward(self, x):
            return x.log()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Bad()

        def forward(self, x):
            return self.inner(x)

    net = Net()
    with pytest.raises(AnomalyError, match=r"in module inner \(Bad\)"), \
            mg.viz.record_modules(net), mg.detect_anomaly():
        net(mg.tensor([0.0], requires_grad=True))


def test_finite_computation_gives_the_same_results_in_anomaly_mode(device):
    data = [[0.5, -1.0], [2.0, 0.25]]
    results = []
    for anomaly in (False, True):
        x = mg.tensor(data, requires_grad=True, device=device)
        if anomaly:
            with mg.detect_anomaly():
                loss = (x.exp() @ x).tanh().sum()
                loss.backward()
        else:
            loss = (x.exp() @ x).tanh().sum()
            loss.backward()
        results.append((loss.numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_integer_outputs_are_not_checked():
    with mg.detect_anomaly():
        index = mg.tensor([[1.0, 3.0], [2.0, 0.0]]).argmax(axis=1)
    assert index.numpy().tolist() == [1, 0]


def test_checks_use_explicit_transfers_only():
    # On 'strict' an implicit host conversion raises; explicit ones are counted.
    strict = mg.get_device("strict")
    x = mg.tensor([1.0, 2.0], requires_grad=True, device="strict")
    before = strict.host_transfers
    (x.exp() * 2.0).sum().backward()
    assert strict.host_transfers == before  # nothing when off
    with mg.detect_anomaly():
        (x.exp() * 2.0).sum().backward()
    # one bool per op output in forward, and per op before and after its backward
    assert strict.host_transfers - before == 3 + 2 * 3


def test_off_by_default_and_cleaned_up_after_errors_and_nesting():
    assert Function.observers == ()
    with mg.detect_anomaly(), mg.detect_anomaly():
        assert len(Function.observers) == 1  # nested blocks share one observer
    assert Function.observers == ()
    with pytest.raises(AnomalyError), mg.detect_anomaly():
        mg.tensor([0.0]).log()
    assert Function.observers == ()


def test_works_as_a_decorator():
    @mg.detect_anomaly()
    def step(x):
        return x.log()

    with pytest.raises(AnomalyError):
        step(mg.tensor([0.0]))
    assert Function.observers == ()
