"""tril / triu beyond the op table: masks of any dtype (the causal mask of attention is
``ones(T, T, dtype=bool).tril()``), diagonals past the matrix, and clear errors. Values
and gradients on random shapes are in the op table (`op_specs.OP_SPECS`)."""

import numpy as np
import pytest

import minigrad as mg


@pytest.mark.parametrize("dtype", ["bool", "int64", "float32"])
@pytest.mark.parametrize("diagonal", [-5, -1, 0, 2, 7])
def test_masks_of_any_dtype_on_the_device(device, dtype, diagonal):
    ones = np.ones((2, 3, 4), dtype=dtype)
    dev = mg.get_device(device)
    before = dev.host_transfers
    lower = mg.tensor(ones, device=device).tril(diagonal)
    upper = mg.triu(mg.tensor(ones, device=device), diagonal=diagonal)
    assert dev.host_transfers == before
    assert lower.device == device and lower.dtype == mg.tensor(ones, device=device).dtype
    np.testing.assert_array_equal(lower.numpy(), np.tril(ones, diagonal))
    np.testing.assert_array_equal(upper.numpy(), np.triu(ones, diagonal))


def test_tril_and_triu_one_past_the_diagonal_split_a_matrix():
    x = mg.tensor(np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal((x.tril() + x.triu(1)).numpy(), x.numpy())


@pytest.mark.parametrize("op", [mg.tril, mg.triu], ids=lambda f: f.__name__)
def test_errors_name_the_op_and_the_problem(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}: needs a tensor with at least 2 dims, "
                                         r"got shape \(3,\)"):
        op(mg.ones(3))
    with pytest.raises(TypeError, match=rf"{op.__name__}: diagonal must be an int, got 1.5"):
        op(mg.ones(2, 2), 1.5)
