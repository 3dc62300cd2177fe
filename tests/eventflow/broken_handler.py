"""A handler module that fails at import, as a typo'd or misconfigured one would."""

from __future__ import annotations

raise RuntimeError("settings for this handler are missing")
