"""The topology picture's geometry: edge labels stay readable however the edges cross."""

from __future__ import annotations

import re

from dashboard import graph


def snapshot() -> dict:
    """The screenshot flow: orders→billing and payments→ledger cross at the same middle."""
    consume = {"orders|billing": 12.0, "orders|shipping": 12.0, "orders|flaky": 6.0, "payments|flaky": 6.0}
    consume["payments|ledger"] = 0.0
    consumers = [{"name": n, "status": "OK"} for n in ("billing", "flaky", "ledger", "shipping")]
    return {
        "producers": [{"name": "shop"}],
        "topics": [{"name": "orders"}, {"name": "payments"}],
        "consumers": consumers,
        "edges": {"produce": {"shop|orders": 18.0, "shop|payments": 6.0}, "consume": consume},
    }


def test_no_two_edge_labels_overlap():
    edges = graph.topology(snapshot())["edges"]
    spots = [(e["lx"], e["ly"]) for e in edges if e["lx"] is not None]
    assert len(spots) >= 4  # most edges keep their label
    for i, a in enumerate(spots):
        for b in spots[i + 1 :]:
            assert not graph.overlap(a, b), (a, b)


def test_labels_sit_where_the_layout_puts_them_whatever_the_rates():
    busy, quiet = snapshot(), snapshot()
    quiet["edges"]["consume"] = dict.fromkeys(quiet["edges"]["consume"], 0.0)
    where = [[(e["lx"], e["ly"]) for e in graph.topology(s)["edges"]] for s in (busy, quiet)]
    assert where[0] == where[1]


def test_a_chart_gives_its_values_on_hover_in_at_most_sixty_slices():
    import time

    from dashboard import charts

    now = time.time()
    series = [(now - 300 + i, float(i % 7)) for i in range(300)]
    chart = charts.line_chart(series, 300.0)
    assert len(chart["hovers"]) == charts.HOVER_SLICES
    last = chart["hovers"][-1]["title"]
    assert last.startswith(time.strftime("%H:%M:", time.gmtime(series[-1][0])))
    titles = [h["title"] for h in chart["hovers"]]
    shape = r"\d\d:\d\d:\d\d UTC: [\d.]+/s \(max [\d.]+/s, mean [\d.]+/s\)"
    assert all(re.fullmatch(shape, t) for t in titles), titles[:3]
    assert any("(max 6/s" in t for t in titles)


def test_a_chart_without_readings_has_nothing_to_hover():
    from dashboard import charts

    assert charts.line_chart([], 300.0)["hovers"] == []
