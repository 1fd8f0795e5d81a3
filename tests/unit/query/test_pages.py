"""``[response.pagination]`` through one query (respx): page mode stops at a short page,
cursor mode follows the cursor until it is null, a repeated cursor is an error and not a
loop, so is a full page repeated (page or offset ignored, or the last page answered again
past the end), and a failed middle page fails the whole query."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from resumer.errors import QueryError
from resumer.job.bound import bind
from resumer.job.loader import parse_job
from resumer.model import Task
from resumer.query.client import Client

BASE = "http://127.0.0.1:9"
TASK = Task(node=5, level=2, id="A 1/x", name="Alpha", type="core", parent_id="P1")


def paged_client(pagination: str, method: str = "GET") -> Client:
    text = (
        f'[source]\nurl = "{BASE}/f"\n[request]\nurl = "{BASE}/children"\nmethod = "{method}"\n'
        f'[response]\nitems = "data.items"\n[response.pagination]\n{pagination}'
    )
    return Client(bind(parse_job(text, "job.toml"), {}), httpx.Client())


def page_of(*ids: str, following: str | None = None) -> dict[str, object]:
    return {"data": {"items": [{"id": i} for i in ids], "next": following}}


@respx.mock
def test_page_mode_reads_pages_until_a_short_one() -> None:
    route = respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page_of("a", "b")),
            httpx.Response(200, json=page_of("c", "d")),
            httpx.Response(200, json=page_of("e")),
        ]
    )
    items = paged_client('mode = "page"\nsize = 2\n').query(TASK, 5.0)
    assert [i.id for i in items] == ["a", "b", "c", "d", "e"]
    pages = [dict(call.request.url.params) for call in route.calls]
    assert [(p["page"], p["size"], p["id"]) for p in pages] == [
        ("1", "2", "A 1/x"),
        ("2", "2", "A 1/x"),
        ("3", "2", "A 1/x"),
    ]


@respx.mock
def test_cursor_mode_follows_the_cursor_until_it_is_null() -> None:
    route = respx.post(f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page_of("a", following="k1")),
            httpx.Response(200, json=page_of("b", following="k2")),
            httpx.Response(200, json=page_of("c")),
        ]
    )
    client = paged_client('mode = "cursor"\ncursor_path = "data.next"\nsize_param = ""\n', "POST")
    assert [i.id for i in client.query(TASK, 5.0)] == ["a", "b", "c"]
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [s.get("cursor") for s in sent] == [None, "k1", "k2"]
    assert all(s["id"] == "A 1/x" for s in sent)


@respx.mock
def test_a_failed_middle_page_fails_the_whole_query() -> None:
    respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page_of("a", "b")),
            httpx.Response(500, text="oops"),
        ]
    )
    with pytest.raises(QueryError, match="HTTP 500") as caught:
        paged_client('mode = "page"\nsize = 2\n').query(TASK, 5.0)
    assert caught.value.transient


@respx.mock
def test_a_repeated_cursor_is_an_error_not_a_loop() -> None:
    respx.get(url__startswith=f"{BASE}/children").respond(json=page_of("a", following="same"))
    with pytest.raises(QueryError, match="repeated"):
        paged_client('mode = "cursor"\ncursor_path = "data.next"\n').query(TASK, 5.0)


@respx.mock
def test_the_last_page_answered_again_past_the_end_is_an_error_not_a_count_for_ever() -> None:
    # json-server 1.0 answers any _page past the last with the last page: 4 items in pages of
    # 2 would never meet a short page.
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["_page"])
        return httpx.Response(200, json=page_of("a", "b") if page == 1 else page_of("c", "d"))

    route = respx.get(url__startswith=f"{BASE}/children").mock(side_effect=answer)
    with pytest.raises(QueryError) as caught:
        paged_client('mode = "page"\npage_param = "_page"\nsize = 2\n').query(TASK, 5.0)
    assert route.call_count == 3 and not caught.value.transient
    assert "page_param '_page'" in str(caught.value) and "_page=3" in str(caught.value)


@respx.mock
def test_an_ignored_offset_is_an_error_at_the_second_page() -> None:
    route = respx.get(url__startswith=f"{BASE}/children").respond(json=page_of("a", "b"))
    with pytest.raises(QueryError, match="offset_param 'offset'") as caught:
        paged_client('mode = "offset"\nlimit = 2\n').query(TASK, 5.0)
    assert route.call_count == 2 and not caught.value.transient


@respx.mock
def test_equal_pages_apart_are_not_a_repeat() -> None:
    pages = [page_of("a", "b"), page_of("c", "d"), page_of("a", "b"), page_of("e")]
    respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )
    items = paged_client('mode = "page"\nsize = 2\n').query(TASK, 5.0)
    assert [i.id for i in items] == ["a", "b", "c", "d", "a", "b", "e"]


@respx.mock
def test_pages_of_one_item_may_repeat_it() -> None:
    # Two siblings alike, in pages of one: not a repeated page (nothing tells them apart).
    pages = [page_of("a"), page_of("a"), page_of()]
    respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )
    items = paged_client('mode = "page"\nsize = 1\n').query(TASK, 5.0)
    assert [i.id for i in items] == ["a", "a"]
