"""The hot path of the runner: POST /v1/events served ahead of FastAPI, token caching, the writer's hand-off.

`RunnerApp` answers `POST /v1/events` through `EventsEndpoint` without FastAPI's
routing; the FastAPI route stays for the OpenAPI document. Both must answer
byte for byte alike, errors included, so the comparison below sends the same
requests through each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flowctl.runner.app import RunnerApp
from flowctl.runner.auth import TokenCache, authenticate
from flowctl.runner.writer import Writer
from flowctl.store.sqlite import SqliteStore

from .conftest import Api
from .test_runner_api import apply
from .world import contact_created, custom


@contextmanager
def through_the_route(api: Api) -> Iterator[None]:
    """Serve POST /v1/events with the FastAPI route instead of the fast path."""
    app = api.client.app
    assert isinstance(app, RunnerApp) and app.events_endpoint is not None
    endpoint, app.events_endpoint = app.events_endpoint, None
    try:
        yield
    finally:
        app.events_endpoint = endpoint


def answer(api: Api, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    r = api.client.post("/v1/events", content=body, headers=headers)
    kept = {k: v for k, v in r.headers.items() if k in ("content-type", "content-length", "www-authenticate")}
    return r.status_code, kept, r.content


def test_the_fast_path_answers_exactly_like_the_fastapi_route(make_api: Callable[..., Api]) -> None:
    api = make_api({"max_request_bytes": 4096})
    apply(api)
    viewer = api.token("viewer")
    json_headers = {**api.headers(), "Content-Type": "application/json"}
    first = api.post("/v1/events", contact_created("c-1", key="crm-1"))
    assert first.status_code == 202
    many = b"[" + b",".join([b'{"type": "event", "name": "x", "record": {"id": "c"}}'] * 1001) + b"]"
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        ("a repeated idempotency key", _json(contact_created("c-1", key="crm-1")), json_headers),
        ("no token", _json(custom("park", "c-1")), {"Content-Type": "application/json"}),
        ("an unknown token", _json(custom("park", "c-1")), api.headers("fct_o_not-a-token")),
        ("a malformed Authorization header", b"{}", {"Authorization": "Basic abc"}),
        ("a viewer token", _json(custom("park", "c-1")), api.headers(viewer)),
        ("not JSON", b"{not json", json_headers),
        ("an empty body", b"", json_headers),
        ("an empty list", b"[]", json_headers),
        ("a missing field", _json({"type": "record_created", "record": {"id": "c-1"}}), json_headers),
        ("an unknown key", _json({**custom("park", "c-1"), "surprise": 1}), json_headers),
        ("a bad item in a list", _json([custom("park", "c-1"), {"type": "nope"}]), json_headers),
        ("an engine refusal", _json({"type": "record_updated", "object": "contact"}), json_headers),
        ("more than 1000 events", many, json_headers),
        ("a body over max_request_bytes", _json(contact_created("c-2", note="x" * 5000)), json_headers),
    ]
    for label, body, headers in cases:
        fast = answer(api, body, headers)
        with through_the_route(api):
            routed = answer(api, body, headers)
        assert fast == routed, label
        assert fast[0] != 500, label
    # New events get new ids and runs: compare the shape and that both started their run.
    fast_new = api.post("/v1/events", custom("park", "c-1"))
    with through_the_route(api):
        routed_new = api.post("/v1/events", custom("park", "c-1"))
    assert fast_new.status_code == routed_new.status_code == 202
    assert fast_new.json().keys() == routed_new.json().keys()
    assert len(fast_new.json()["runs"]) == len(routed_new.json()["runs"]) == 1
    both = api.post("/v1/events", [custom("park", "c-1"), contact_created("c-3")]).json()
    assert [len(a["runs"]) for a in both] == [1, 1]


def test_the_route_still_documents_the_events_endpoint(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    body = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/EventIn"} in body["oneOf"]


def test_other_paths_and_methods_go_through_fastapi(api: Api) -> None:
    assert api.client.get("/v1/events", headers=api.headers()).status_code == 405
    # FastAPI redirects the trailing slash to the real path (which the fast path then answers).
    r = api.client.post("/v1/events/", headers=api.headers(), follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].endswith("/v1/events")
    assert api.get("/v1/health").json()["status"] == "ok"


def test_a_cached_token_is_checked_once_per_ttl_and_unknown_tokens_are_not_cached(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "t.db")
    from flowctl.runner.auth import AuthError, create_token

    token_id, token = create_token(store, "operator", name="crm")
    cache = TokenCache(ttl=60)
    first = authenticate(store, f"Bearer {token}", cache=cache)
    assert first.role == "operator" and first.token_id == token_id
    store.revoke_token(token_id, first_seen := store.tokens()[0].created_at)
    assert first_seen is not None
    # Within the TTL the cached principal answers (docs/runner.md: a revoked token fails within 2 s).
    assert authenticate(store, f"Bearer {token}", cache=cache) == first
    # Without the cache (or after the TTL) the revocation is seen at once.
    with pytest.raises(AuthError):
        authenticate(store, f"Bearer {token}", cache=TokenCache(ttl=60))
    expired = TokenCache(ttl=0)
    with pytest.raises(AuthError):
        authenticate(store, f"Bearer {token}", cache=expired)
    with pytest.raises(AuthError):
        authenticate(store, "Bearer fct_o_unknown", cache=cache)
    assert all(p.token_id == token_id for p, _ in cache._entries.values())
    store.close()


def test_a_job_cancelled_before_it_runs_is_skipped_and_the_writer_keeps_going(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "w.db")
    writer = Writer(store)
    writer.start()
    gate = threading.Event()
    blocker = writer.submit(gate.wait)  # holds the thread so the next jobs wait in the queue
    cancelled = writer.submit(lambda: store.kv_put("t", "cancelled", 1))
    assert cancelled.cancel()
    after = writer.submit(lambda: store.kv_put("t", "after", 2))
    gate.set()
    blocker.result(5)
    after.result(5)
    assert writer.alive
    assert store.kv_get("t", "cancelled") is None and store.kv_get("t", "after") == 2
    writer.stop()
    store.close()


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()
