"""Hostile requests to the publish API, as hypothesis strategies and a hand-written corpus.

Each case is a ``Case``: the request to send and the 4xx answers it may get
(empty: any 4xx). ``Probe`` sends cases to a real server, over httpx or a raw
socket, and keeps the figures.
"""

from __future__ import annotations

import json
import re
import socket
import string
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx
import orjson
from hypothesis import strategies as st

PUBLISH = "/api/v1/topics/{}/events"
JSON = "application/json"
LIMIT = 4 * 1024 * 1024  # EVENTFLOW_MAX_BODY_BYTES's default


@dataclass(frozen=True)
class Case:
    body: bytes
    content_type: str | None = JSON
    topic: str = "orders"
    token: str | None = "shop"  # "shop" (allowed on orders), a literal token, or None for no header
    headers: tuple[tuple[str, str], ...] = ()
    expect: frozenset[int] = frozenset()  # empty: any 4xx
    method: str = "POST"
    raw: bytes | None = None  # sent as is over a socket (chunked, lying Content-Length)
    label: str = ""


@dataclass
class Probe:
    url: str
    tokens: dict[str, str]  # "shop" → its token, plus other named tokens
    statuses: Counter = field(default_factory=Counter)
    sent: int = 0
    refused_by_http_server: int = 0  # answered by daphne itself, before the application

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def send(self, case: Case) -> None:
        """Send one case and assert that it got a 4xx with a JSON error."""
        self.sent += 1
        if case.raw is not None:
            status, content_type, body = self._raw(case.raw.replace(b"{token}", self.tokens["shop"].encode()))
        else:
            reply = self.client.request(
                case.method, PUBLISH.format(quote(case.topic, safe="")), content=case.body, headers=self._headers(case)
            )
            status, content_type, body = reply.status_code, reply.headers.get("content-type", ""), reply.content
        self.statuses[status] += 1
        assert 400 <= status < 500, f"{case.label or case}: answered {status} {body[:300]!r}"
        if status == 400 and content_type == "" and not body:
            # Daphne (Twisted) itself refuses a few requests before the application sees them:
            # Transfer-Encoding with Content-Length, multipart/form-data it cannot parse.
            self.refused_by_http_server += 1
            return
        assert not case.expect or status in case.expect, f"{case.label or case}: {status} {body[:200]!r}"
        assert content_type.startswith(JSON), f"{case.label or case}: {status} {content_type!r} {body[:200]!r}"
        error = orjson.loads(body)["error"]
        assert error["code"] and error["message"], body

    def _headers(self, case: Case) -> dict[str, str]:
        headers = dict(case.headers)
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        if case.token is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(case.token, case.token)}"
        return headers

    def _raw(self, request: bytes) -> tuple[int, str, bytes]:
        address = urlsplit(self.url)
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        match = re.search(rb"\r\ncontent-type: *([^\r]*)", head, re.IGNORECASE)
        return status, match.group(1).decode() if match else "", body

    def healthy(self) -> None:
        """The server still answers its health check and still accepts a good event."""
        assert self.client.get("/api/v1/health").status_code == 200
        reply = self.client.post(
            PUBLISH.format("orders"),
            json={"type": "health.check", "data": {}},
            headers={"Authorization": f"Bearer {self.tokens['shop']}"},
        )
        assert reply.status_code == 202, reply.text


# --- strategies -------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)  # fmt: skip
json_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


def _dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _not_an_event(value) -> bool:
    return not (isinstance(value, dict) and ("type" in value or "events" in value))


not_json = st.binary(min_size=1, max_size=3000).filter(lambda b: not _parses(b)).map(lambda b: Case(b, label="bytes"))
non_events = json_values.filter(_not_an_event).map(lambda v: Case(_dumps(v), expect=frozenset({400, 422})))

