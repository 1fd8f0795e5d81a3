"""The fake API's envelope mode: company-API answers in ``{"code", "msg", "data"}``, with
the faults such APIs have (busy, throttled and lying answers in the body, denied nodes,
two ways of saying "no children"). ``handle`` and ``_fault`` are called directly: no
socket.
"""

from __future__ import annotations

import pytest

from resumer.fake.server import FakeAPI, Faults
from resumer.fake.tree import FakeTree

TREE = FakeTree(seed=5, roots=4, fanout=(4, 4, 4), names="zh")


def api(**faults: object) -> FakeAPI:
    return FakeAPI(TREE, faults=Faults(envelope=True, **faults))  # type: ignore[arg-type]


def test_the_roots_and_children_are_in_data_list_with_code_0() -> None:
    status, document = api().handle("GET", "/features", b"")
    assert (status, document["code"], document["msg"]) == (200, 0, "成功")
    assert document["data"]["list"] == TREE.root_items()
    status, document = api().handle("GET", "/children?id=F1", b"")
    assert document["data"]["list"] == TREE.children("F1", 1)


def test_a_node_without_children_says_so_by_404_or_by_null_data() -> None:
    childless = [i["id"] for level, i in TREE.walk(3) if not TREE.children(i["id"], level)]
    answers = [api().handle("GET", f"/children?id={node}", b"") for node in childless[:8]]
    said = {(status, doc["code"], doc["data"] is None) for status, doc in answers}
    assert said == {(404, 404, True), (200, 0, True)}  # both ways, among the first few
    again = [api().handle("GET", f"/children?id={childless[0]}", b"") for _ in range(3)]
    assert again == [answers[0]] * 3  # one node, always the same way


def test_a_denied_node_is_refused_in_the_body_every_time() -> None:
    server = api(denied=frozenset({"F2"}))
    for _ in range(3):
        status, document = server.handle("GET", "/children?id=F2", b"")
        assert (status, document) == (200, {"code": 403, "msg": "无权限访问该特性", "data": None})


def test_an_unknown_node_is_a_404_with_its_reason_in_msg() -> None:
    status, document = api().handle("GET", "/children?id=F99", b"")
    assert (status, document["code"], document["msg"]) == (404, 404, "no feature F99")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("busy_rate", {"code": 500, "msg": "系统繁忙，请稍后再试", "data": None}),  # noqa: RUF001
        ("body_throttle_rate", {"code": 429, "msg": "请求过于频繁", "data": {"retryAfter": 0.5}}),
        ("lie_rate", {"code": 500, "msg": "内部错误", "data": {"list": []}}),
    ],
)
def test_body_faults_answer_200_with_the_error_inside(fault: str, expected: object) -> None:
    server = api(**{fault: 1.0, "retry_after": 0.5})
    answer = server._fault("/children?id=F1", in_flight=1)
    assert answer is not None and (answer.status, answer.body) == (200, expected)


def test_body_faults_need_the_envelope() -> None:
    with pytest.raises(ValueError, match="need the envelope"):
        Faults(busy_rate=0.1)
    with pytest.raises(ValueError, match="names"):
        FakeTree(names="fr")


def test_chinese_names_are_chinese_and_stable() -> None:
    name = TREE.item("F1.2")["name"]
    assert name.endswith(" 1.2") and not name.isascii()
    assert TREE.item("F1.2")["name"] == name
    assert FakeTree(seed=5).item("F1.2")["name"] == "Feature 1.2"
