"""Test configuration: hypothesis profiles, the device fixture, and fixtures for the
optional packages tests compare with (a test asking for one skips where it is missing).

The `ci` profile (used when CI is set) is derandomized, so a run is reproducible, and
bounded in examples so the whole suite stays within its time budget on 2 cores.
"""

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# One example per test: for quick runs of whole suites (tests/e2e/test_optional_dependencies.py).
settings.register_profile("smoke", parent=settings.get_profile("ci"), max_examples=1)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def torch():
    """PyTorch, for a test that compares with it; without it the test skips, saying why."""
    torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def safetensors():
    """The `safetensors` package (with its NumPy API), for interoperability tests."""
    pytest.importorskip("safetensors.numpy", reason="checks files against the safetensors "
                        "package (the 'test' extra)")
    return sys.modules["safetensors"]


@pytest.fixture(params=["cpu", "strict"])
def device(request):
    """Run a test on NumPy and on the GPU stand-in (array-api-strict, no host transfers)."""
    return request.param
