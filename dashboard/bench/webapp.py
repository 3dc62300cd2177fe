"""The project's ASGI application plus its static files, as ``manage.py serve`` runs it.

A dashboard page in a real browser needs its scripts and styles; daphne
serves this module the way ``serve`` serves the product (static files through
Django's finders, everything else to ``settings.ASGI_APPLICATION``).
"""

from __future__ import annotations

import django
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.utils.module_loading import import_string

django.setup(set_prefix=False)
application = ASGIStaticFilesHandler(import_string(settings.ASGI_APPLICATION))
