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


def test_the_consoles_print_brackets_and_colons_as_they_are(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from resumer.checkpoint.store import FailedNode
    from resumer.cli.display import failed_table

    error = "wants [request.tls] client_cert"
    node = FailedNode(level=2, id="[b]F1[/b]", name=":smile:", type="t", attempts=1, error=error)
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no cell wraps
    terminal._console.cache_clear()  # consoles made at that width, and forgotten after
    try:
        terminal.out().print(failed_table([node]))
        terminal.err().print("stopped; resume with: resumer resume --db [old].db")
    finally:
        terminal._console.cache_clear()
    captured = capsys.readouterr()
    row = next(line for line in captured.out.splitlines() if "F1" in line)
    assert [cell.strip() for cell in row.split("│")] == ["2", "[b]F1[/b]", ":smile:", "1", error]
    assert captured.err == "stopped; resume with: resumer resume --db [old].db\n"
