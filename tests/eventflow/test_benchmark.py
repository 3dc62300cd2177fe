"""``manage.py benchmark --quick``: a smoke run that must print every row of the table.

No timing assertions: figures on a shared CI machine mean little. What must
hold is that every path is either measured (with its numbers) or says why not.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from eventflow.bench.runner import ORDER

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_the_quick_benchmark_prints_every_row_with_numbers_or_a_reason_and_cleans_up(
    tmp_path, capsys, redis_client, key_prefix
):
    from eventflow.models import Consumer, Topic

    out = tmp_path / "bench.json"

    call_command("benchmark", "--quick", "--json", str(out))

    document = json.loads(out.read_text())
    rows = {row["key"]: row for row in document["rows"]}
    assert set(ORDER) <= set(rows)
    for key in ORDER:
        row = rows[key]
        if row["not_measured"]:
            assert row["verdict"] == "not measured" and len(row["not_measured"]) > 10, key
        else:
            assert row["figure"]["median"] == row["figure"]["median"], key  # a number, not NaN
    printed = capsys.readouterr().out
    assert all(rows[key]["path"] in printed for key in ORDER)
    assert not list(redis_client.scan_iter(match=f"{key_prefix}bench*"))
    assert not Topic.objects.filter(name__startswith="bench-").exists()
    assert not Consumer.objects.filter(name__startswith="bench-").exists()
