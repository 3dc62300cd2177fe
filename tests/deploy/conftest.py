"""Deployment tests: the shipped unit and proxy files, and a multi-host topology on loopback.

The topology test drives Chromium (Playwright's sync API), so like tests/e2e
these run only when asked for by path, in their own pytest invocation:

    python -m pytest tests/deploy
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEPLOY_DIR = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect these only when the invocation names tests/deploy (or EVENTFLOW_E2E=1)."""
    if os.environ.get("EVENTFLOW_E2E") == "1":
        return None
    asked = any(Path(arg.split("::")[0]).resolve().is_relative_to(DEPLOY_DIR) for arg in config.args)
    return None if asked else True
