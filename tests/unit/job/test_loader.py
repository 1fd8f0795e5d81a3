"""The job file: every class of mistake is one clear line; valid files give typed settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resumer.errors import ConfigError
from resumer.job.loader import load_job, parse_job
from resumer.job.settings import DEFAULT_HTTP_CONCURRENCY, DEFAULT_WORKERS

MINIMAL = '[source]\nurl = "http://127.0.0.1:1/features"\n[request]\nurl = "http://127.0.0.1:1/c"\n'


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_job(text, "job.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_minimal_job_takes_the_contracted_defaults() -> None:
    job = parse_job(MINIMAL, "job.toml")
    assert job.request.method == "GET"
    assert dict(job.request.params) == {"id": "{id}", "name": "{name}", "type": "{type}"}
    assert job.request.body is None
    assert job.request.timeout == 10.0
    assert (job.response.items, job.response.id, job.response.name) == ("", "id", "name")
    assert job.crawl.max_depth == 4
    assert job.crawl.http_concurrency == DEFAULT_HTTP_CONCURRENCY == 16
    assert job.crawl.grace == 10.0
    assert list(job.queried_levels) == [1, 2, 3]
    assert all(job.level(n).workers == DEFAULT_WORKERS for n in (1, 2, 3))


def test_post_defaults_to_a_templated_body_and_no_params() -> None:
    job = parse_job(MINIMAL + 'method = "post"\n', "job.toml")
    assert job.request.method == "POST"
    assert dict(job.request.params) == {}
    assert dict(job.request.body) == {"id": "{id}", "name": "{name}", "type": "{type}"}


def test_level_settings_override_workers_and_timeout() -> None:
    job = parse_job(MINIMAL + "[levels.2]\nworkers = 9\ntimeout = 2.5\n", "job.toml")
    assert job.level(2).workers == 9
    assert job.level(2).timeout == 2.5
    assert job.level(1).timeout == 10.0


def test_unknown_key_names_file_line_key_and_known_keys() -> None:
    message = error_of(MINIMAL + "retries = 3\n")
    assert message.startswith("job.toml:5: request.retries: unknown key")
    assert "timeout" in message


def test_unknown_section_is_refused() -> None:
    assert "unknown section [crawler]" in error_of(MINIMAL + "[crawler]\nmax_depth = 3\n")


def test_missing_required_key() -> None:
    message = error_of('[source]\nurl = "http://x/f"\n[request]\nmethod = "GET"\n')
    assert "request.url: missing; expected a string" in message


def test_wrong_type_says_what_was_expected_and_got() -> None:
    message = error_of(MINIMAL + '[crawl]\nhttp_concurrency = "many"\n')
    assert message == (
        "job.toml:6: crawl.http_concurrency: expected an integer from 1 to 1024, "
        'got a string ("many")'
    )


def test_boolean_is_not_a_number() -> None:
    assert "expected an integer" in error_of(MINIMAL + "[crawl]\nmax_depth = true\n")


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[crawl]\nhttp_concurrency = 0\n", "crawl.http_concurrency"),
        ("[crawl]\nmax_depth = 0\n", "crawl.max_depth"),
        ("timeout = -1\n", "request.timeout"),
        ("[levels.1]\nworkers = 0\n", "levels.1.workers"),
    ],
)
def test_out_of_range_values(extra: str, key: str) -> None:
    message = error_of(MINIMAL + extra)
    assert f"{key}: expected" in message
    assert "got" in message


@pytest.mark.parametrize(
    ("source", "which"),
    [
        ('[source]\nurl = "http://x/f"\nfile = "roots.csv"\n', "both are set"),
        ("[source]\n", "neither is set"),
    ],
)
def test_source_needs_exactly_one_of_url_and_file(source: str, which: str) -> None:
    message = error_of(source + '[request]\nurl = "http://x/c"\n')
    assert "[source]: expected exactly one of url or file" in message
    assert which in message


def test_source_file_kind_is_checked() -> None:
    message = error_of('[source]\nfile = "roots.xlsx"\n[request]\nurl = "http://x/c"\n')
    assert "source.file: expected a file ending in .csv, .json, .jsonl" in message


def test_relative_source_file_is_read_from_the_job_files_folder(tmp_path: Path) -> None:
    (tmp_path / "job.toml").write_text(
        '[source]\nfile = "roots.csv"\n[request]\nurl = "http://x"\n'
    )
    job = load_job(tmp_path / "job.toml")
    assert job.source.file == tmp_path / "roots.csv"


def test_invalid_toml_gives_the_line() -> None:
    message = error_of(MINIMAL + "timeout = \n")
    assert message.startswith("job.toml: not valid TOML")
    assert "line 5" in message


def test_get_with_a_body_is_refused() -> None:
    assert "request.body: a GET request has no body" in error_of(MINIMAL + "body = { a = 1 }\n")


@pytest.mark.parametrize("level", [0, 4])
def test_levels_outside_the_queried_range_are_refused(level: int) -> None:
    message = error_of(MINIMAL + f"[levels.{level}]\nworkers = 2\n")
    assert f"level {level} is not queried" in message


def test_unknown_placeholder_is_refused_with_the_known_ones() -> None:
    message = error_of(MINIMAL.replace("/c", "/c/{feature}"))
    assert "request.url: unknown placeholder {feature}" in message
    assert "{parent_id}" in message


def test_params_values_must_be_strings() -> None:
    assert "request.params.id: expected a string" in error_of(MINIMAL + "params = { id = 1 }\n")


def test_missing_job_file() -> None:
    with pytest.raises(ConfigError, match="no such job file"):
        load_job(Path("/nonexistent/job.toml"))


def test_the_refusal_quotes_the_url_as_written() -> None:
    message = error_of(MINIMAL.replace("http://127.0.0.1:1/c", "ftp://x/c"))
    assert message == 'job.toml:4: request.url: "ftp://x/c" must start with http:// or https://'


def test_source_url_and_webhook_are_checked_and_take_no_placeholders() -> None:
    source = error_of(MINIMAL.replace("http://127.0.0.1:1/features", "file:///etc/passwd"))
    assert source.startswith("job.toml:2: source.url: ")
    placeholder = error_of(MINIMAL.replace("/features", "/features/{id}"))
    assert "source.url: {id} has no value here" in placeholder
    webhook = error_of(MINIMAL + '[alerts]\nerror_rate = 0.1\nwebhook = "hooks.example/x"\n')
    assert "alerts.webhook: " in webhook and "must start with http://" in webhook


@pytest.mark.parametrize(
    ("headers", "key", "problem"),
    [
        ('{ "X Bad" = "1" }', 'request.headers."X Bad"', "not a valid header name"),
        ('{ "" = "1" }', 'request.headers.""', "not a valid header name"),
        ('{ "X\\nY" = "1" }', 'request.headers."X\\nY"', "not a valid header name"),
        ('{ X = "a\\r\\nInjected: 1" }', "request.headers.X", "the value holds a line break"),
        ('{ X = "a\\u0000" }', "request.headers.X", "the value holds a control character"),
        ('{ X = "caf\\u00e9" }', "request.headers.X", "not ASCII"),
    ],
)
def test_unsendable_headers_are_refused_at_load(headers: str, key: str, problem: str) -> None:
    message = error_of(MINIMAL + f"headers = {headers}\n")
    assert message.startswith(f"job.toml:5: {key}: ")
    assert problem in message


def test_a_stored_job_an_earlier_resumer_accepted_is_read_leniently() -> None:
    text = MINIMAL.replace("http://127.0.0.1:1/c", "ftp://x/c") + 'headers = { "X Y" = "1" }\n'
    assert "request.url" in error_of(text)
    assert parse_job(text, "job.toml", lenient=True).request.url == "ftp://x/c"


def test_messages_stay_on_one_line_whatever_the_file_holds() -> None:
    assert r'crawl."a\nb": unknown key' in error_of(MINIMAL + '[crawl]\n"a\\nb" = 1\n')
    assert r'got a string ("1\n2")' in error_of(MINIMAL + '[crawl]\nmax_depth = "1\\n2"\n')


def test_durations_are_bounded() -> None:
    message = error_of(MINIMAL + '[backup]\nevery = "99999d"\n')
    assert "backup.every: expected a duration" in message
    assert "from 0 to 31536000" in message
    assert "alerts.window" in error_of(MINIMAL + "[alerts]\nwindow = inf\n")


def test_nesting_too_deep_for_the_toml_parser_is_a_config_error() -> None:
    assert "nested too deeply" in error_of("a = " + "[" * 5000 + "]" * 5000 + "\n")


def test_a_job_file_that_is_a_folder_or_a_silent_pipe_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a job file"):
        load_job(tmp_path)
    pipe = tmp_path / "job.toml"
    os.mkfifo(pipe)  # nobody writes to it: read as empty, never waited for
    with pytest.raises(ConfigError, match=r"job\.toml: request\.url: missing"):
        load_job(pipe)
