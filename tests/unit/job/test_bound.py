"""``job.bound``: the job's ``${VAR}``s read from the environment once, checked, filled in.

The checks name the key and the variable, never the value; what the bound job carries
(templates with only placeholders left, the proxy, the webhook, ``[auth]``'s strings)
has every value filled in, and ``secrets`` lists each value to mask.
"""

from __future__ import annotations

import pytest

from resumer.errors import ConfigError
from resumer.job.bound import bind
from resumer.job.loader import parse_job

MINIMAL = '[source]\nurl = "http://127.0.0.1:1/features"\n[request]\nurl = "http://127.0.0.1:1/c"\n'
BASE = MINIMAL
OAUTH2 = (
    '[auth]\ntype = "oauth2"\ntoken_url = "https://login.example/oauth2/token"\n'
    'client_id = "${CLIENT_ID}"\nclient_secret = "${CLIENT_SECRET}"\nscope = "features.read"\n'
)
BEARER = '[auth]\ntype = "bearer"\ntoken = "${API_TOKEN}"\n'
BASIC = '[auth]\ntype = "basic"\nusername = "${API_USER}"\npassword = "${API_PASSWORD}"\n'


def test_undefined_environment_variable_is_an_error_at_run_time() -> None:
    job = parse_job(MINIMAL + 'headers = { Authorization = "Bearer ${TOKEN_X}" }\n', "job.toml")
    assert job.env_vars() == ("TOKEN_X",)
    with pytest.raises(ConfigError, match=r"environment variable TOKEN_X is not set"):
        bind(job, {})
    bound = bind(job, {"TOKEN_X": "s3cret"})
    assert bound.secrets == ("s3cret",)
    assert bound.request.headers["Authorization"].render({}) == "Bearer s3cret"


def test_a_url_from_the_environment_is_checked_at_run_time_without_showing_it() -> None:
    job = parse_job(MINIMAL.replace("http://127.0.0.1:1/c", "${API_BASE}/c"), "job.toml")
    bound = bind(job, {"API_BASE": "https://api.example"})
    assert bound.request.url.render({}) == "https://api.example/c"
    with pytest.raises(ConfigError) as caught:
        bind(job, {"API_BASE": "ftp://hidden-host"})
    assert str(caught.value) == (
        'job.toml: request.url: "${API_BASE}/c" must start with http:// or https:// '
        "(with ${API_BASE} from the environment)"
    )
    port = parse_job(MINIMAL.replace(":1/c", ":${PORT}/c"), "job.toml")  # a sample port at load
    with pytest.raises(ConfigError, match=r"request\.url: .* has port"):
        bind(port, {"PORT": "http"})


def test_a_header_value_from_the_environment_is_checked_at_run_time() -> None:
    job = parse_job(MINIMAL + 'headers = { Authorization = "Bearer ${TOKEN}" }\n', "job.toml")
    bound = bind(job, {"TOKEN": "abc\tdef"})
    assert bound.request.headers["Authorization"].render({}) == "Bearer abc\tdef"
    with pytest.raises(ConfigError) as caught:
        bind(job, {"TOKEN": "s3cret\r\nX-Evil: 1"})
    message = str(caught.value)
    assert message.startswith("job.toml: request.headers.Authorization: the value of ${TOKEN} ")
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        (BEARER, {"API_TOKEN": ""}, r"auth\.token: the value of \$\{API_TOKEN\} is empty"),
        (BEARER, {"API_TOKEN": "abc\nX: y"}, r"auth\.token: .* line break"),
        (BASIC, {"API_USER": "a:b", "API_PASSWORD": "p"}, r"auth\.username: .* colon"),
        (OAUTH2, {"CLIENT_ID": "app"}, r"CLIENT_SECRET is not set"),
    ],
)
def test_an_unusable_value_from_the_environment_is_refused_without_showing_it(
    text: str, environ: dict[str, str], message: str
) -> None:
    job = parse_job(BASE + text, "job.toml")
    with pytest.raises(ConfigError, match=message) as caught:
        bind(job, environ)
    for value in environ.values():
        if len(value) > 1:
            assert value not in str(caught.value)


