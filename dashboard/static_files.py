"""Static files, served by the web processes themselves: hashed, compressed, cached for good.

``manage.py collectstatic`` (``serve`` runs it at every start) copies every
asset to ``STATIC_ROOT`` under a name carrying a hash of its content
(``eventflow.3f2a9c1b7d4e.css``), with gzip and Brotli copies beside it, and
writes a manifest that ``{% static %}`` reads, so pages name the hashed files.
``wrap()`` then serves that folder with ServeStatic, ASGI-native: the hashed
names are cached for a year (``immutable``), the right compressed copy goes to
each browser, and nothing reaches Django.

A checkout that has not collected (the test suite, a development run) serves
the sources through Django's finders under their plain names instead; the
storage falls back to those names, and ``check --deploy`` warns about it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from servestatic import ServeStaticASGI
from servestatic.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)

HASHED_NAME = r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$"  # ManifestStaticFilesStorage's hash: 12 hex digits
UNHASHED_MAX_AGE = 60  # seconds; files without a hash in their name may change at the next deploy


class HashedStaticFiles(CompressedManifestStaticFilesStorage):
    """ServeStatic's hashed + compressed storage; a name the manifest lacks keeps its plain name.

    Names are missing only where ``collectstatic`` has not run (or a file was
    added since): then the page links the plain name, which the finders serve.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:  # not collected: the file is not under STATIC_ROOT
            return name


def manifest_path() -> Path:
    return Path(settings.STATIC_ROOT) / HashedStaticFiles.manifest_name


def collected() -> bool:
    """Whether ``collectstatic`` has filled ``STATIC_ROOT`` (its manifest exists)."""
    return manifest_path().is_file()


def wrap(app: Any) -> Any:
    """``app`` with ``/static/…`` answered first: ServeStatic from ``STATIC_ROOT`` once collected,
    otherwise Django's finders (the sources, uncompressed, for development and tests)."""
    if collected():
        prefix = f"/{settings.STATIC_URL.strip('/')}/"
        return ServeStaticASGI(
            app,
            root=settings.STATIC_ROOT,
            prefix=prefix,
            max_age=UNHASHED_MAX_AGE,
            immutable_file_test=HASHED_NAME,
        )
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    if not settings.DEBUG:
        logger.warning("static files are not collected in %s: serving the sources (run collectstatic)", manifest_path())
    return ASGIStaticFilesHandler(app)
