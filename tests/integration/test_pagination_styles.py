"""`[response.pagination]` modes link, offset and next_url: complete crawls of the fake
API, and the answers that must fail a query (a loop, another server, a non-URL),
and the job files that must be refused (a key of another mode)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from resumer import api
from resumer.errors import ConfigError, QueryError
from resumer.fake.server import FakeAPI, Faults
from resumer.fake.tree import FakeTree
from resumer.job.bound import bind
from resumer.job.loader import parse_job
from resumer.model import Task
from resumer.query.client import Client
from tests.helpers import write_job

TREE = FakeTree(seed=21, roots=4, fanout=(5, 3, 2))
BASE = "http://api.test"
TASK = Task(1, 1, "A", "Alpha", "core", "")


def exported(db: Path) -> Any:
    out = io.StringIO()
    api.export_to(db, out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize(
    ("pagination", "next_link", "method", "engine"),
    [
        ('mode = "link"', "header", "GET", "curl"),
        ('mode = "link"', "header", "GET", "httpx"),
        ('mode = "link"', "header", "POST", "curl"),
        ('mode = "next_url"', "body", "GET", "curl"),
        ('mode = "next_url"', "body", "GET", "httpx"),
        ('mode = "next_url"\nnext_url_path = "links.next"', "body", "POST", "curl"),
        ('mode = "offset"\nlimit = 2', "", "GET", "curl"),
        ('mode = "offset"\nlimit = 2', "", "POST", "httpx"),
    ],
)
def test_each_mode_crawls_the_whole_tree(
    tmp_path: Path, pagination: str, next_link: str, method: str, engine: str
) -> None:
    with FakeAPI(TREE, faults=Faults(page_size=2, next_link=next_link)) as server:
        request = (
            f'[request]\nurl = "{server.url}/children"\nmethod = "{method}"\nengine = "{engine}"\n'
        )
        response = f'[response]\nitems = "data.items"\n[response.pagination]\n{pagination}\n'
        job = write_job(tmp_path, server.url, request=request, response=response)
        assert api.run(job, tmp_path / "r.db").exit_status == 0
        calls = server.stats.received
    assert exported(tmp_path / "r.db") == TREE.expected_export(4)
    assert calls == 1 + expected_pages(pagination)  # the source, then each node's pages


def expected_pages(pagination: str) -> int:
    """Calls for every node's children at 2 a page: a link or URL mode stops at the last
    page; offset mode reads on until a short or empty one."""
    counts = [len(TREE.children(item["id"], level)) for level, item in TREE.walk(3)]
    if "offset" in pagination:
        return sum(n // 2 + 1 for n in counts)
    return sum(max(1, -(-n // 2)) for n in counts)


def client_for(pagination: str) -> Client:
    text = (
        f'[source]\nurl = "{BASE}/f"\n[request]\nurl = "{BASE}/children"\n'
        f'[response]\nitems = "items"\n[response.pagination]\n{pagination}\n'
    )
    return Client(bind(parse_job(text, "job.toml"), {}), httpx.Client())


def page(*ids: str, **extra: Any) -> dict[str, Any]:
    return {"items": [{"id": i} for i in ids], **extra}


@respx.mock
def test_link_mode_resolves_relative_links_against_the_request() -> None:
    respx.get(f"{BASE}/children", params={"id": "A"}).mock(
        return_value=httpx.Response(200, json=page("a"), headers={"Link": '<p2?x=1>; rel="next"'})
    )
    second = respx.get(f"{BASE}/p2", params={"x": "1"}).mock(
        return_value=httpx.Response(
            200, json=page("b"), headers={"Link": '</first>; rel="first", </p3>; rel="next"'}
        )
    )
    third = respx.get(f"{BASE}/p3").mock(return_value=httpx.Response(200, json=page("c")))
    items = client_for('mode = "link"').query(TASK, 5.0)
    assert [i.id for i in items] == ["a", "b", "c"]
    assert second.call_count == third.call_count == 1


@respx.mock
def test_a_next_url_seen_before_is_an_error_not_a_loop() -> None:
    respx.get(url__startswith=f"{BASE}/children").mock(
        return_value=httpx.Response(200, json=page("a", links={"next": f"{BASE}/p2"}))
    )
    respx.get(f"{BASE}/p2").mock(
        return_value=httpx.Response(200, json=page("b", links={"next": f"{BASE}/p2"}))
    )
    with pytest.raises(QueryError, match="fetched already") as failed:
        client_for('mode = "next_url"').query(TASK, 5.0)
    assert not failed.value.transient


@respx.mock
def test_a_next_page_on_another_server_is_not_followed() -> None:
    respx.get(url__startswith=f"{BASE}/children").mock(
        return_value=httpx.Response(
            200, json=page("a"), headers={"Link": '<http://elsewhere.test/p2>; rel="next"'}
        )
    )
    with pytest.raises(QueryError, match="another server"):
        client_for('mode = "link"').query(TASK, 5.0)


@respx.mock
@pytest.mark.parametrize("given", [None, "", "absent"])
def test_next_url_mode_stops_when_the_url_is_null_empty_or_absent(given: str | None) -> None:
    links = {} if given == "absent" else {"next": given}
    route = respx.get(url__startswith=f"{BASE}/children").mock(
        return_value=httpx.Response(200, json=page("a", links=links))
    )
    assert [i.id for i in client_for('mode = "next_url"').query(TASK, 5.0)] == ["a"]
    assert route.call_count == 1


@respx.mock
def test_next_url_mode_refuses_a_value_that_is_not_a_url() -> None:
    respx.get(url__startswith=f"{BASE}/children").mock(
        return_value=httpx.Response(200, json=page("a", links={"next": 2}))
    )
    with pytest.raises(QueryError, match="not a URL"):
        client_for('mode = "next_url"').query(TASK, 5.0)


@respx.mock
def test_offset_mode_sends_offset_and_limit_until_a_short_page() -> None:
    route = respx.get(url__startswith=f"{BASE}/children").mock(
        side_effect=[
            httpx.Response(200, json=page("a", "b")),
            httpx.Response(200, json=page("c", "d")),
            httpx.Response(200, json=page("e")),
        ]
    )
    items = client_for('mode = "offset"\nlimit = 2\noffset_param = "start"').query(TASK, 5.0)
    assert [i.id for i in items] == ["a", "b", "c", "d", "e"]
    sent = [dict(call.request.url.params) for call in route.calls]
    assert [(p["start"], p["limit"]) for p in sent] == [("0", "2"), ("2", "2"), ("4", "2")]


@pytest.mark.parametrize(
    ("pagination", "message"),
    [
        ('mode = "link"\nsize = 10', 'size: is for mode = "page", not "link"'),
        ('mode = "offset"\npage_param = "p"', 'page_param: is for mode = "page", not "offset"'),
        ('mode = "page"\nlimit = 10', 'limit: is for mode = "offset", not "page"'),
        ('mode = "cursor"\nnext_url_path = "n"', 'is for mode = "next_url", not "cursor"'),
        ('mode = "next_url"\nnext_url_path = ""', "next_url_path: expected a non-empty string"),
        ('mode = "offset"\nlimit = 0', "limit: expected an integer from 1"),
    ],
)
def test_keys_of_another_mode_are_refused_with_the_mode_they_belong_to(
    pagination: str, message: str
) -> None:
    text = (
        f'[source]\nurl = "{BASE}/f"\n[request]\nurl = "{BASE}/children"\n'
        f"[response.pagination]\n{pagination}\n"
    )
    with pytest.raises(ConfigError, match=r"response\.pagination") as refused:
        parse_job(text, "job.toml")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
