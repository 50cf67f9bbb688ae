"""Indexing beyond what the op table draws: repeated integer indices must scatter-ADD in
the backward (a plain assignment would keep only one of the repeats), and every kind of
key gives NumPy's result shape."""

import numpy as np
import pytest

import minigrad as mg


def test_repeated_indices_accumulate(device):
    x = mg.tensor(np.arange(4.0), device=device, requires_grad=True)
    x[[0, 0, 2, 0, -1]].backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_allclose(x.grad.numpy(), [7.0, 0.0, 3.0, 5.0])


def test_repeated_pairs_of_indices_accumulate(device):
    x = mg.tensor(np.zeros((2, 3)), device=device, requires_grad=True)
    rows = mg.tensor([1, 1, 0, 1], device=device)
    cols = mg.tensor([2, 2, 0, 0], device=device)
    x[rows, cols].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, 0.0, 0.0], [1.0, 0.0, 2.0]])


def test_embedding_style_lookup_accumulates_rows(device):
    table = mg.tensor(np.ones((3, 2)), device=device, requires_grad=True)
    ids = mg.tensor([[0, 2], [2, 2]], device=device)
    out = table[ids]  # (2, 2, 2)
    assert out.shape == (2, 2, 2)
    out.sum().backward()
    np.testing.assert_allclose(table.grad.numpy(), [[1.0, 1.0], [0.0, 0.0], [3.0, 3.0]])


KEYS = {
    "int": (1,), "negative int": (-1, 0), "slice": (slice(1, None),),
    "negative step": (slice(None, None, -2), slice(2, 0, -1)),
    "out-of-range slice": (slice(-10, 10), slice(5, 9)),
    "None": (None, 0, None), "Ellipsis": (Ellipsis, 1), "Ellipsis and None": (None, ..., None),
    "int array": ([0, 0, 1],), "int array after slice": (slice(None), [2, 0]),
    "int array with None": ([1, 0], None), "two int arrays": ([0, 1], [2, 2]),
    "int and int array": (1, [0, 2, 2]), "bool mask": ("mask",), "bool row mask": ("rows",),
    "bool mask with slice": (slice(None), "cols"),
}


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_result_matches_numpy(device, key):
    values = np.arange(12.0).reshape(2, 3, 2)
    masks = {"mask": values > 4, "rows": np.array([True, False]),
             "cols": np.array([True, False, True])}
    key = tuple(masks.get(k, k) if isinstance(k, str) else k for k in key)
    x = mg.tensor(values, device=device, requires_grad=True)
    mg_key = tuple(mg.tensor(k, device=device) if isinstance(k, np.ndarray) else k for k in key)
    out = x[mg_key]
    expected = values[tuple(np.array(k) if isinstance(k, list) else k for k in key)]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)
    out.backward(np.ones(out.shape))
    counts = np.zeros_like(values)
    np.add.at(counts, tuple(np.array(k) if isinstance(k, list) else k for k in key), 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), counts)
