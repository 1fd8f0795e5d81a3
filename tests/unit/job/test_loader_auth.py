"""``[auth]`` in the job file: each type, and every mistake as one line naming the key."""

from __future__ import annotations

import tomllib

import jsonschema
import pytest

from resumer.errors import ConfigError
from resumer.job.loader import parse_job
from resumer.job.schema import json_schema
from resumer.job.settings import AuthSettings

BASE = '[source]\nurl = "http://127.0.0.1:8808/f"\n[request]\nurl = "http://127.0.0.1:8808/c"\n'
OAUTH2 = (
    '[auth]\ntype = "oauth2"\ntoken_url = "https://login.example/oauth2/token"\n'
    'client_id = "${CLIENT_ID}"\nclient_secret = "${CLIENT_SECRET}"\nscope = "features.read"\n'
)
BEARER = '[auth]\ntype = "bearer"\ntoken = "${API_TOKEN}"\n'
COMMAND = '[auth]\ntype = "bearer"\ntoken_command = "get-token --json {x} ${HOME}"\n'
BASIC = '[auth]\ntype = "basic"\nusername = "${API_USER}"\npassword = "${API_PASSWORD}"\n'


def schema_accepts(text: str) -> bool:
    try:
        jsonschema.validate(tomllib.loads(text), json_schema())
    except jsonschema.ValidationError:
        return False
    return True


def test_oauth2_client_credentials() -> None:
    job = parse_job(BASE + OAUTH2, "job.toml")
    assert job.auth == AuthSettings(
        type="oauth2",
        token_url="https://login.example/oauth2/token",
        client_id="${CLIENT_ID}",
        client_secret="${CLIENT_SECRET}",
        scope="features.read",
    )
    assert job.env_vars() == ("CLIENT_ID", "CLIENT_SECRET")


def test_a_token_command_is_the_shells_not_a_template() -> None:
    job = parse_job(BASE + COMMAND, "job.toml")
    assert job.auth is not None and job.auth.token_command == "get-token --json {x} ${HOME}"
    assert job.env_vars() == ()  # the shell reads $HOME, not resumer


@pytest.mark.parametrize("text", [OAUTH2, BEARER, COMMAND, BASIC])
def test_every_type_passes_the_schema(text: str) -> None:
    parse_job(BASE + text, "job.toml")
    assert schema_accepts(BASE + text)


def test_no_auth_section_means_none() -> None:
    assert parse_job(BASE, "job.toml").auth is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[auth]\ntype = "kerberos"\n', r"auth\.type: expected one of"),
        ("[auth]\n", r"auth\.type: missing"),
        ('[auth]\ntype = "basic"\nusername = "u"\n', r"auth\.password: missing"),
        (BASIC + 'token = "${T}"\n', r'auth\.token: is for type = "bearer", not "basic"'),
        (BEARER + "tokens = 1\n", r"auth\.tokens: unknown key"),
        ('[auth]\ntype = "bearer"\n', r"expected token or token_command; neither is set"),
        (BEARER + 'token_command = "x"\n', r"expected token or token_command; both are set"),
        ('[auth]\ntype = "bearer"\ntoken_command = " "\n', r"auth\.token_command: expected a"),
        ('[auth]\ntype = "bearer"\ntoken = 5\n', r"auth\.token: expected a string"),
        ('[auth]\ntype = "bearer"\ntoken = "abc123"\n', r"auth\.token: expected a \$\{VAR\}"),
        (BASIC.replace("${API_PASSWORD}", "pw${X}"), r"auth\.password: expected a \$\{VAR\}"),
        (OAUTH2.replace("${CLIENT_ID}", "{id}"), r"auth\.client_id: placeholders"),
        (OAUTH2.replace("https://login.example", "ftp://x"), r"auth\.token_url: "),
        (OAUTH2.replace('scope = "features.read"', 'client_auth = "jwt"'), r"auth\.client_auth"),
        ("auth = 3\n" + BASE, r"\[auth\]: expected a table"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_job(extra if extra.startswith("auth =") else BASE + extra, "job.toml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("job.toml")


def test_auth_and_an_authorization_header_are_not_both_allowed() -> None:
    text = BASE + 'headers = { authorization = "Bearer ${T}" }\n' + BEARER
    with pytest.raises(ConfigError, match=r"request\.headers\.Authorization: \[auth\] sends it"):
        parse_job(text, "job.toml")


def test_the_schema_refuses_what_the_loader_refuses() -> None:
    assert not schema_accepts(BASE + BASIC + 'token = "${T}"\n')
    assert not schema_accepts(BASE + '[auth]\ntype = "bearer"\n')
    assert not schema_accepts(BASE + '[auth]\ntype = "basic"\nusername = "u"\n')
