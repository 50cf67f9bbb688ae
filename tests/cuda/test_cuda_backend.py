"""The CUDA backend's CPU-checkable parts: importing and failing without CuPy, the
array-API namespace it builds over CuPy, the TF32 switch."""

import sys
import types

import numpy as np
import pytest

import minigrad
from minigrad import backends
from minigrad.backends.cupy import ALIASES, array_api_namespace


@pytest.fixture
def no_cupy(monkeypatch):
    """CuPy made unimportable (whether or not it is installed here)."""
    if any(d.kind == "cuda" for d in backends.devices()):
        pytest.skip("this process already has a CUDA device")
    monkeypatch.setitem(sys.modules, "cupy", None)


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cupy_says_what_to_install(no_cupy, name):
    with pytest.raises(RuntimeError) as info:
        minigrad.zeros(2, 3, device=name)
    message = str(info.value)
    assert "needs CuPy" in message
    assert "pip install 'minigrad-llm[cuda12]'" in message and "'minigrad-llm[cuda13]'" in message
    assert minigrad.zeros(2).device.name == "cpu"  # the rest of minigrad is unaffected


def test_tf32_switch_is_recorded_without_a_gpu():
    assert not backends.tf32_enabled()  # exact float32 by default
    try:
        backends.set_tf32(True)
        assert backends.tf32_enabled()
    finally:
        backends.set_tf32(False)
    assert not backends.tf32_enabled()


def test_namespace_fills_in_missing_array_api_names():
    """An old-CuPy stand-in: NumPy without its NumPy-2 spellings of standard functions."""
    old = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np)
                                   if not k.startswith("_") and k not in ALIASES})
    xp = array_api_namespace(old)
    assert array_api_namespace(np) is np  # nothing to fill in
    x = np.arange(24.0).reshape(2, 3, 4)
    assert xp.permute_dims(x, (2, 0, 1)).shape == (4, 2, 3)
    np.testing.assert_array_equal(xp.matrix_transpose(x), np.matrix_transpose(x))
    np.testing.assert_array_equal(xp.concat([x, x], axis=1), np.concat([x, x], axis=1))
    np.testing.assert_array_equal(xp.pow(x, 2), x ** 2)
    np.testing.assert_array_equal(xp.bitwise_right_shift(np.array([8]), 2), [2])
    y = xp.astype(x, np.float32)
    assert y.dtype == np.float32 and xp.astype(y, np.float32, copy=False) is y
    np.testing.assert_allclose(xp.atan2(x, x + 1), np.arctan2(x, x + 1))
    np.testing.assert_allclose(xp.vecdot(x, x + 1), np.vecdot(x, x + 1))
    for axis in (0, 2):
        np.testing.assert_array_equal(xp.cumulative_sum(x, axis=axis, include_initial=True),
                                      np.cumulative_sum(x, axis=axis, include_initial=True))
    np.testing.assert_array_equal(xp.cumulative_sum(x[0, 0]), np.cumulative_sum(x[0, 0]))
    assert xp.exp is np.exp  # everything else passes through
    for name in ALIASES:
        assert callable(getattr(xp, name)), name


def test_importing_minigrad_loads_no_concrete_backend():
    """The registry imports a backend when its first device is asked for, not before."""
    import subprocess

    code = ("import sys, minigrad; print(sorted(m for m in sys.modules if m.startswith("
            "('minigrad.backends.', 'cupy', 'array_api_strict'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "['minigrad.backends.device']"
