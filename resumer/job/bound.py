"""The job bound to its environment: every ``${VAR}`` resolved once, for the run side.

``bind(job)`` reads the job's ``${VAR}``s from the environment, checks their values
as the loader checked the job file (an undefined variable, a value that makes a URL
or a header unusable, an ``[auth]`` value that cannot work: a ``ConfigError`` naming
the key, never the value) and fills them in, once. What runs a job (the client, the
connection pool, auth, alerts, probe) receives the ``BoundJob`` and never sees the
environment: this is the only module that fills in a secret, and the masking of what
leaves the process starts from its ``secrets``.

Makes no HTTP call and reads no database.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from resumer.errors import ConfigError
from resumer.job.messages import dotted_key, quoted
from resumer.job.settings import AuthSettings, Job, Request
from resumer.job.template import Redactor, Template
from resumer.job.wire import (
    header_value_problem,
    mask_userinfo,
    proxy_problem,
    proxy_secrets,
    url_problem,
    with_samples,
)


@dataclass(frozen=True, slots=True)
class BoundRequest:
    """``[request]``'s templates with their ``${VAR}``s filled: only the placeholders
    (``{id}``, ...) are left for each node."""

    url: Template
    params: Mapping[str, Template]
    headers: Mapping[str, Template]
    body: Any  # the JSON body, each string a Template; None without a body


@dataclass(frozen=True, slots=True)
class BoundJob:
    """A ``Job`` and the values its ``${VAR}``s have in this run.

    >>> bound = bind(job, {"FEATURE_API_TOKEN": "s3cret"})      # doctest: +SKIP
    >>> bound.request.headers["Authorization"].render({})      # doctest: +SKIP
    'Bearer s3cret'
    """

    job: Job
    request: BoundRequest
    levels: Mapping[int, BoundRequest]  # the levels with a [levels.N.request] of their own
    source_url: str | None  # None: the roots come from a file
    proxy: str | None  # None: the environment's HTTP(S)_PROXY / NO_PROXY
    webhook: str | None  # [alerts] webhook; None without one
    auth: AuthSettings | None  # [auth] with its strings filled (token_command as written)
    secrets: tuple[str, ...]  # every value to mask: the ${VAR}s', a password in the proxy

    def request_of(self, level: int) -> BoundRequest:
        """The request that queries the nodes of ``level``."""
        return self.levels.get(level, self.request)

    def redactor(self) -> Redactor:
        """A new masker of this run's secrets (one a client, which adds tokens it gets)."""
        return Redactor(self.secrets)


def bind(job: Job, environ: Mapping[str, str] | None = None) -> BoundJob:
    """``job`` with its ``${VAR}``s read from ``environ`` (default ``os.environ``) and
    checked; ``ConfigError`` for an undefined variable or a value that cannot work."""
    env = _environment(job, os.environ if environ is None else environ)
    request = job.request

    def fill(text: str | None) -> str | None:
        return None if text is None else Template.compile(text).bind_env(env).render({})

    def template(text: str) -> Template:
        return Template.compile(text).bind_env(env)

    def body(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: body(item) for key, item in value.items()}
        if isinstance(value, tuple | list):
            return [body(item) for item in value]
        return template(value) if isinstance(value, str) else value

    def bound_request(request: Request) -> BoundRequest:
        return BoundRequest(
            url=template(request.url),
            params={key: template(value) for key, value in request.params.items()},
            headers={key: template(value) for key, value in request.headers.items()},
            body=None if request.body is None else body(request.body),
        )

    proxy = fill(request.proxy) or None
    auth = job.auth
    if auth is not None:
        filled: dict[str, Any] = {key: fill(getattr(auth, key)) for key in auth.TEMPLATED}
        auth = dataclasses.replace(auth, **filled)
    return BoundJob(
        job=job,
        request=bound_request(request),
        levels={
            number: bound_request(level.request)
            for number, level in job.levels.items()
            if level.request is not None
        },
        source_url=fill(job.source.url),
        proxy=proxy,
        webhook=fill(job.alerts.webhook) or None,
        auth=auth,
        secrets=(*env.values(), *(proxy_secrets(proxy) if proxy else ())),
    )


def _environment(job: Job, environ: Mapping[str, str]) -> dict[str, str]:
    """The values of the job's ``${VAR}``s, checked."""
    names = job.env_vars()
    missing = [name for name in names if name not in environ]
    if missing:
        raise ConfigError(
            f"{job.origin}: environment variable {', '.join(missing)} is not set "
            f"(the job file refers to ${{{missing[0]}}})"
        )
    env = {name: environ[name] for name in names}
    _check_urls_and_headers(job, env)
    _check_auth(job, env)
    return env


def _check_auth(job: Job, env: Mapping[str, str]) -> None:
    """An ``[auth]`` value from the environment that cannot work (empty, a token or user
    name that cannot be sent) is a ``ConfigError``; the message never shows it."""
    for key in ("client_id", "client_secret", "token", "username"):
        text = getattr(job.auth, key, None)
        if not text:
            continue
        value = Template.compile(text).bind_env(env).render({})
        problem = "is empty" if not value else None
        if value and key == "token":
            problem = header_value_problem(value)
        if value and key == "username" and ":" in value:
            problem = "holds a colon, which basic credentials cannot carry (RFC 7617)"
        if problem:
            names = ", ".join(f"${{{n}}}" for n in Template.compile(text).env_vars)
            raise ConfigError(f"{job.origin}: auth.{key}: the value of {names} {problem}")


def _check_urls_and_headers(job: Job, env: Mapping[str, str]) -> None:
    """The load-time URL and header checks again, with the environment's values in."""
    hide = Redactor(env.values())
    for dotted, text in _urls(job):
        names = Template.compile(text).env_vars
        problem = None
        if names and dotted == "request.proxy":  # SOCKS needs socksio on httpx only
            problem = proxy_problem(with_samples(text, env), job.request.engine)
        elif names:
            problem = url_problem(with_samples(text, env))
        if problem:
            where = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
            raise ConfigError(
                f"{job.origin}: {dotted}: {quoted(mask_userinfo(text))} "
                f"{hide.redact(problem)} "
                f"(with {where} from the environment)"
            )
    for section, request in _requests(job):
        for name, text in request.headers.items():
            for var in Template.compile(text).env_vars:
                problem = header_value_problem(env[var])
                if problem:
                    raise ConfigError(
                        f"{job.origin}: {section}.headers.{dotted_key(name)}: "
                        f"the value of ${{{var}}} {hide.redact(problem)}"
                    )


def _requests(job: Job) -> Iterator[tuple[str, Request]]:
    """``[request]``, then each level's own (``[levels.N.request]``), with its name."""
    yield "request", job.request
    for number, level in job.levels.items():
        if level.request is not None:
            yield f"levels.{number}.request", level.request


def _urls(job: Job) -> Iterator[tuple[str, str]]:
    if job.source.url is not None:
        yield "source.url", job.source.url
    if job.auth is not None and job.auth.token_url:
        yield "auth.token_url", job.auth.token_url
    for section, request in _requests(job):
        yield f"{section}.url", request.url
    if job.alerts.webhook:
        yield "alerts.webhook", job.alerts.webhook
    if job.request.proxy:
        yield "request.proxy", job.request.proxy
