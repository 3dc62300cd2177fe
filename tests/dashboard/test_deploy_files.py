"""The deployment examples in dashboard/deploy/ run real commands with real settings."""

from __future__ import annotations

import configparser
import re
import shlex

import pytest

from dashboard.management.commands.serve import Command as Serve
from tests.helpers import ROOT

DEPLOY = ROOT / "dashboard" / "deploy"
README = (ROOT / "README.md").read_text()


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / name)
    return parser


@pytest.mark.parametrize("name,role", [("eventflow-web.service", "web"), ("eventflow-workers.service", "workers")])
def test_each_unit_runs_serve_in_its_role_with_options_serve_accepts(name, role):
    service = unit(name)["Service"]
    program, manage, command, *options = shlex.split(service["ExecStart"])
    parsed = Serve().create_parser("manage.py", "serve").parse_args(options)

    assert program.endswith("/.venv/bin/python") and manage == "manage.py" and command == "serve"
    assert parsed.role == role and not parsed.demo
    assert service["EnvironmentFile"] == "/etc/eventflow/env"
    assert service["KillSignal"] == "SIGTERM"  # serve stops its children in order on SIGTERM
    assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_the_environment_file_sets_only_settings_the_project_reads():
    settings_source = (ROOT / "dashboard" / "settings.py").read_text() + (ROOT / "eventflow" / "conf.py").read_text()
    lines = [line for line in (DEPLOY / "eventflow.env").read_text().splitlines() if line and not line.startswith("#")]
    names = [line.split("=", 1)[0] for line in lines]

    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"} <= set(names)
    for name in names:
        assert f'"{name}"' in settings_source or f'"{name.removeprefix("EVENTFLOW_")}"' in settings_source, name
    assert dict(line.split("=", 1) for line in lines)["DATABASE_URL"].startswith("postgres://")


def test_the_proxy_passes_websocket_upgrades_to_the_web_hosts():
    text = (DEPLOY / "nginx.conf").read_text()
    body = re.sub(r"#.*", "", text)
    ws = re.search(r"location /ws/ \{(.*?)\}", body, re.S).group(1)

    assert body.count("{") == body.count("}")
    assert all(line.strip().endswith((";", "{", "}")) for line in body.splitlines() if line.strip())
    assert "proxy_http_version 1.1;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert re.search(r"upstream eventflow_web \{[^}]*server [\d.]+:8000;", body)
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in body  # SECURE_PROXY_SSL_HEADER trusts it


def test_the_readme_deploying_section_ships_these_files():
    section = README.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    for path in sorted(DEPLOY.iterdir()):
        assert f"dashboard/deploy/{path.name}" in section, path.name
    assert "serve --role web" in section and "serve --role workers" in section
    assert "manage.py migrate" in section and "check --deploy" in section
