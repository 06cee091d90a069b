"""Fixtures for the integrator API tests."""

from __future__ import annotations

import pytest

from tests.factories import PairedDevice, paired_device


@pytest.fixture
def phone(db: None) -> PairedDevice:
    """An online, enabled phone with two SIMs."""
    return paired_device(sims=2)
