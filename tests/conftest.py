"""Shared test set-up: Hypothesis profiles and a headless matplotlib backend."""

import os

import matplotlib
import pytest
import torch
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# The project's thread policy (toydiff.threads: small models run on one torch thread) for every test process: the
# suite runs two workers on two cores, and two workers of two threads each spin (3x wall on the shared CPU). A test
# of the policy itself sets and restores what it needs (tests/toydiff/test_outputs_threads.py).
torch.set_num_threads(1)

# CI: reproducible and free of timing flakiness. Locally: the same, but random examples.
settings.register_profile("ci", deadline=None, derandomize=True, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test (as ``toydiff app`` runs its pages, apps.launch.configure_process;
    small tensors on a shared CPU are also faster so). Use with ``pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
