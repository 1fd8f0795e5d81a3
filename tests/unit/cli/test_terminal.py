"""The command line's terminal: ``fail`` writes exactly one line on stderr (the message with
its line breaks escaped, its brackets and colons printed as they are, nothing on stdout) and
exits with the status given; stdout's and stderr's consoles are each made once."""

from __future__ import annotations

import pytest
import typer

from resumer.cli import terminal


def test_fail_writes_one_line_on_stderr_and_exits_with_the_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as caught:
        terminal.fail("job.toml:3: [request] url: bad\nsecond line :x:", 2)
    assert caught.value.exit_code == 2
    captured = capsys.readouterr()
    assert captured.err == "resumer: error: job.toml:3: [request] url: bad\\nsecond line :x:\n"
    assert captured.out == ""


def test_each_stream_has_one_console_of_its_own() -> None:
    assert terminal.out() is terminal.out()
    assert terminal.err() is terminal.err()
    assert terminal.out() is not terminal.err()
    assert (terminal.out().stderr, terminal.err().stderr) == (False, True)
