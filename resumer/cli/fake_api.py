"""The ``resumer fake-api`` command: its options, turned into a running ``FakeAPI``.

Owns: the fake API's command-line options and their checks. Must not: hold any of
the fake API itself (``fake.server``, ``fake.tree``, ``fake.limiter``, ``fake.auth``).

Tested by tests/integration/test_fakeapi_cli.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

from resumer.cli.terminal import fail
from resumer.errors import EXIT_USAGE


def fake_api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).", min=0, max=65535)] = 8808,
    seed: Annotated[int, typer.Option(help="Seed of the tree and of the faults.")] = 0,
    roots: Annotated[int, typer.Option(help="Level-1 features.", min=0)] = 10,
    fanout: Annotated[str, typer.Option(help="Children per node, per level: 5,5,5.")] = "5,5,5",
    latency: Annotated[float, typer.Option(help="Seconds before each answer.", min=0)] = 0.0,
    even: Annotated[
        bool, typer.Option("--even", help="Exactly FANOUT children everywhere.")
    ] = False,
    error_rate: Annotated[
        float, typer.Option(help="Share of calls answered 500.", min=0.0, max=1.0)
    ] = 0.0,
    throttle_rate: Annotated[
        float, typer.Option(help="Share of calls answered 429 with Retry-After.", min=0.0, max=1.0)
    ] = 0.0,
    slow_rate: Annotated[
        float, typer.Option(help="Share of calls answered after --slow-delay.", min=0.0, max=1.0)
    ] = 0.0,
    drop_rate: Annotated[
        float, typer.Option(help="Share of calls whose connection is closed.", min=0.0, max=1.0)
    ] = 0.0,
    outage: Annotated[
        str | None, typer.Option(help="START:END seconds after the first call: all answer 503.")
    ] = None,
    max_inflight: Annotated[
        int, typer.Option(help="Beyond K calls at once: 429 and slower answers.", min=0)
    ] = 0,
    page_size: Annotated[int, typer.Option(help="Paginate children by this many.", min=0)] = 0,
    retry_after: Annotated[float, typer.Option(help="Seconds sent with 429s.", min=0)] = 1.0,
    slow_delay: Annotated[float, typer.Option(help="Seconds a slow answer takes.", min=0)] = 30.0,
    rate_limit: Annotated[
        float,
        typer.Option(
            help="Children calls a second, as nginx limit_req nodelay (0 = off).",
            metavar="R",
            min=0,
        ),
    ] = 0.0,
    burst: Annotated[
        int, typer.Option(help="Calls beyond --rate-limit let through at once.", metavar="B", min=0)
    ] = 10,
    throttle_status: Annotated[
        int, typer.Option(help="Status of a call over --rate-limit: 429 or 503.", metavar="STATUS")
    ] = 429,
    limit_retry_after: Annotated[
        float,
        typer.Option(
            help="Retry-After seconds sent with a refusal (0 = none).", metavar="SECONDS", min=0
        ),
    ] = 1.0,
    rate_headers: Annotated[
        str,
        typer.Option(
            help="Rate-limit headers: none, ratelimit, x-ratelimit, draft or bucket.",
            metavar="STYLE",
        ),
    ] = "none",
    require_auth: Annotated[
        bool,
        typer.Option("--require-auth", help="Data calls need a token from POST /token (else 401)."),
    ] = False,
    token_ttl: Annotated[
        float, typer.Option(help="Seconds a token from /token is accepted.", min=0.001)
    ] = 3600.0,
    client_id: Annotated[str, typer.Option(help="The client id /token accepts.")] = "resumer",
    client_secret: Annotated[
        str, typer.Option(help="The client secret /token accepts.")
    ] = "s3cret",
    envelope: Annotated[
        bool,
        typer.Option(
            "--envelope",
            help='Answer in {"code", "msg", "data"}: items in data.list; no children: '
            "data: null or 404.",
        ),
    ] = False,
    busy_rate: Annotated[
        float,
        typer.Option(help='--envelope: share answered 200 {"code": 500} (busy).', min=0, max=1),
    ] = 0.0,
    body_throttle_rate: Annotated[
        float,
        typer.Option(
            help='--envelope: share answered 200 {"code": 429, "data": {"retryAfter"}}.',
            min=0,
            max=1,
        ),
    ] = 0.0,
    lie_rate: Annotated[
        float,
        typer.Option(
            help='--envelope: share answered 200 {"code": 500, "data": {"list": []}}.',
            min=0,
            max=1,
        ),
    ] = 0.0,
    denied: Annotated[
        str, typer.Option(help='--envelope: ids answered {"code": 403}, comma-separated.')
    ] = "",
    names: Annotated[str, typer.Option(help="Names of the features: en or zh.")] = "en",
    limiter: Annotated[
        str,
        typer.Option(
            help="The shape of --rate-limit: bucket (nginx limit_req), window (fixed, 1 s),"
            " sliding (1 s, refused calls counted too), or concurrency (at most R calls"
            " served at once, 503 beyond).",
            metavar="SHAPE",
        ),
    ] = "bucket",
    quota: Annotated[
        int,
        typer.Option(
            help="Children calls allowed, then closed for --closed-for (0 = none).", min=0
        ),
    ] = 0,
    closed_for: Annotated[
        float, typer.Option(help="Seconds the quota stays closed (429, Retry-After).", min=0)
    ] = 60.0,
    has_children: Annotated[
        bool,
        typer.Option("--has-children", help='Items say "hasChildren": true or false.'),
    ] = False,
    childless: Annotated[
        float | None,
        typer.Option(
            help="Share of nodes without children (default: about one in eight).", min=0, max=1
        ),
    ] = None,
    renamed_level: Annotated[
        int,
        typer.Option(
            help='The children of level-N nodes have "subFeatureId" for id and come in'
            " data.children (0 = none).",
            metavar="N",
            min=0,
        ),
    ] = 0,
) -> None:
    """Serve the fake feature API (the demo's) until stopped."""
    from resumer.fake.auth import FakeAuth
    from resumer.fake.limiter import parse_limiter, parse_rate_headers, parse_throttle_status
    from resumer.fake.server import FakeAPI, Faults, parse_outage
    from resumer.fake.tree import NAME_STYLES, FakeTree, parse_fanout

    try:
        shape = parse_fanout(fanout)
        window = parse_outage(outage) if outage else None
        status = parse_throttle_status(throttle_status)
        style = parse_rate_headers(rate_headers)
        limiter_shape = parse_limiter(limiter)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if (busy_rate or body_throttle_rate or lie_rate or denied) and not envelope:
        fail(
            "--busy-rate, --body-throttle-rate, --lie-rate and --denied need --envelope", EXIT_USAGE
        )
    if names not in NAME_STYLES:
        fail(f"--names: expected one of {', '.join(NAME_STYLES)}, got {names!r}", EXIT_USAGE)
    faults = Faults(
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        slow_rate=slow_rate,
        drop_rate=drop_rate,
        outage=window,
        max_inflight=max_inflight,
        retry_after=retry_after,
        slow_delay=slow_delay,
        page_size=page_size,
        rate_limit=rate_limit,
        burst=burst,
        throttle_status=status,
        limit_retry_after=limit_retry_after or None,
        rate_headers=style,
        envelope=envelope,
        busy_rate=busy_rate,
        body_throttle_rate=body_throttle_rate,
        lie_rate=lie_rate,
        denied=frozenset(part.strip() for part in denied.split(",") if part.strip()),
        quota=quota,
        closed_for=closed_for,
        limiter=limiter_shape,
    )
    tree = FakeTree(
        seed=seed,
        roots=roots,
        fanout=shape,
        even=even,
        names=names,
        has_children=has_children,
        childless=childless,
        renamed_level=renamed_level,
    )
    auth = FakeAuth(
        client_id=client_id, client_secret=client_secret, ttl=token_ttl, required=require_auth
    )
    server = FakeAPI(tree, host, port, latency, faults=faults, auth=auth)

    def ready(running: FakeAPI) -> None:
        print(f"serving the fake feature API on {running.url}", flush=True)

    try:
        server.serve_forever(on_ready=ready)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror})", EXIT_USAGE)
