"""The overview's graph at scale: trouble and the busiest drawn, the rest folded into groups."""

from __future__ import annotations

from django.template.loader import render_to_string

from dashboard import graph


def big_snapshot(size: int = 1000, trouble: str = "fraud.c0773", busy: str = "mail.t0551") -> dict:
    """``size`` topics and consumers (one each, in eight name prefixes), one in trouble, one busy."""
    prefixes = ["cart", "orders", "billing", "search", "users", "fraud", "ship", "mail"]
    topics = [f"{prefixes[i % 8]}.t{i:04d}" for i in range(size)]
    consumers = [f"{prefixes[i % 8]}.c{i:04d}" for i in range(size)]
    consume = {f"{t}|{c}": 0.0 for t, c in zip(topics, consumers)}
    consume[f"{busy}|mail.c0551"] = 400.0
    produce = {f"shop|{t}": 0.0 for t in topics} | {f"shop|{busy}": 400.0}
    return {
        "producers": [{"name": "shop"}],
        "topics": [{"name": t, "rate": 400.0 if t == busy else 0.0} for t in topics],
        "consumers": [{"name": c, "status": "FAILING" if c == trouble else "OK"} for c in consumers],
        "edges": {"produce": produce, "consume": consume},
    }


def drawn(picture: dict, kind: str) -> list[str]:
    column = next(c for c in picture["columns"] if c["kind"] == kind)
    return [n["name"] for n in column["nodes"] if not n["group"]]


def labels(picture: dict, kind: str) -> list[str]:
    column = next(c for c in picture["columns"] if c["kind"] == kind)
    return [n["label"] for n in column["nodes"] if n["group"]]


def test_a_consumer_in_trouble_and_its_topic_are_always_drawn():
    picture = graph.topology(big_snapshot())
    assert "fraud.c0773" in drawn(picture, "consumer")
    assert "fraud.t0773" in drawn(picture, "topic")


def test_the_busiest_topic_and_consumer_are_drawn():
    picture = graph.topology(big_snapshot())
    assert "mail.t0551" in drawn(picture, "topic")
    assert "mail.c0551" in drawn(picture, "consumer")


def test_the_rest_folds_into_named_groups_that_open_the_filtered_list():
    picture = graph.topology(big_snapshot())
    topics = next(c for c in picture["columns"] if c["kind"] == "topic")
    assert len(topics["nodes"]) <= graph.MAX_NODES + graph.MAX_GROUPS + 1
    groups = {n["label"]: n["href"] for n in topics["nodes"] if n["group"]}
    assert groups["cart.* (125)"] == "/topics/?q=cart."
    rest = next(label for label in groups if label.startswith("+"))
    folded = sum(int(label.split("(")[1].rstrip(")")) for label in groups if "(" in label)
    assert folded + int(rest.split()[0][1:].replace(",", "")) + len(drawn(picture, "topic")) == 1000


def test_focus_draws_one_topics_neighbourhood():
    snapshot = big_snapshot()
    snapshot["edges"]["consume"]["cart.t0000|users.c0004"] = 1.0  # users.c0004 also reads cart.t0000
    picture = graph.topology(snapshot, "topic:cart.t0000")
    assert picture["focus"] == {"kind": "topic", "name": "cart.t0000"}
    assert sorted(drawn(picture, "consumer")) == ["cart.c0000", "users.c0004"]
    assert sorted(drawn(picture, "topic")) == ["cart.t0000", "users.t0004"]  # their other topic too
    assert drawn(picture, "producer") == ["shop"]
    assert labels(picture, "topic") == []


def test_a_focus_on_nothing_known_draws_the_whole_flow():
    picture = graph.topology(big_snapshot(50), "topic:nope")
    assert picture["focus"] is None


def test_no_two_labels_overlap_at_a_thousand_of_each():
    snapshot = big_snapshot()
    snapshot["edges"]["consume"] = dict.fromkeys(snapshot["edges"]["consume"], 3.0)
    picture = graph.topology(snapshot)
    spots = [(e["lx"], e["ly"]) for e in picture["edges"] if e["lx"] is not None]
    assert spots
    for i, a in enumerate(spots):
        for b in spots[i + 1 :]:
            assert not graph.overlap(a, b), (a, b)


def test_a_consumer_with_open_failed_events_counts_as_trouble_even_when_its_window_is_ok():
    snapshot = big_snapshot(trouble="none")
    next(c for c in snapshot["consumers"] if c["name"] == "fraud.c0773")["failed"] = 3
    picture = graph.topology(snapshot)
    assert "fraud.c0773" in drawn(picture, "consumer")
    assert "fraud.t0773" in drawn(picture, "topic")


def test_the_drawing_takes_its_geometry_from_the_layout():
    picture = graph.topology(big_snapshot(50))
    html = render_to_string("dashboard/overview.html#topology", {"graph": picture})
    assert f'viewBox="0 0 {graph.WIDTH} {picture["height"]}"' in html
    nodes = sum(len(column["nodes"]) for column in picture["columns"])
    assert html.count(f'width="{graph.NODE_W}" height="{graph.NODE_H}"') == nodes
    heads = [f'x="{x}" y="18">{title}<' for x, title in zip(graph.COLUMNS, ("Producers", "Topics", "Consumers"))]
    assert all(head in html for head in heads)
