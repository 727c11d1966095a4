"""Shared test settings: a deterministic, bounded hypothesis profile so CI is stable and quick."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Messages are compared in English whatever the machine's locale (tests/test_i18n.py covers the
# others).
os.environ["CHAINRULE_LANG"] = "en"


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, fresh for each test."""
    return np.random.default_rng(0)
