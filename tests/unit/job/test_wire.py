"""What can go on the wire, for URLs: ``url_problem`` accepts every usable HTTP endpoint and
names what is wrong with an unusable one, and the loader refuses that URL at load with the
same words, naming the key."""

from __future__ import annotations

import pytest

from resumer.errors import ConfigError
from resumer.job.loader import parse_job
from resumer.job.wire import url_problem

MINIMAL = '[source]\nurl = "http://127.0.0.1:1/features"\n[request]\nurl = "http://127.0.0.1:1/c"\n'


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_job(text, "job.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8808/children",
        "https://api.example.com/v1/children/{id}?type={type}",
        "http://[::1]:8080/c",
        "HTTPS://user:pass@host.example/c",
        "http://h/{level}/{parent_id}/{name}",
    ],
)
def test_usable_urls_are_accepted(url: str) -> None:
    assert url_problem(url.replace("{", "").replace("}", "")) is None
    assert parse_job(MINIMAL.replace("http://127.0.0.1:1/c", url), "job.toml").request.url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x/c", "must start with http:// or https://"),
        ("127.0.0.1:8808/c", "must start with http:// or https://"),
        ("http://127.0.0.1:abc/children", 'has port "abc": expected a number from 1 to 65535'),
        ("http://h:0/c", "expected a number from 1 to 65535"),
        ("http://h:65536/c", "expected a number from 1 to 65535"),
        ("http:///c", "has no host"),
        ("http://a b/c", 'has an invalid host "a b"'),
        ("http://[::1/c", "is not a valid URL"),
        ("http://h/\x00", "holds a control character (\\x00)"),
    ],
)
def test_unusable_urls_are_refused_at_load_naming_the_key(url: str, problem: str) -> None:
    assert url_problem(url) == problem or problem in (url_problem(url) or "")
    message = error_of(MINIMAL.replace("http://127.0.0.1:1/c", url.replace("\x00", "\\u0000")))
    assert message.startswith("job.toml:4: request.url: ")
    assert problem in message
