"""Test setup: 8 simulated CPU devices, quiet TensorFlow, shared test data."""

import os

# Must precede any jax import.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib

import pytest

# ../shared beside the checkout (CI and developers have it; users do not).
SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> pathlib.Path:
  if not SHARED.is_dir():
    pytest.skip(f"shared test data not present at {SHARED}")
  return SHARED