_int64 = st.integers(-(2**63), 2**63 - 1)
_bad_text = st.one_of(st.just(""), st.text(min_size=201, max_size=400), _int64, st.none(), st.lists(st.text()))
_attribute = st.sampled_from(["id", "key", "subject"])
_bad_times = st.one_of(
    st.text(max_size=40), _int64, st.just("2026-02-30T12:00:00Z"), st.just("2026-01-31 12:00"),
    st.just("2026-W05"), st.just("2026-01-31T25:00:00Z"), st.just("2026-01-31T12:00:00"),
)  # fmt: skip
_bad_extension_names = st.text(min_size=1, max_size=30).filter(
    lambda n: not re.fullmatch(r"[a-z0-9]{1,20}", n) and n not in {"id", "type", "time", "subject", "key", "data"}
)
_reserved = st.sampled_from(["specversion", "source", "topic", "datacontenttype", "dataschema", "data_base64"])
invalid_events = st.one_of(
    _bad_text.map(lambda t: {"type": t, "data": 1}),
    st.tuples(_attribute, _bad_text.filter(lambda v: v is not None)).map(lambda p: {"type": "a", p[0]: p[1]}),
    _bad_times.map(lambda t: {"type": "a", "time": t}),
    st.tuples(_bad_extension_names, json_values).map(lambda p: {"type": "a", p[0]: p[1]}),
    st.tuples(_reserved, json_values).map(lambda p: {"type": "a", p[0]: p[1]}),
    st.integers(2**31, 2**63 - 1).map(lambda n: {"type": "a", "ext": n}),
    st.text(min_size=2049, max_size=2100).map(lambda t: {"type": "a", "ext": t}),
    json_values.map(lambda d: {"data": d}),
).map(lambda e: Case(_dumps(e), expect=frozenset({422}), label=f"invalid event {str(e)[:80]}"))
invalid_in_batch = st.tuples(st.integers(0, 5), invalid_events).map(
    lambda p: Case(
        b'{"events": [' + b",".join([b'{"type": "ok"}'] * p[0] + [p[1].body]) + b"]}",
        expect=frozenset({422}),
        label="a batch with one invalid event",
    )
)


def _nest(depth: int, kind: str) -> bytes:
    opening, closing = ("[", "]") if kind == "list" else ('{"a":', "}")
    return f'{{"type": "deep", "data": {opening * depth}1{closing * depth}}}'.encode()


