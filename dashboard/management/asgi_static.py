"""The ASGI application ``manage.py serve`` runs: the project's, plus its static files.

Static files are served straight from the app and project ``static/``
directories through Django's finders, so ``serve`` needs no ``collectstatic``
step. Everything else (HTTP views, WebSockets) goes to ``dashboard.asgi``.
"""

from __future__ import annotations

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from dashboard.asgi import application as project_application

application = ASGIStaticFilesHandler(project_application)
