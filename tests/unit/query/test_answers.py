"""``query.answers``: what an answer means, by the job's rules or by its status.

Rules are tried in order and the first whose conditions all hold decides; no rule
matching, the status decides: a throttle slows the send rate and never fails a node,
a failure is retried and counted by the breaker, a permanent error fails the node.
"""

from __future__ import annotations

import pytest

from resumer.job.loader import parse_job
from resumer.job.settings import DEFAULT_RETRY_ON, Condition, Rule
from resumer.query.answers import (
    FAILURE,
    NOT_JSON,
    PERMANENT,
    THROTTLE,
    Body,
    Rules,
    Verdict,
    api_message,
    kind_of_status,
)
from tests.helpers import ENVELOPE_RULES

MINIMAL = '[source]\nurl = "http://127.0.0.1:1/f"\n[request]\nurl = "http://127.0.0.1:1/c"\n'
RULES = Rules(parse_job(MINIMAL + ENVELOPE_RULES, "job.toml").response.rules)


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (404, b"Not Found", Verdict("empty", 1)),
        (200, b'{"code": 500, "msg": "busy", "data": null}', Verdict("retry", 2)),
        (200, '{"code": "503", "msg": "系统繁忙"}'.encode(), Verdict("retry", 2)),
        (200, b'{"code": 429, "data": {"retryAfter": 2.5}}', Verdict("throttle", 3, 2.5)),
        (200, b'{"code": 429, "data": {"retryAfter": "7"}}', Verdict("throttle", 3, 7.0)),
        (200, b'{"code": 429, "data": {"retryAfter": "soon"}}', Verdict("throttle", 3)),
        (200, b"<html><body>502 Bad Gateway</body></html>", None),  # not JSON: no field
        (200, b'{"code": 403, "msg": "denied"}', Verdict("fail", 4)),
        (200, b'{"code": 500, "data": {"list": []}}', Verdict("retry", 2)),  # lying: not empty
        (200, b'{"code": 0, "data": null}', Verdict("empty", 5)),
        (200, b'{"code": "0", "data": {"list": []}}', None),  # no rule: read the items
        (200, b"plain text", None),  # no field holds of a body that is not JSON
    ],
)
def test_the_first_rule_whose_conditions_all_hold_decides(
    status: int, body: bytes, verdict: Verdict | None
) -> None:
    assert RULES.judge(status, Body(body)) == verdict


def test_every_condition_of_a_rule_must_hold() -> None:
    rule = Rule(1, "fail", frozenset({200}), Condition("code", "in", (1,)), contains="x")
    rules = Rules([rule])
    assert rules.judge(200, Body(b'{"code": 1, "x": 0}')) == Verdict("fail", 1)
    assert rules.judge(500, Body(b'{"code": 1, "x": 0}')) is None  # the status differs
    assert rules.judge(200, Body(b'{"code": 2, "x": 0}')) is None  # the field differs
    assert rules.judge(200, Body(b'{"code": 1}')) is None  # the text is not there


def test_no_rules_decide_nothing_and_say_so() -> None:
    rules = Rules(())
    assert not rules and not rules.renews
    assert rules.judge(200, Body(b"{}")) is None
    assert Rules([Rule(1, "renew", frozenset({403}))]).renews


def test_the_body_is_decoded_once_and_only_when_a_field_is_read() -> None:
    body = Body(b"{not json")
    assert Rules([Rule(1, "empty", frozenset({404}))]).judge(404, body) == Verdict("empty", 1)
    assert body.document is NOT_JSON


@pytest.mark.parametrize(
    ("content", "free"),
    [
        ('{"name": "特性 \\ud83d\\ude00"}'.encode(), True),  # orjson's: a whole pair
        (b'{"name": "\\ud800"}', False),  # a lone one: orjson refuses it, json takes it
        (b'{"name": "\xed\xa0\x80"}', False),  # in UTF-8's bytes: json's too
        ('{"name": "x"}'.encode("utf-16"), False),  # only json reads UTF-16
        (b'{"id": 12345678901234567890}', False),  # a long number: json's, to keep its digits
    ],
)
def test_only_a_body_orjson_decoded_is_known_to_hold_no_lone_surrogate(
    content: bytes, free: bool
) -> None:
    body = Body(content)
    assert body.document is not NOT_JSON
    assert body.surrogate_free is free


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"msg": "无权限访问该特性"}, "无权限访问该特性"),
        ({"msg": "two\n  lines"}, "two lines"),
        ({"msg": 42}, "42"),
        ({"msg": None}, None),
        ({"msg": ""}, None),
        ({"msg": {"text": "x"}}, None),
        ({}, None),
        (NOT_JSON, None),
    ],
)
def test_the_apis_own_message_is_read_on_one_line(document: object, message: str | None) -> None:
    assert api_message(document, "msg") == message


