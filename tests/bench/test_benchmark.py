"""``manage.py benchmark --quick``: a smoke run that must print every row of the table.

No timing assertions: figures on a shared CI machine mean little. What must
hold is that every path is either measured (with its numbers) or says why not.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from dashboard.bench.runner import ORDER

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


def test_only_measures_the_named_section(tmp_path, capsys):
    out = tmp_path / "bench.json"

    call_command("benchmark", "--quick", "--only", "python publish", "--json", str(out))

    document = json.loads(out.read_text())
    assert document["sections"] == ["python publish"]
    assert [row["key"] for row in document["rows"]] == ["python_publish_batch", "python_publish_single"]
    assert "only python publish" in capsys.readouterr().out


def test_the_watching_rows_divide_what_they_measured_and_judge_it_against_their_targets(tmp_path):
    out = tmp_path / "bench.json"

    call_command("benchmark", "--quick", "--only", "trace propagation", "--only", "metrics scrape", "--json", str(out))

    rows = {row["key"]: row for row in json.loads(out.read_text())["rows"]}
    traced, carried, scrape = rows["trace_propagation"], rows["trace_carried"], rows["metrics_scrape"]
    for row in (traced, carried, scrape):
        assert row["figure"]["median"] > 0 and row["limit"]["median"] > 0, row["key"]
        assert row["ratio"] == pytest.approx(row["figure"]["median"] / row["limit"]["median"]), row["key"]
    for row in (traced, carried):
        assert row["met"] == (row["ratio"] >= 0.95), row["key"]
        assert "worker CPU per event" in row["note"], row["key"]
    assert scrape["met"] == (scrape["figure"]["median"] <= 100.0)
    assert "series" in scrape["note"] and "ASGI app" in scrape["note"]


def test_an_unknown_section_is_refused_with_the_known_ones(capsys):
    with pytest.raises(CommandError, match="invalid choice: 'publsh'"):
        call_command("benchmark", "--quick", "--only", "publsh")


# --- the live dashboard's measuring helpers (no processes) ---------------------------------


def test_the_longest_wait_counts_the_edges_of_the_window():
    from dashboard.bench.tabs import _longest_gap

    assert _longest_gap([10.5, 11.4], start=10.0, end=13.0) == pytest.approx(1.6)
    assert _longest_gap([], start=10.0, end=12.0) == pytest.approx(2.0)


def test_messages_are_counted_per_whole_second():
    from dashboard.bench.tabs import _per_second

    assert _per_second([0.0, 0.2, 0.9, 1.1, 2.5], seconds=3.0) == [3, 1, 1]


def test_the_websocket_client_reads_fragmented_and_long_text_messages_and_answers_pings():
    import asyncio

    from dashboard.bench import wsclient

    long_text = b"x" * 70_000
    frames = (
        bytes([0x89, 2]) + b"hi"  # a ping in between
        + bytes([0x01, 3]) + b"<tr" + bytes([0x80, 1]) + b">"  # "<tr>" in two fragments
        + bytes([0x81, 127]) + len(long_text).to_bytes(8, "big") + long_text
        + bytes([0x88, 2]) + (1000).to_bytes(2, "big")  # close
    )  # fmt: skip

    class Writer:
        def __init__(self) -> None:
            self.sent = b""

        def write(self, data: bytes) -> None:
            self.sent += data

    async def read_all() -> tuple[list[bytes | None], bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(frames)
        socket = wsclient.Socket(reader, Writer())  # type: ignore[arg-type]
        messages = [await wsclient.read_message(socket) for _ in range(3)]
        return messages, socket.writer.sent  # type: ignore[attr-defined]

    messages, sent = asyncio.run(read_all())

    assert messages == [b"<tr>", long_text, None]
    assert sent[0] == 0x8A and sent[1] == 0x80 | 2  # a masked pong with the ping's payload
    assert bytes(b ^ sent[2 + i % 4] for i, b in enumerate(sent[6:8])) == b"hi"


def test_cpu_and_memory_of_a_process_are_read_from_proc():
    import os

    from dashboard.bench.procstat import cpu_seconds, rss

    assert cpu_seconds(os.getpid()) > 0
    assert rss(os.getpid()) > 10_000_000
    assert cpu_seconds(2**22 + 1) == 0.0 and rss(2**22 + 1) == 0


# --- the peer brokers (RabbitMQ, NATS JetStream) ---------------------------------------------


def test_a_peer_whose_server_does_not_answer_is_left_out_with_the_reason():
    from dashboard.bench import peer_clients
    from dashboard.bench.peers import Peer

    peer = Peer(peer_clients.NATS, "nats", "nats://127.0.0.1:9", "nats")

    reason = peer.unavailable()

    assert reason and ("did not answer" in reason or "not installed" in reason)


def test_the_peer_rows_divide_by_the_best_peer_and_invert_for_latencies():
    from dashboard.bench.peers import _row

    rates = _row("peers_drain", "drain", "ev/s", {"EventFlow": [300.0], "A": [100.0], "B": [50.0]}, {})
    p99 = _row("peers_p99_1k", "p99", "ms", {"EventFlow": [0.5], "A": [2.0], "B": [1.0]}, {"C": "not installed"})

    assert (rates.limit_label, rates.ratio, rates.met) == ("best peer: A", 3.0, True)
    assert (p99.limit_label, p99.ratio, p99.met) == ("best peer: B", 2.0, False)
    assert "C: not installed" in p99.note and "A 2.00 ms" in p99.note