deep = st.tuples(st.integers(300, 60_000), st.sampled_from(["list", "dict"])).map(
    lambda p: Case(_nest(*p), expect=frozenset({400, 413, 422}), label=f"nested {p[0]} deep")
)
_huge = st.one_of(
    st.integers(min_value=2**64).map(str), st.integers(max_value=-(2**63) - 1).map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e999999", "0." + "0" * 500 + "1e99999"]),
)  # fmt: skip
huge_numbers = _huge.map(
    lambda n: Case(f'{{"type": "n", "data": {{"amount": {n}}}}}'.encode(), expect=frozenset({400}), label=n[:40])
)
_bad_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80"])
_plain = st.text(alphabet=string.ascii_letters + " ", max_size=10).map(str.encode)
non_utf8 = st.tuples(_plain, _bad_utf8, _plain).map(
    lambda p: Case(b'{"type": "t", "data": "' + b"".join(p) + b'"}', expect=frozenset({400}), label=f"bytes {p[1]!r}")
)
_key = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)
duplicate_keys = st.tuples(_key, json_values, json_values, st.booleans()).map(
    lambda p: Case(
        (f'{{"type": "t", "data": {{"{p[0]}": {json.dumps(p[1])}, "{p[0]}": {json.dumps(p[2])}}}}}' if p[3]
         else f'{{"type": "t", "{p[0]}": 1, "{p[0]}": 2}}').encode(),
        expect=frozenset({400}), label="a repeated key",
    )
)  # fmt: skip
_supported = {JSON, "application/cloudevents+json", "application/cloudevents-batch+json"}
_media = st.from_regex(r"\A[a-z]{1,12}/[a-z0-9.+-]{1,20}\Z").filter(lambda m: m not in _supported)
wrong_content_types = st.one_of(
    _media, st.just("text/plain"), st.just("application/x-www-form-urlencoded"), st.just("multipart/form-data"),
    st.sampled_from(["application/json; charset=latin-1", "application/json; charset=utf-16", "application/xml"]),
).map(lambda m: Case(b'{"type": "t"}', content_type=m, expect=frozenset({415}), label=m))  # fmt: skip
_token_text = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=250)
bad_tokens = st.one_of(
    _token_text.map(lambda t: Case(b'{"type": "t"}', token=t.strip() or "x", expect=frozenset({401}))),
    st.sampled_from(["revoked", "other", None]).map(
        lambda t: Case(b'{"type": "t"}', token=t, expect=frozenset({401, 403}), label=f"token {t}")
    ),
    _token_text.map(
        lambda t: Case(b'{"type": "t"}', token=None, headers=(("Authorization", t.strip()),), expect=frozenset({401}))
    ),
)
_strange = st.text(min_size=1, max_size=120).filter(lambda n: n not in {"orders", "payments", ".", ".."})
strange_topics = _strange.map(
    lambda n: Case(b'{"type": "t"}', topic=n, expect=frozenset({403, 404}), label=f"topic {n!r}")
)
cloudevents = st.one_of(
    json_values.map(lambda v: Case(_dumps(v), content_type="application/cloudevents+json")),
    json_values.map(lambda v: Case(_dumps([v]), content_type="application/cloudevents-batch+json")),
    st.dictionaries(st.sampled_from(["ce-id", "ce-type", "ce-source", "ce-topic", "ce-data", "ce-time"]),
                    st.text(alphabet=string.ascii_letters, max_size=20)).map(
        lambda h: Case(b"\xff\x00", content_type=JSON, headers=(("ce-specversion", "1.0"), *h.items()))),
)  # fmt: skip

STRATEGIES = {
    "not JSON": not_json,
    "JSON that is no event": non_events,
    "invalid events": invalid_events,
    "one invalid event in a batch": invalid_in_batch,
    "deep nesting": deep,
    "huge numbers, NaN, Infinity": huge_numbers,
    "non-UTF-8": non_utf8,
    "repeated keys": duplicate_keys,
    "wrong content types": wrong_content_types,
    "bad, revoked, other-topic tokens": bad_tokens,
    "strange topic names": strange_topics,
    "CloudEvents garbage": cloudevents,
}