def test_every_templated_string_is_filled_and_only_placeholders_are_left() -> None:
    text = (
        '[source]\nurl = "https://${HOST}/features?key=${KEY}"\n'
        '[request]\nurl = "https://${HOST}/children/{id}"\nmethod = "POST"\n'
        'body = { id = "{id}", key = "${KEY}", depth = "{level}", tags = ["${KEY}", 1] }\n'
        'headers = { Authorization = "Bearer ${KEY}", X-Node = "{id}" }\n'
        'proxy = "http://me:${PROXY_PASSWORD}@proxy.example:3128"\n'
        '[alerts]\nerror_rate = 0.5\nwebhook = "https://hooks.example/${KEY}"\n'
    )
    environ = {"HOST": "api.example", "KEY": "k3y", "PROXY_PASSWORD": "p%40ss", "OTHER": "x"}
    bound = bind(parse_job(text, "job.toml"), environ)
    values = {"id": "A 1", "name": "", "type": "", "level": "2", "parent_id": ""}
    assert bound.source_url == "https://api.example/features?key=k3y"
    assert bound.request.url.render(values) == "https://api.example/children/A 1"
    assert bound.request.headers["Authorization"].render(values) == "Bearer k3y"
    assert bound.request.headers["X-Node"].render(values) == "A 1"
    body = bound.request.body
    assert body["key"].render(values) == "k3y" and body["tags"][0].render(values) == "k3y"
    assert body["depth"].only_placeholder() == "level" and body["tags"][1] == 1
    assert bound.proxy == "http://me:p%40ss@proxy.example:3128"
    assert bound.webhook == "https://hooks.example/k3y"
    # Only the job's own variables are read; the proxy's password is masked in both forms.
    assert set(bound.secrets) == {"api.example", "k3y", "p%40ss", "p@ss"}
    assert bound.redactor().redact("GET https://api.example/x?k=k3y") == "GET https://***/x?k=***"


def test_a_job_without_variables_binds_to_nothing() -> None:
    bound = bind(parse_job(MINIMAL, "job.toml"), {})
    assert bound.secrets == ()
    assert (bound.proxy, bound.webhook, bound.auth) == (None, None, None)
    assert bound.request.url.is_literal


@pytest.mark.parametrize(
    ("text", "environ", "filled"),
    [
        (BEARER, {"API_TOKEN": "t0k"}, {"token": "t0k"}),
        (BASIC, {"API_USER": "me", "API_PASSWORD": "pw"}, {"username": "me", "password": "pw"}),
        (
            OAUTH2,
            {"CLIENT_ID": "app", "CLIENT_SECRET": "s"},
            {"client_id": "app", "scope": "features.read"},
        ),
    ],
)
def test_auth_strings_are_filled_in(
    text: str, environ: dict[str, str], filled: dict[str, str]
) -> None:
    bound = bind(parse_job(BASE + text, "job.toml"), environ)
    assert bound.auth is not None
    assert {key: getattr(bound.auth, key) for key in filled} == filled
    assert set(bound.secrets) == set(environ.values())


def test_the_environment_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESUMER_TEST_TOKEN", "from-env")
    job = parse_job(MINIMAL + 'headers = { X-Key = "${RESUMER_TEST_TOKEN}" }\n', "job.toml")
    assert bind(job).secrets == ("from-env",)


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_socks_proxy_with_its_password_from_the_environment_binds_on_curl_without_socksio(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libcurl speaks SOCKS itself: only the httpx engine needs socksio, whether the
    # password is written in the URL (checked at load) or comes from ${VAR} (at bind).
    from importlib.util import find_spec as real

    monkeypatch.setattr(
        "resumer.job.wire.find_spec", lambda name: None if name == "socksio" else real(name)
    )
    proxy = f'proxy = "{scheme}://me:${{PROXY_PASSWORD}}@127.0.0.1:1080"\n'
    curl = parse_job(MINIMAL + 'engine = "curl"\n' + proxy, "job.toml")
    if real("pycurl") is not None:
        bound = bind(curl, {"PROXY_PASSWORD": "pw-123"})
        assert bound.proxy == f"{scheme}://me:pw-123@127.0.0.1:1080"
    with pytest.raises(ConfigError, match="socksio") as caught:  # at load, or at bind
        bind(
            parse_job(MINIMAL + 'engine = "httpx"\n' + proxy, "job.toml"),
            {"PROXY_PASSWORD": "pw-123"},
        )
    assert "pw-123" not in str(caught.value)
