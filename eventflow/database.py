"""Outliving database outages: dropping broken connections, and saying whether the database answers.

Django opens a connection per thread on first use and never checks it again
by itself outside a request; after the server restarts (or a connection is
cut), every query on it fails until someone closes it. Long-running loops —
worker threads, the monitor — call ``drop_broken_connections()`` after an
error, so the next query opens a fresh connection.
"""

from __future__ import annotations

from django.db import DatabaseError, connections


def drop_broken_connections() -> None:
    """Close this thread's connections that failed and no longer answer (Django reopens on next use).

    A connection inside an atomic block is left alone: closing it would end a
    transaction someone still holds (a test's, or a caller's).
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred and not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def close_connection() -> None:
    """Close this thread's default connection after an error that may have broken it."""
    conn = connections["default"]
    if not conn.in_atomic_block:
        conn.close()


def database_status() -> tuple[str, str]:
    """Ask the database itself: (``"ok"``, "") or (``"down"``, the error).

    A real query, not ``ensure_connection()``: a connection the server dropped
    still looks open until it is used.
    """
    drop_broken_connections()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        close_connection()
        return "down", f"{type(exc).__name__}: {exc}".strip()[:300]
    return "ok", ""