def _parses(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


# --- the hand-written corpus ---------------------------------------------------------


def _http(head: str, body: bytes) -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


def _chunked(body: bytes, size: int = 8192) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


_HEAD = "POST /api/v1/topics/orders/events HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {token}\n"
_EVENT = b'{"type": "order.created", "data": {"n": 1}}'


def _refused(body: bytes, *statuses: int, **options) -> Case:
    return Case(body, expect=frozenset(statuses), **options)


def _structured(body: bytes) -> Case:
    return _refused(body, 422, content_type="application/cloudevents+json", label=body.decode()[:60])


def _socket(label: str, headers: str, body: bytes, *statuses: int) -> Case:
    head = _HEAD + "Content-Type: application/json\nConnection: close\n" + headers
    return _refused(b"", *statuses, raw=_http(head, body), label=label)


def corpus() -> list[Case]:
    """Cases a generator would rarely hit, each with the answer it must get."""
    over = b'{"type": "big", "data": "' + b"x" * (LIMIT + 1 - 27) + b'"}'
    assert len(over) == LIMIT + 1
    big_event = b'{"type": "big", "data": "' + b"x" * 300_000 + b'"}'
    thousand_and_one = b'{"events": [' + b",".join([b'{"type": "t"}'] * 1001) + b"]}"
    chunked = "Transfer-Encoding: chunked\n"
    return [
        _refused(b"", 400, label="empty body"),
        _refused(b"   ", 400, label="blank body"),
        _refused(b"{", 400, label="truncated"),
        _refused(b'{"type": "t",}', 400, label="trailing comma"),
        _refused(b"{'type': 't'}", 400, label="single quotes"),
        _refused(b'{"type": "t"} {"type": "u"}', 400, label="two documents"),
        _refused(b"\xef\xbb\xbf" + _EVENT, 400, label="a byte-order mark"),
        _refused(_EVENT.replace(b"1", b"NaN"), 400, label="NaN"),
        _refused(b'{"type": "t", "data": 1e309}', 400, label="1e309"),
        _refused(b'{"type": "t", "data": ' + b"9" * 5000 + b"}", 400, label="a 5000-digit number"),
        _refused(b'{"type": "t", "data": 18446744073709551616}', 400, label="2**64"),
        _refused(b'{"type": "t", "data": "\\ud800"}', 400, 422, label="a lone surrogate escape"),
        _refused(b'{"type": "t", "data": "\x00"}', 400, label="a raw NUL in a string"),
        _refused(b'{"type": "t", "\\u0074ype": "u"}', 400, label="a key repeated through an escape"),
        _refused(b'{"type": "t", "data": {"a:b": 1, "a:b": 2}}', 400, label="repeated keys with colons"),
        _refused(b'{"events": []}', 422, label="an empty batch"),
        _refused(b'{"events": {}}', 422, label="events not a list"),
        _refused(b'{"events": [], "extra": 1}', 422, label="a batch with more"),
        _refused(thousand_and_one, 413, label="1,001 events"),
        _refused(over, 413, label="one byte over the body limit"),
        _refused(big_event, 413, label="an event over the topic's limit"),
        _refused(b"[]", 422, content_type="application/cloudevents-batch+json", label="an empty CloudEvents batch"),
        _structured(b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t"}'),
        _structured(b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": 1, "data_base64": "AA=="}'),
        _structured(b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data_base64": "%%%"}'),
        _structured(b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "topic": "x"}'),
        _refused(b"", 400, 415, content_type=None, label="no content type, no body"),
        _refused(_EVENT, 415, content_type=None, label="a body without content type"),
        _refused(_EVENT, 415, content_type="", label="an empty content type"),
        _refused(_EVENT, 415, content_type="application/json; charset=iso-8859-1"),
        _refused(_EVENT, 401, token=None, label="no token"),
        _refused(_EVENT, 401, token=None, headers=(("Authorization", "Basic dXNlcjpwYXNz"),), label="basic auth"),
        _refused(_EVENT, 401, token=None, headers=(("Authorization", "Bearer"),), label="a bearer without token"),
        _refused(_EVENT, 401, token="revoked", label="a revoked token"),
        _refused(_EVENT, 403, token="other", label="another topic's producer"),
        _refused(_EVENT, 401, token="x" * 10_000, label="a 10,000-character token"),
        _refused(_EVENT, 403, topic="payments", label="a topic the shop may not use"),
        _refused(_EVENT, 403, topic="inactive", label="an inactive topic"),
        *(_refused(_EVENT, 404, topic=name, label=f"topic {name[:20]!r}") for name in _STRANGE_TOPICS),
        *(_refused(_EVENT, 405, method=method, label=method) for method in ("GET", "PUT", "DELETE", "PATCH")),
        _socket("chunked, malformed, no Content-Length", chunked, _chunked(b'{"type": '), 400),
        _socket("chunked, one byte over the limit, no Content-Length", chunked, _chunked(over), 413),
        _socket("an understated Content-Length", "Content-Length: 10\n", _EVENT, 400),
        _socket("chunked with an understated Content-Length", chunked + "Content-Length: 5\n", _chunked(_EVENT), 400),
        _socket("a negative Content-Length", "Content-Length: -1\n", _EVENT, 400),
    ]


_STRANGE_TOPICS = [
    "ORDERS",
    "orders\n",
    "orders ",
    "..",
    ".",
    "x" * 101,
    "<script>alert(1)</script>",
    "orders%00",
    "-a",
]
