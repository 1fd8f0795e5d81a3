"""The fake feature API, for ``resumer demo``, the tests and the benchmarks.

- ``server``: the HTTP server and its faults (errors, slowness, outages, drips);
- ``tree``: the deterministic tree it serves (the ground truth an export is checked against);
- ``limiter``: nginx's ``limit_req`` bucket, fixed and sliding windows, and the
  rate-limit headers describing them;
- ``auth``: its token endpoint; ``stats``: what it saw.

Stands apart from the crawler: imports nothing of resumer but ``errors`` and ``model``,
so a test's ground truth never shares code with what it checks.
"""
