"""Fixtures for dashboard tests: a logged-in operator (the monitor to step is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def operator(client, staff_user):
    """A browser session of a staff user who may replay and discard."""
    client.force_login(staff_user)
    return client

