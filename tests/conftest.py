"""Test configuration: hypothesis profiles and the device fixture.

The `ci` profile (used when CI is set) is derandomized, so a run is reproducible, and
bounded in examples so the whole suite stays within its time budget on 2 cores.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(params=["cpu", "strict"])
def device(request):
    """Run a test on NumPy and on the GPU stand-in (array-api-strict, no host transfers)."""
    return request.param
