"""A fresh Django project with only ``eventflow`` installed: checks, migrates, publishes, handles.

Built in a temporary directory and run in a subprocess, so nothing of the
``dashboard`` project (settings, URLs, Channels) can leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.processes

SETTINGS = """
from pathlib import Path
BASE = Path(__file__).resolve().parent
SECRET_KEY = "fresh-project-only-for-this-test"
DEBUG = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "eventflow"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "db.sqlite3"}}
ROOT_URLCONF = "shop_urls"
USE_TZ = True
CSRF_FAILURE_VIEW = "eventflow.api.csrf_failure"
"""
URLS = """
from django.urls import include, path
urlpatterns = [path("events-api/", include("eventflow.urls"))]
"""
HANDLERS = """
from pathlib import Path
def record(event):
    with open(Path(__file__).resolve().parent / "handled.txt", "a") as out:
        out.write(f"{event.source} {event.id} {event.data['order']}\\n")
"""
SMOKE = """
import django, time
django.setup()
from django.test import Client
from eventflow import publish
from eventflow.models import Consumer, Producer, Topic
from eventflow.worker import Worker

orders = Topic.objects.create(name="orders")
Consumer.objects.create(name="billing", handler="shop_handlers.record").topics.add(orders)
shop = Producer(name="shop")
token = shop.set_new_token()
shop.save()
shop.topics.add(orders)

answer = Client().post("/events-api/topics/orders/events", b'{"type": "order.created", "id": "http-1", "data": {"order": 1}}',
                       content_type="application/json", headers={"Authorization": f"Bearer {token}"})
assert answer.status_code == 202, answer.content
publish("orders", {"order": 2}, type="order.created", id="py-2")
worker, deadline = Worker(), time.monotonic() + 20
while time.monotonic() < deadline and len(open("handled.txt").read().splitlines() if __import__("os").path.exists("handled.txt") else []) < 2:
    worker.run_once()
print(open("handled.txt").read(), end="")
"""


def manage(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "django", *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path, redis_url: str, key_prefix: str) -> tuple[Path, dict[str, str]]:
    for name, text in (("shop_settings", SETTINGS), ("shop_urls", URLS), ("shop_handlers", HANDLERS)):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("EVENTFLOW_", "DATABASE_", "REDIS_"))}
    env |= {"DJANGO_SETTINGS_MODULE": "shop_settings", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    return tmp_path, env


def test_a_project_that_names_no_redis_fails_its_system_check_loudly(project):
    folder, env = project

    run = manage(folder, "check", env=env)

    assert run.returncode != 0
    assert "eventflow.E003" in run.stderr and "EVENTFLOW_REDIS_URL is not set" in run.stderr


def test_a_fresh_project_with_only_eventflow_publishes_and_handles(project, redis_url, key_prefix):
    folder, env = project
    with (folder / "shop_settings.py").open("a") as settings:
        settings.write(f"EVENTFLOW_REDIS_URL = {redis_url!r}\nEVENTFLOW_KEY_PREFIX = {key_prefix + 'fresh:'!r}\n")

    assert manage(folder, "check", env=env).returncode == 0
    migrated = manage(folder, "migrate", "--verbosity", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    smoke = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SMOKE)], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )

    assert smoke.returncode == 0, smoke.stderr[-3000:]
    assert sorted(smoke.stdout.splitlines()) == ["python py-2 2", "shop http-1 1"]
    imported = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); import sys, eventflow.api, eventflow.worker;"
         " print(sorted(m for m in sys.modules if m.split('.')[0] in ('dashboard', 'channels')))"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.stdout.strip() == "[]", imported.stderr