def test_a_long_message_is_cut() -> None:
    assert api_message({"msg": "x" * 1000}, "msg") == "x" * 200


def never() -> bool:
    return False


def always() -> bool:
    return True


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, THROTTLE),
        (425, THROTTLE),
        (408, FAILURE),
        (500, FAILURE),
        (502, FAILURE),
        (504, FAILURE),
        (503, FAILURE),  # nothing else answering: an outage
        (400, PERMANENT),
        (403, PERMANENT),
        (404, PERMANENT),
        (501, PERMANENT),  # not in retry_on
    ],
)
def test_each_status_counts_as_the_default_retry_on_says(status: int, kind: str) -> None:
    assert kind_of_status(status, None, DEFAULT_RETRY_ON, never) == kind


def test_a_503_is_a_throttle_when_it_says_when_to_come_back() -> None:
    assert kind_of_status(503, 2.0, DEFAULT_RETRY_ON, never) == THROTTLE


def test_a_503_is_a_throttle_while_the_server_still_serves_other_calls() -> None:
    assert kind_of_status(503, None, DEFAULT_RETRY_ON, always) == THROTTLE


def test_load_shedding_is_asked_only_about_a_503() -> None:
    asked: list[int] = []

    def sheds_load() -> bool:
        asked.append(1)
        return True

    for status in (429, 500, 404):
        kind_of_status(status, None, DEFAULT_RETRY_ON, sheds_load)
    assert asked == []


def test_a_status_left_out_of_retry_on_is_permanent_even_a_throttle() -> None:
    assert kind_of_status(429, 5.0, (500,), always) == PERMANENT
    assert kind_of_status(500, None, (500,), never) == FAILURE


def test_another_status_in_retry_on_below_500_is_a_throttle() -> None:
    assert kind_of_status(409, None, (409,), never) == THROTTLE


def test_contains_reads_the_raw_body_even_when_it_is_not_json() -> None:
    rules = Rules(
        [Rule(1, "retry", frozenset({200}), contains="<html"), Rule(2, "fail", contains="繁忙")]
    )
    assert rules.judge(200, Body(b"<html><body>502 Bad Gateway</body></html>")) == Verdict(
        "retry", 1
    )
    assert rules.judge(200, Body("系统繁忙，请稍后".encode())) == Verdict("fail", 2)  # noqa: RUF001
    assert rules.judge(500, Body(b"<html>")) is None


@pytest.mark.parametrize("offset", range(0, 40))
def test_a_long_number_is_found_wherever_it_falls_among_the_pieces(
    offset: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big body is looked through in overlapping pieces: a run of 19 digits is found
    across any boundary, and 18 are never taken for one."""
    from resumer.query import answers

    monkeypatch.setattr(answers, "_CHUNK", 32)
    pad = b" " * offset
    assert answers._has_long_number(pad + b"[" + b"9" * 19 + b"]" + b" " * 50)
    assert not answers._has_long_number(pad + b"[" + b"9" * 18 + b", 1]" + b" " * 50)
    assert not answers._has_long_number(b"")


def test_a_big_body_with_a_long_number_keeps_its_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    from resumer.query import answers

    monkeypatch.setattr(answers, "_CHUNK", 64)
    body = b'{"items": [' + b'{"id": 1}, ' * 40 + b'{"id": 123456789012345678901234}]}'
    assert answers.Body(body).document["items"][-1]["id"] == 123456789012345678901234


def test_a_body_past_big_body_is_decoded_by_json_to_the_same_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past BIG_BODY, ``json`` decodes (orjson's parse buffer is about ten times the body):
    the same values, and what ``json`` alone reads (NaN) as for any body it decodes."""
    import orjson

    from resumer.query import answers
    from resumer.query.mapping import Constant

    text = '{"items": [{"id": "A", "name": "名", "n": 1.5, "big": 12345678901234567}]}'
    small = answers.Body(text.encode()).document
    assert small == orjson.loads(text)
    decoded_by: list[str] = []
    monkeypatch.setattr(answers, "BIG_BODY", 16)
    monkeypatch.setattr(orjson, "loads", lambda _: decoded_by.append("orjson"))
    assert answers.Body(text.encode()).document == small
    assert decoded_by == []
    odd = answers.Body(b'{"values": [NaN, 1]}').document["values"]
    assert isinstance(odd[0], Constant) and odd[1] == 1
