"""Edit & replay in Chromium: correct a failed event's data, preview the diff, confirm, see it handled."""

from __future__ import annotations

import sys

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from eventflow.models import FailedEvent, FailedEventEdit
from tests import handlers
from tests.e2e.conftest import Process, log_in, screenshot
from tests.helpers import ROOT


@pytest.fixture
def worker_process(env, text_amount):
    proc = Process([sys.executable, str(ROOT / "manage.py"), "runconsumers"], env)
    yield proc
    proc.stop()


def test_an_editor_corrects_the_data_previews_the_diff_and_the_consumer_handles_the_copy(
    page, worker_process, staff_user, text_amount
):
    staff_user.user_permissions.add(Permission.objects.get(codename="edit_failedevent_data"))
    log_in(page, "/failed/")

    page.get_by_role("link", name="Edit & replay").click()
    expect(page.get_by_role("heading", name=f"Edit & replay failed event #{text_amount.pk}")).to_be_visible()
    page.get_by_role("textbox", name="Data").fill('{"amount": 12.5, "customer": {"tier": "gold"}}')
    page.get_by_role("textbox", name="Reason").fill("the shop sent the amount as text")
    page.get_by_role("button", name="Preview changes").click()

    preview = page.locator("#edit-preview")
    expect(preview).to_contain_text("1 change")
    expect(preview.locator("tr.diff-changed")).to_contain_text("/data/amount")
    expect(preview.locator("tr.diff-changed")).to_contain_text('"12.50"')
    screenshot(page, "edit-replay-preview")
    page.get_by_role("button", name="Replay corrected copy to strict").click()

    expect(page.locator("#edit-sent")).to_contain_text("Corrected copy sent to strict")
    page.locator("#edit-sent a").click()
    expect(page.locator("#replay-progress [data-state]")).to_have_text("done", timeout=30_000)
    expect(page.locator('[data-count="handled"]')).to_have_text("1")
    edit = FailedEventEdit.objects.select_related("replay__requested_by").get()
    assert (edit.replay.requested_by.username, edit.replay.reason) == ("operator", "the shop sent the amount as text")
    assert [h["data"]["amount"] for h in handlers.amounts_handled()] == [12.5]
    text_amount.refresh_from_db()
    assert text_amount.status == FailedEvent.Status.RESOLVED and text_amount.event["data"]["amount"] == "12.50"
