"""Issue 9, case 8: guessing passwords is throttled on the dashboard's and the admin's login.

Before, 50 wrong passwords went through in 18 s and the right one was then
accepted. With django-axes, ``AXES_FAILURE_LIMIT`` (5) wrong passwords for one
user from one address lock that login for ``AXES_COOLOFF_TIME`` (15 minutes):
even the right password gets a 429 with the lockout message, until the time
is up or ``manage.py axes_reset_username`` lifts it.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.core.management import call_command

LOGINS = ["/login/", "/admin/login/"]
RIGHT = {"username": "operator", "password": "operator-pass-1"}
WRONG = {"username": "operator", "password": "guess"}


@pytest.fixture(autouse=True)
def quick_hashes(settings):
    """A fast password hasher: the lockout, not PBKDF2, is under test (and the cool-off is timed)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGINS)
def test_six_wrong_passwords_lock_the_login_even_for_the_right_one(client, staff_user, url):
    answers = [client.post(url, WRONG).status_code for _ in range(6)]

    reply = client.post(url, RIGHT)

    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429] * (7 - settings.AXES_FAILURE_LIMIT)
    assert reply.status_code == 429
    assert "too many failed logins" in reply.content.decode()
    assert not logged_in(client)


@pytest.mark.parametrize("url", LOGINS)
def test_fewer_wrong_passwords_than_the_limit_still_let_the_right_one_in(client, staff_user, url):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(url, WRONG)

    assert client.post(url, RIGHT).status_code == 302
    assert logged_in(client)


def test_the_lockout_holds_for_the_user_from_that_address_only(client, staff_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", WRONG)

    assert client.post("/login/", RIGHT, REMOTE_ADDR="192.0.2.7").status_code == 302


def test_the_reset_command_lifts_a_lockout(client, staff_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", WRONG)
    assert client.post("/login/", RIGHT).status_code == 429

    call_command("axes_reset_username", "operator")

    assert client.post("/login/", RIGHT).status_code == 302


def test_the_lockout_ends_after_the_cool_off_time(client, staff_user, settings):
    settings.AXES_COOLOFF_TIME = dt.timedelta(seconds=2)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", WRONG)
    assert client.post("/admin/login/", RIGHT).status_code == 429

    time.sleep(2.2)

    assert client.post("/admin/login/", RIGHT).status_code == 302
