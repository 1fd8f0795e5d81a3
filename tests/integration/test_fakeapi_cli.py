"""The ``resumer fake-api`` command's options, through the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from resumer.cli.app import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--throttle-status", "500"], "--throttle-status: expected 429 or 503, got 500"),
        (["--rate-headers", "github"], "--rate-headers: expected one of none, ratelimit"),
    ],
)
def test_the_cli_refuses_bad_limit_options_in_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["fake-api", "--port", "0", *args])

    assert result.exit_code == 2
    assert message in result.output
