"""The user guides, README.md and README.zh-CN.md, held to the code so they cannot go stale.

In both guides:

- Every ```toml block is a job file that the loader takes and the JSON Schema accepts.
  A block that is only part of a job (a section or two) is marked as a fragment by the
  line ``<!-- fragment -->`` right before its fence; it is merged into a minimal job
  (``source.url`` and ``request.url``) before it is checked. An unmarked block must be a
  whole job file.
- The job-file reference tables (a table whose first column is headed ``key`` or ``键``)
  name only keys the loader declares (resumer/job/keys.py), and every declared key.
  A row names its keys in its first cell: ``request.timeout``, or one full name followed
  by short ones of the same table (``response.id`` / ``name`` / ``type``). A row for a
  table (``[[response.rule]]``, ``[levels.N.request]``) names that table's keys in its
  last cell, in backticks (`` `status`, `field` with `in` ``); nothing else is
  backticked there. A default given as TOML values, one per key, is the declared one.
- Every ``resumer ...`` line of a shell or text code block parses with the real command
  line (the command, its options and their values); every ``resumer ...`` in inline code
  (``resumer status [--db PATH] [--json]``, a synopsis) names a command and options of it.
  Every command, and every option of it, is named in such a line or synopsis.
- The exit-status table (first column headed ``exit`` or ``退出码``) lists exactly the
  ``EXIT_*`` statuses of resumer/errors.py, with the same numbers.

In the code: every command, argument and option has a help text that ``--help`` shows
whole, with the option's default; ``resumer init``'s template names every declared key and
no other, and ``resumer schema`` describes exactly the declared keys (which also proves
this module's list of declarations complete).

Each check is a function returning its problems, one line each; the tests at the end run
them on deliberately broken copies (a key, command, option or exit status added to the
code, or a guide's line broken) to show that they fail.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
import typer
import typer.core
import typer.main
from typer.testing import CliRunner

from resumer import errors
from resumer.cli.app import app
from resumer.errors import ConfigError
from resumer.job.keys import (
    AUTH_SCHEMA,
    INVALID,
    ITEM_RULE_KINDS,
    ITEM_RULE_SCHEMA,
    KINDS,
    LEVEL_REQUEST_KEYS,
    LEVEL_RESPONSE_KEYS,
    LEVEL_RESPONSE_TABLES,
    LEVEL_SCHEMA,
    PAGINATION_SCHEMA,
    REQUIRED,
    RULE_SCHEMA,
    SCHEMA,
    TLS_SCHEMA,
    Key,
)
from resumer.job.loader import BUILT_IN_CODE, job_from_dict, parse_job
from resumer.job.schema import json_schema, template

ROOT = Path(__file__).resolve().parents[2]
GUIDES = ("README.md", "README.zh-CN.md")
FRAGMENT = "<!-- fragment -->"
MINIMAL = {
    "source": {"url": "http://127.0.0.1:8808/features"},
    "request": {"url": "http://127.0.0.1:8808/children"},
}
KEY_HEADERS = ("key", "键")
EXIT_HEADERS = ("exit", "退出码")
SHELL_BLOCKS = ("", "sh", "bash", "shell", "console", "text")


def guide(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


# --- what the code declares -------------------------------------------------------------


def declared_keys() -> dict[str, Key | None]:
    """Every key a job file may hold, by its dotted name (``levels.N.workers``), with its
    declaration (None for a level's override of a top-level key: it has no default)."""
    tables: dict[str, Mapping[str, Key]] = {**SCHEMA}
    tables |= {"request.tls": TLS_SCHEMA, "response.pagination": PAGINATION_SCHEMA}
    tables |= {"response.rule": RULE_SCHEMA, "auth": AUTH_SCHEMA, "levels.N": LEVEL_SCHEMA}
    tables |= {f"crawl.{kind}": ITEM_RULE_SCHEMA for kind in ITEM_RULE_KINDS}
    keys: dict[str, Key | None] = {
        f"{table}.{name}": key for table, specs in tables.items() for name, key in specs.items()
    }
    keys |= {f"levels.N.request.{name}": None for name in LEVEL_REQUEST_KEYS}
    overrides = (*LEVEL_RESPONSE_KEYS, *LEVEL_RESPONSE_TABLES)
    keys |= {f"levels.N.response.{name}": None for name in overrides}
    return keys


def tables_of(keys: Mapping[str, object]) -> set[str]:
    """The tables that hold ``keys``: every prefix of a dotted name."""
    return {name.rsplit(".", n)[0] for name in keys for n in range(1, name.count(".") + 1)}


def schema_keys(node: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted names of the keys the JSON Schema describes (``levels.N.workers``)."""
    found: set[str] = set()
    children = dict(node.get("properties", {}))
    for child in node.get("patternProperties", {}).values():  # [levels.N]
        children["N"] = child
    for name, child in children.items():
        table = child.get("items", child) if child.get("type") == "array" else child
        if "properties" in table or "patternProperties" in table:
            found |= schema_keys(table, f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


def template_keys(text: str) -> set[str]:
    """The dotted names of the keys ``resumer init``'s template shows, commented or not."""
    found, table = set(), ""
    for line in text.splitlines():
        bare = re.sub(r"^(# )+", "", line)
        header = re.match(r"\[\[?([\w.]+)\]\]?(\s*#.*)?$", bare)
        if header:
            table = re.sub(r"^levels\.\d+", "levels.N", header.group(1))
            continue
        assignment = re.match(r"(\w+) = (.*)$", bare)
        if assignment and (assignment.group(2).startswith("...") or _is_toml(bare)):
            found.add(f"{table}.{assignment.group(1)}")
    return found


def _is_toml(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


def cli_commands(typer_app: typer.Typer = app) -> dict[str, Any]:
    """The ``resumer`` commands by name, as click command objects ("" = the group)."""
    group = typer.main.get_command(typer_app)
    assert isinstance(group, typer.core.TyperGroup)
    return {"": group, **group.commands}


def option_names(command: Any) -> list[tuple[str, ...]]:
    """Each option of ``command``, as the tuple of its spellings (``("-o", "--output")``)."""
    return [
        (*param.opts, *param.secondary_opts)
        for param in command.params
        if param.param_type_name == "option"
    ]


# --- a guide, read ------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its text and the line of its first text line."""

    lang: str
    text: str
    line: int
    fragment: bool


def blocks(text: str) -> list[Block]:
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        line = text.count("\n", 0, match.start()) + 2
        found.append(Block(match.group(1), match.group(2), line, before.strip() == FRAGMENT))
    return found


def without_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def tables(text: str, headers: tuple[str, ...]) -> Iterator[list[list[str]]]:
    """The rows (cells) of each Markdown table whose first column is headed one of
    ``headers``, outside code blocks; the header and rule lines left out."""
    rows: list[list[str]] = []
    for line in [*without_blocks(text).splitlines(), ""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
            continue
        if rows and rows[0][0] in headers:
            yield rows[2:]
        rows = []


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def row_keys(row: list[str]) -> tuple[list[str], str | None]:
    """The dotted names a key table's row documents, and the table it is about (a row
    whose first cell is ``[table]`` or ``[[table]]``: its keys are in the last cell)."""
    names, prefix = [], ""
    for token in ticked(row[0]):
        name = token.strip("[]")
        if "." in name:
            prefix = name.rsplit(".", 1)[0]
            names.append(name)
        else:
            names.append(f"{prefix}.{name}")
    first = ticked(row[0])
    if len(first) != 1 or not first[0].startswith("["):
        return names, None
    table = first[0].strip("[]")
    inner = [re.match(r"\[{0,2}(\w+)\]{0,2}(?: = .*)?$", t) for t in ticked(row[-1])]
    return [f"{table}.{m.group(1) if m else '?'}" for m in inner], table


def command_lines(text: str) -> Iterator[tuple[int, list[str] | str]]:
    """The ``resumer ...`` commands of the shell and text code blocks, as argument lists
    (``["start", "job.toml"]``), with their line; pipes, redirections and comments cut.
    A line the shell could not split comes as the reason, a string."""
    for block in blocks(text):
        if block.lang not in SHELL_BLOCKS:
            continue
        lines = block.text.splitlines()
        for offset, line in enumerate(lines):
            if offset and lines[offset - 1].endswith("\\"):
                continue  # read with the line it continues
            for more in lines[offset + 1 :]:
                if not line.endswith("\\"):
                    break
                line = line[:-1] + " " + more
            line = line.strip().removeprefix("$ ")
            if re.search(r"(^|[;&|(]\s*)resumer ", line):
                yield from _commands(block.line + offset, line)


def _commands(number: int, line: str) -> Iterator[tuple[int, list[str] | str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = [*lexer, ";"]
    except ValueError as exc:  # an unclosed quote
        yield number, f"{line}: {exc}"
        return
    segment: list[str] = []
    for token in tokens:
        if not re.fullmatch(r"[();<>|&]+", token):
            segment.append(token)
            continue
        if segment[:1] == ["resumer"]:
            yield number, segment[1:]
        segment = []


def synopses(text: str) -> Iterator[str]:
    """Every inline code span that starts ``resumer ``, outside code blocks."""
    for span in re.findall(r"`([^`]+)`", without_blocks(text)):
        span = " ".join(span.split())
        if span.startswith("resumer "):
            yield span


# --- the checks ---------------------------------------------------------------------------


def toml_problems(text: str, name: str) -> list[str]:
    """Each ```toml block that the loader or the JSON Schema refuses."""
    problems = []
    for block in blocks(text):
        if block.lang != "toml":
            continue
        where = f"{name}:{block.line}"
        try:
            raw = tomllib.loads(block.text)
            if block.fragment:
                raw = merged(MINIMAL, raw)
                job_from_dict(raw)
            else:
                parse_job(block.text, where)
            jsonschema.validate(raw, json_schema())
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{where}: not TOML: {exc}")
        except ConfigError as exc:
            said = re.sub(rf"^({re.escape(where)}|{re.escape(BUILT_IN_CODE)}):\d*:? ", "", str(exc))
            hint = "" if block.fragment else f" (a part of a job? mark it {FRAGMENT})"
            problems.append(f"{where}: {said}{hint}")
        except jsonschema.ValidationError as exc:
            problems.append(f"{where}: the JSON Schema refuses it: {exc.message}")
    return problems


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def key_table_problems(text: str, name: str, keys: Mapping[str, Key | None]) -> list[str]:
    """Keys in the tables that are not declared, declared keys not in them, and defaults
    that are not the declared ones."""
    problems, documented = [], set()
    known = set(keys) | tables_of(keys)
    for rows in tables(text, KEY_HEADERS):
        for row in rows:
            names, table = row_keys(row)
            if table is not None and table not in known:
                problems.append(f"{name}: [{table}]: no such table in the job file")
            for key in names:
                if key not in keys and not (table is None and key in known):
                    problems.append(f"{name}: {key}: in a key table, but not a key")
            documented.update(names)
            if table is None and len(row) >= 2:
                problems += default_problems(name, names, row[1], keys)
    problems += [
        f"{name}: {key}: declared (resumer/job/keys.py), but not in a key table"
        for key in sorted(set(keys) - documented)
    ]
    return problems


def default_problems(
    name: str, names: list[str], cell: str, keys: Mapping[str, Key | None]
) -> list[str]:
    """A row's defaults, one TOML value per key (others are prose), against the declared."""
    values = ticked(cell)
    if len(values) != len(names) or not all(_is_toml(f"v = {v}") for v in values):
        return []
    problems = []
    for key, value in zip(names, values, strict=True):
        spec = keys.get(key)
        if spec is None or spec.default is REQUIRED or spec.default is None:
            continue
        given = KINDS[spec.kind].convert(spec, tomllib.loads(f"v = {value}")["v"])
        if given is INVALID or plain(given) != plain(spec.default):
            problems.append(f"{name}: {key}: default {value}, but {spec.default!r} is declared")
    return problems


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset):
        return [plain(v) for v in value]
    return value


def command_problems(text: str, name: str, commands: Mapping[str, Any]) -> list[str]:
    """``resumer`` lines that do not parse, synopses naming what does not exist, and
    commands or options never named."""
    problems: list[str] = []
    named: dict[str, set[str]] = {}  # command -> the options shown with it
    for line, args in command_lines(text):
        if isinstance(args, str):
            problems.append(f"{name}:{line}: {args}")
            continue
        command = "" if not args or args[0].startswith("-") else args[0]
        problem = parse_problem(commands, command, args)
        if problem:
            problems.append(f"{name}:{line}: resumer {shlex.join(args)}: {problem}")
        named.setdefault(command, set()).update(a.split("=")[0] for a in args if a[:1] == "-")
    for span in synopses(text):
        words = span.split()
        command = "" if words[1].startswith("-") else words[1]
        options = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", span))
        named.setdefault(command, set()).update(options)
        if command not in commands:
            problems.append(f"{name}: `{span}`: no command {command!r}")
            continue
        spelled = {o for option in option_names(commands[command]) for o in option}
        problems += [
            f"{name}: `{span}`: resumer {command or '(the group)'} has no option {option}"
            for option in sorted(options - spelled)
        ]
    for command, cli in commands.items():
        if command not in named:
            problems.append(f"{name}: the command `resumer {command}` is never shown")
            continue
        for option in option_names(cli):
            if not set(option) & named[command]:
                label = f"resumer {command}" if command else "resumer"
                problems.append(f"{name}: `{label}` never shows its option {option[-1]}")
    return problems


def parse_problem(commands: Mapping[str, Any], command: str, args: list[str]) -> str | None:
    """Why ``resumer ARGS`` does not parse (None when it does). The group's own options
    (--version, --install-completion) are only looked up: their callbacks act."""
    if command not in commands:
        return f"no command {command!r}"
    if not command:
        spelled = {o for option in option_names(commands[""]) for o in option}
        unknown = [a for a in args if a not in spelled]
        return f"no option {unknown[0]}" if unknown else None
    try:
        commands[command].make_context(f"resumer {command}", args[1:])
    except typer.Exit as exc:  # --help
        return None if exc.exit_code == 0 else f"exit {exc.exit_code}"
    except Exception as exc:  # the command line's own errors: no such option, a bad value
        return str(exc)
    return None


def exit_problems(text: str, name: str, statuses: set[int]) -> list[str]:
    """The exit-status tables against the statuses the code defines."""
    found = list(tables(text, EXIT_HEADERS))
    if not found:
        return [f"{name}: no exit-status table (first column headed exit / 退出码)"]
    problems = []
    for rows in found:
        listed = [int(row[0].strip("`")) for row in rows]
        if sorted(listed) != sorted(statuses):
            problems.append(
                f"{name}: the exit statuses listed {listed}, defined {sorted(statuses)}"
            )
    return problems


def exit_statuses() -> set[int]:
    return {value for attr, value in vars(errors).items() if attr.startswith("EXIT_")}


def help_problems(typer_app: typer.Typer = app) -> list[str]:
    """Commands, arguments and options without a help text, or whose --help does not show
    it whole (Rich markup eats ``[brackets]``), or does not show an option's default."""
    problems = []
    for command, cli in cli_commands(typer_app).items():
        label = f"resumer {command}".strip()
        if not (cli.help or "").strip():
            problems.append(f"{label}: no help text")
        shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", help_text(typer_app, command)).split())
        for param in cli.params:
            what = f"{label} {param.opts[-1]}"
            text = " ".join((getattr(param, "help", None) or "").split())
            if not text:
                problems.append(f"{what}: no help text")
            elif text not in shown:
                problems.append(f"{what}: --help does not show its help whole: {text!r}")
            default = param.default
            if param.param_type_name != "option" or default in (None, False, ""):
                continue
            if f"[default: {default}]" not in shown:
                problems.append(f"{what}: --help does not show its default {default}")
    return problems


def help_text(typer_app: typer.Typer, command: str) -> str:
    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(typer_app, args, env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", GUIDES)
def test_every_toml_block_is_a_valid_job_file_or_a_marked_fragment(name: str) -> None:
    assert toml_problems(guide(name), name) == []
    assert sum(block.lang == "toml" for block in blocks(guide(name))) >= 10


@pytest.mark.parametrize("name", GUIDES)
def test_the_key_tables_hold_every_declared_key_and_no_other(name: str) -> None:
    assert key_table_problems(guide(name), name, declared_keys()) == []


@pytest.mark.parametrize("name", GUIDES)
def test_every_command_line_parses_and_every_command_and_option_is_shown(name: str) -> None:
    assert command_problems(guide(name), name, cli_commands()) == []
    assert len(list(command_lines(guide(name)))) >= 10


@pytest.mark.parametrize("name", GUIDES)
def test_the_exit_status_table_lists_the_statuses_the_code_defines(name: str) -> None:
    assert exit_problems(guide(name), name, exit_statuses()) == []


def test_the_guides_link_to_each_other_in_their_first_lines() -> None:
    english, chinese = guide("README.md"), guide("README.zh-CN.md")
    assert "(README.zh-CN.md)" in "\n".join(english.splitlines()[:5])
    assert "(README.md)" in "\n".join(chinese.splitlines()[:5])


def test_every_command_and_option_has_a_help_text_shown_whole_with_its_default() -> None:
    assert help_problems() == []


def test_the_declarations_listed_here_are_those_the_json_schema_describes() -> None:
    """A level's [pagination] and [[rule]] are listed as two keys: they override whole."""
    overrides = r"^(levels\.N\.response\.(pagination|rule))\..*"
    described = {re.sub(overrides, r"\1", key) for key in schema_keys(json_schema())}
    assert described == set(declared_keys())


def test_init_template_shows_every_declared_key_and_no_other() -> None:
    """Only the examples of rules and of a level's request and response are partial."""
    shown = template_keys(template())
    keys = set(declared_keys())
    by_example = {k for k in keys if k.startswith(("levels.N.re", "crawl.leaf.", "crawl.drop."))}
    assert shown - keys == set()
    assert keys - by_example - shown == set()


# --- the checks fail when they should -----------------------------------------------------


def test_a_key_added_to_the_code_and_not_to_the_tables_is_reported() -> None:
    keys = {**declared_keys(), "request.retries": Key("int", 3)}
    assert key_table_problems(guide("README.md"), "README.md", keys) == [
        "README.md: request.retries: declared (resumer/job/keys.py), but not in a key table"
    ]


def test_a_key_in_a_table_that_is_not_declared_or_a_wrong_default_is_reported() -> None:
    table = (
        "| key | default | meaning |\n|---|---|---|\n"
        "| `crawl.max_depth` / `max_width` | `5` / `3` | x |\n"
        "| `[[response.rule]]` | none | `field` with `in`, `when` |\n"
    )
    problems = key_table_problems(table, "T", {"crawl.max_depth": SCHEMA["crawl"]["max_depth"]})
    assert problems == [
        "T: crawl.max_width: in a key table, but not a key",
        "T: crawl.max_depth: default 5, but 4 is declared",
        "T: [response.rule]: no such table in the job file",
        "T: response.rule.field: in a key table, but not a key",
        "T: response.rule.in: in a key table, but not a key",
        "T: response.rule.when: in a key table, but not a key",
    ]


def test_a_bad_toml_block_or_an_unmarked_fragment_is_reported() -> None:
    text = (
        "```toml\n[crawl]\nmax_depth = 3\n```\n\n"
        f"{FRAGMENT}\n```toml\n[crawl]\nhttp_concurrency = 0\n```\n\n"
        f"{FRAGMENT}\n```toml\n[retry]\nattempts = 3\n```\n"
    )
    problems = toml_problems(text, "T")
    assert len(problems) == 2
    assert problems[0].startswith("T:2: ") and problems[0].endswith(f"mark it {FRAGMENT})")
    assert problems[1] == ("T:8: crawl.http_concurrency: expected an integer from 1 to 1024, got 0")


def test_a_command_or_option_added_to_the_code_and_not_shown_is_reported() -> None:
    commands = cli_commands()
    commands |= {"purge": commands["check"], "status": cli_commands(another_app())["status"]}
    problems = command_problems(guide("README.md"), "README.md", commands)
    assert [problem for problem in problems if "never" in problem] == [
        "README.md: `resumer status` never shows its option --since",
        "README.md: `resumer status` never shows its option --quiet",
        "README.md: the command `resumer purge` is never shown",
    ]


def test_a_command_line_that_does_not_parse_is_reported() -> None:
    text = (
        "```sh\nresumer start job.toml --dbb x.db\nresumer probe job.toml \\\n  --per-level many\n"
        "resumer purge --db x.db   # comment\nresumer status --db x.db | head -1\n"
        "resumer failed --db 'x.db\n```\n"
        "`resumer export [--db PATH] [--pretty]`, `resumer --nope`\n"
    )
    problems = [p for p in command_problems(text, "T", cli_commands()) if "never" not in p]
    assert problems == [
        "T:2: resumer start job.toml --dbb x.db: No such option: --dbb",
        "T:3: resumer probe job.toml --per-level many: "
        "Input should be a valid integer, unable to parse string as an integer",
        "T:5: resumer purge --db x.db: no command 'purge'",
        "T:7: resumer failed --db 'x.db: No closing quotation",
        "T: `resumer export [--db PATH] [--pretty]`: resumer export has no option --pretty",
        "T: `resumer --nope`: resumer (the group) has no option --nope",
    ]


def test_an_exit_status_added_to_the_code_and_not_to_the_table_is_reported() -> None:
    problems = exit_problems(guide("README.md"), "README.md", exit_statuses() | {3})
    assert problems == [
        "README.md: the exit statuses listed [0, 1, 2, 75, 130], defined [0, 1, 2, 3, 75, 130]"
    ]
    assert exit_problems("no table", "T", {0}) == [
        "T: no exit-status table (first column headed exit / 退出码)"
    ]


def test_a_help_text_eaten_by_markup_or_missing_is_reported() -> None:
    assert help_problems(another_app()) == [
        "resumer status --since: --help does not show its help whole: 'Since [the start].'",
        "resumer status --quiet: no help text",
    ]


def another_app() -> typer.Typer:
    """A command line whose ``status`` has, besides --json, an option no guide shows
    and whose help Rich markup eats, and one without a help text."""
    another = typer.Typer()

    @another.callback()
    def group() -> None:
        """The group."""

    @another.command()
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        since: Annotated[str, typer.Option("--since", help="Since [the start].")] = "now",
        quiet: Annotated[bool, typer.Option("--quiet")] = False,
    ) -> None:
        """The status."""

    return another
