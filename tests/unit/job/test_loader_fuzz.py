"""Fuzzing the job loader: whatever the file holds, a Job or a one-line ConfigError.

Random TOML documents (real section and key names mixed with junk, values of
every TOML type), random text and random bytes go through ``parse_job``,
``load_job`` and ``job_from_dict``. The property: the loader returns a ``Job``
or raises ``ConfigError`` whose message is one line and names the origin —
never a ``KeyError``, ``ValueError``, ``RecursionError``... from inside.

Profiles: ``ci`` (tests/conftest.py; the default: few examples, derandomized, no database) and
``long`` (thousands of examples, shrunk, for runs by hand; pytest-timeout's 120 s
per test is too short for it)::

    HYPOTHESIS_PROFILE=long python -m pytest -o timeout=0 tests/unit -k fuzz
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumer.errors import ConfigError
from resumer.job.keys import LEVEL_SCHEMA, PAGINATION_SCHEMA, RULE_SCHEMA, SCHEMA
from resumer.job.loader import job_from_dict, load_job, parse_job
from resumer.job.settings import RULE_OUTCOMES, Job

# The profiles are set here, not in tests/conftest.py, which predates them. In CI a
# failure is not shrunk (shrinking a big document takes longer than the whole suite):
# the inputs found so far are pinned, minimal, in the FOUND_* tests below.

ORIGIN = "fuzz/job.toml"
BUILT_IN_CODE = "<job built in code>"
DEEP = 1_200  # nesting depth of the deep documents: past Python's default recursion limit


# -- a small TOML writer ---------------------------------------------------------


class Raw(NamedTuple):
    """A value written into the TOML text as it is (``0xff``, ``+inf``, 5,000 digits)."""

    text: str
    value: Any

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 20 else f"{self.text[:8]}...({len(self.text)} chars)"
        return f"Raw({shown!r})"


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML for {value!r}")


def toml_document(document: Mapping[str, Any], inline_below: int = 2) -> str:
    """TOML text for a dict: tables down to depth ``inline_below`` get ``[a.b]`` headers,
    deeper ones are written inline (both read alike)."""
    lines: list[str] = []

    def table(path: tuple[str, ...], content: Mapping[str, Any]) -> None:
        header = [(k, v) for k, v in content.items() if isinstance(v, dict)]
        header = header if len(path) < inline_below else []
        if path:
            lines.append("[" + ".".join(toml_key(p) for p in path) + "]")
        for key, value in content.items():
            if (key, value) not in header:
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, value in header:
            table((*path, key), value)

    table((), document)
    return "\n".join(lines) + "\n"


def plain(value: Any) -> Any:
    """What tomllib reads back for a generated value (a ``Raw`` is its value)."""
    if isinstance(value, Raw):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


# -- strategies --------------------------------------------------------------------

SECTIONS = [*SCHEMA, "levels", "pagination", "rule"]
KEYS = sorted(
    {key for table in SCHEMA.values() for key in table}
    | set(PAGINATION_SCHEMA)
    | set(LEVEL_SCHEMA)
    | set(RULE_SCHEMA)
)
# Superscript two and Arabic-Indic one and three: str.isdigit() says yes to all three.
LEVEL_NAMES = ["0", "1", "2", "3", "63", "64", "65", "01", "-1", "1.5", "9" * 30]
LEVEL_NAMES += ["\u00b2", "\u0661", "\u0663"]
PLACEHOLDER_TEXT = ["{id}", "{name}", "{type}", "{level}", "{parent_id}", "${TOKEN}", "{{", "}}"]
JUNK_TEXT = ["{", "}", "{nope}", "${", "${1X}", "\n", "\r\n", "\x00", "\x7f", "\u2028", "😀"]

# Every character: control characters, unicode, astral planes (no lone surrogates:
# they cannot be in a text file).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
template_text = st.lists(
    st.sampled_from(PLACEHOLDER_TEXT + JUNK_TEXT + ["http://h/", "a", "/", "?q="]) | any_text,
    max_size=6,
).map("".join)
strings = st.one_of(
    any_text,
    template_text,
    st.sampled_from(
        [
            "",
            "GET",
            "post",
            "POST ",
            "page",
            "cursor",
            "depth-first",
            "breadth-first",
            "10m",
            "1.5h",
            "90s",
            "0",
            "-1s",
            "9" * 400 + "s",
            "http://127.0.0.1:9/children",
            "roots.csv",
            "roots.JSONL",
            "/abs/roots.json",
            "r.txt",
            "data.items",
        ]
    ),
)
huge_ints = st.sampled_from(
    [
        2**63 - 1,
        2**63,
        -(2**63) - 1,
        10**308,
        10**309,
        -(10**400),
        10**4000,
    ]
)
raw_numbers = st.sampled_from(
    [
        Raw("9" * 5_000, None),  # more digits than Python converts by default
        Raw("-" + "1" * 4_301, None),
        Raw("0xdead_beef", 0xDEADBEEF),
        Raw("0o777", 0o777),
        Raw("0b1011", 0b1011),
        Raw("1_000", 1000),
        Raw("+inf", math.inf),
        Raw("-nan", math.nan),
        Raw("1e400", math.inf),
        Raw("5e-324", 5e-324),
        Raw("-0.0", -0.0),
    ]
)
timezones = st.sampled_from(
    [
        None,
        dt.UTC,
        dt.timezone(dt.timedelta(hours=5, minutes=30)),
        dt.timezone(-dt.timedelta(hours=8)),
    ]
)
scalars = st.one_of(
    strings,
    st.integers(),
    st.integers(-2, 70),
    huge_ints,
    raw_numbers,
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=timezones),
    st.times(),
)
keys = st.one_of(
    st.sampled_from(SECTIONS + KEYS + LEVEL_NAMES),
    any_text,
    st.sampled_from(["", " ", "a.b", "request.url", "[x]", "\n", "=", '"', "\\"]),
)


def tables_of(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(keys, children, max_size=5)


toml_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | tables_of(c), max_leaves=20)

any_documents = st.dictionaries(
    st.sampled_from(SECTIONS) | keys,
    st.one_of(tables_of(toml_values), toml_values),
    max_size=6,
)


@st.composite
def near_valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid job with random changes: real keys given random or plausible values, so
    the validation goes deep (levels, pagination, bounds, templates)."""
    if draw(st.booleans()):
        source: dict[str, Any] = {"url": "http://127.0.0.1:9/features"}
    else:
        source = {"file": draw(st.sampled_from(["roots.csv", "r.json", "/abs/r.jsonl"]))}
    document: dict[str, Any] = {
        "source": source,
        "request": {"url": "http://127.0.0.1:9/children"},
    }
    plausible = st.one_of(
        st.integers(-1, 70), st.floats(-1, 100), strings, st.booleans(), toml_values
    )
    for section in draw(st.lists(st.sampled_from([*SCHEMA, "levels"]), max_size=4)):
        table = document.setdefault(section, {})
        if section == "levels":
            for name in draw(st.lists(st.sampled_from(LEVEL_NAMES) | keys, max_size=3)):
                names = draw(st.lists(st.sampled_from(sorted(LEVEL_SCHEMA)) | keys, max_size=3))
                table[name] = {key: draw(plausible) for key in names}
            continue
        names = draw(st.lists(st.sampled_from(sorted(SCHEMA[section])) | keys, max_size=4))
        for key in names:
            table[key] = draw(plausible | tables_of(strings) | st.lists(st.integers(90, 610)))
        if section == "response" and draw(st.booleans()):
            names = draw(st.lists(st.sampled_from(sorted(PAGINATION_SCHEMA)) | keys, max_size=4))
            table["pagination"] = {key: draw(plausible) for key in names}
        if section == "response" and draw(st.booleans()):
            table["rule"] = draw(st.lists(rules(keys, plausible), max_size=3))
    if draw(st.booleans()):
        document[draw(keys)] = draw(toml_values)  # a junk section or top-level key
    return document


@st.composite
def rules(
    draw: st.DrawFn, keys: st.SearchStrategy[str], plausible: st.SearchStrategy[Any]
) -> dict[str, Any]:
    """A ``[[response.rule]]`` table: often valid, often not (a wrong word, two tests,
    ``wait`` with the wrong outcome, values of the wrong kind)."""
    rule: dict[str, Any] = {"then": draw(st.sampled_from([*RULE_OUTCOMES, "fial", ""]))}
    if draw(st.booleans()):
        rule["status"] = draw(st.lists(st.integers(90, 610), max_size=3))
    if draw(st.booleans()):
        rule["field"] = draw(st.sampled_from(["code", "data.list", "a..b", "", " "]) | strings)
    for test in ("in", "not_in"):
        if draw(st.integers(0, 3)) == 0:
            rule[test] = draw(st.lists(plausible, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        rule["missing"] = draw(plausible)
    if draw(st.booleans()):
        rule["contains"] = draw(strings)
    if draw(st.integers(0, 3)) == 0:
        rule["wait"] = draw(st.sampled_from(["data.retryAfter", "x..y"]) | strings)
    for key in draw(st.lists(st.sampled_from(sorted(RULE_SCHEMA)) | keys, max_size=2)):
        rule[key] = draw(plausible)
    return rule


documents = near_valid_documents() | any_documents


# -- the property ------------------------------------------------------------------


def loads_or_refuses(load: Callable[[], Job], origin: str) -> Job | None:
    """Run ``load``: a Job, or a ConfigError whose message is one line naming ``origin``."""
    try:
        job = load()
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, f"a multi-line message: {message!r}"
        assert origin in message, f"the message does not name {origin!r}: {message!r}"
        return None
    assert isinstance(job, Job)
    return job


def parse(text: str) -> Job | None:
    return loads_or_refuses(lambda: parse_job(text, ORIGIN, Path("/fuzz")), ORIGIN)


def build(settings_: Mapping[str, Any]) -> Job | None:
    return loads_or_refuses(lambda: job_from_dict(settings_, Path("/fuzz")), BUILT_IN_CODE)


# -- (a) valid TOML of random shapes -------------------------------------------------


@given(documents, st.integers(0, 3))
def test_the_writer_writes_toml_that_reads_back_as_the_document(
    document: dict[str, Any], inline_below: int
) -> None:
    """The fuzz below feeds valid TOML only if this writer is right."""
    text = toml_document(_no_giant_ints(document), inline_below)
    assert same(tomllib.loads(text), plain(_no_giant_ints(document)))


def _no_giant_ints(value: Any) -> Any:
    """The document without the ints Python will not read (tomllib raises ValueError)."""
    if isinstance(value, Raw) and value.value is None:
        return 0
    if isinstance(value, list):
        return [_no_giant_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _no_giant_ints(v) for k, v in value.items()}
    return value


def same(read: Any, written: Any) -> bool:
    """Equal, with nan equal to nan and a float's sign kept."""
    if isinstance(written, float) and isinstance(read, float):
        return repr(read) == repr(written)
    if isinstance(written, list) and isinstance(read, list):
        return len(read) == len(written) and all(map(same, read, written))
    if isinstance(written, dict) and isinstance(read, dict):
        return read.keys() == written.keys() and all(same(read[k], written[k]) for k in written)
    return type(read) is type(written) and read == written


@given(documents, st.integers(0, 3))
def test_any_valid_toml_loads_as_a_job_or_a_one_line_config_error(
    document: dict[str, Any], inline_below: int
) -> None:
    parse(toml_document(document, inline_below))


@given(documents)
def test_any_settings_built_in_code_give_a_job_or_a_config_error(document: dict[str, Any]) -> None:
    build(plain(_no_giant_ints(document)))


@given(near_valid_documents())
def test_a_job_from_dict_is_accepted_as_its_toml_text_is(document: dict[str, Any]) -> None:
    """The same tables, written as a file or passed as a dict: the same verdict."""
    settings_ = plain(_no_giant_ints(document))
    try:
        text = toml_document(document)
        from_text = parse_job(text, ORIGIN, Path("/fuzz"))
    except Exception:
        return  # the loader's own property is tested above; only agreement matters here
    try:
        from_dict = job_from_dict(settings_, Path("/fuzz"))
    except ConfigError as exc:
        pytest.fail(f"accepted as TOML text but refused as a dict: {exc}\nTOML:\n{text}")
    assert from_dict.source == from_text.source


# -- deep documents ------------------------------------------------------------------------


def nested_array(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def nested_inline(depth: int) -> str:
    return "{ a = " * depth + "1" + " }" * depth


BASE_JOB = '[source]\nurl = "http://127.0.0.1:9/f"\n[request]\nurl = "http://127.0.0.1:9/c"\n'

DEEP_TEXTS = {
    "deep array": f"x = {nested_array(DEEP)}\n",
    "deep inline table": f"x = {nested_inline(DEEP)}\n",
    "deep request.body": BASE_JOB + 'method = "POST"\nbody = ' + nested_inline(DEEP) + "\n",
    "deep headers in request.body": (
        BASE_JOB + 'method = "POST"\n[request.body' + ".a" * DEEP + ']\nb = "{id}"\n'
    ),
}


@pytest.mark.parametrize("text", list(DEEP_TEXTS.values()), ids=list(DEEP_TEXTS))
def test_deeply_nested_job_files_give_a_job_or_a_config_error(text: str) -> None:
    parse(text)


def test_deeply_nested_settings_built_in_code_give_a_job_or_a_config_error() -> None:
    body: dict[str, Any] = {}
    inner = body
    for _ in range(DEEP):
        inner["a"] = {}
        inner = inner["a"]
    build(
        {
            "source": {"url": "http://127.0.0.1:9/f"},
            "request": {"url": "http://127.0.0.1:9/c", "method": "POST", "body": body},
        }
    )


# -- (b) random text and random bytes ---------------------------------------------------------

TOML_TOKENS = [
    "[",
    "]",
    "[[",
    "]]",
    "=",
    ".",
    '"',
    "'",
    '"""',
    "'''",
    "\n",
    "#",
    ",",
    "{",
    "}",
    " ",
    "\\u0000",
    "1",
    "-",
    "inf",
    "nan",
    "true",
    "1979-05-27",
    "T07:32:00Z",
    *SECTIONS,
    *KEYS,
    *LEVEL_NAMES,
    "http://127.0.0.1:9/c",
]
tomlish_text = st.lists(st.sampled_from(TOML_TOKENS) | any_text, max_size=40).map("".join)


@given(st.text() | tomlish_text)
def test_random_text_loads_as_a_job_or_a_config_error(text: str) -> None:
    parse(text)


@given(st.binary(max_size=300) | tomlish_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_a_random_file_loads_as_a_job_or_a_config_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.toml"
        path.write_bytes(content)
        loads_or_refuses(lambda: load_job(path), str(path))
        loads_or_refuses(lambda: load_job(Path(folder) / "missing.toml"), "missing.toml")
        loads_or_refuses(lambda: load_job(folder), folder)  # a folder, not a file


# -- the inputs the fuzzers found ------------------------------------------------------------
# Each is a minimal input that broke the property; the test passes once the loader
# refuses (or accepts) it properly.

FOUND_TEXTS = {
    "int too large for a float (timeout)": BASE_JOB + "timeout = " + "1" * 310 + "\n",
    "int too large for a float (duration)": BASE_JOB + "[alerts]\nwindow = " + "1" * 310 + "\n",
    "int of more than 4300 digits": "x = " + "1" * 4_301 + "\n",
    "superscript level number": BASE_JOB + '[levels."²"]\n',
    "level number of more than 4300 digits": BASE_JOB + '[levels."' + "1" * 4_301 + '"]\n',
    "newline in a refused string value": BASE_JOB + '[priority]\norder = "\\n"\n',
    "newline in an unknown key": BASE_JOB + '[crawl]\n"\\n" = 1\n',
    "newline in an unknown section": '"\\n" = 1\n',
    "newline in a placeholder": BASE_JOB.replace('/c"', '/{\\n}"'),
}


@pytest.mark.parametrize("text", list(FOUND_TEXTS.values()), ids=list(FOUND_TEXTS))
def test_found_job_files_give_a_job_or_a_one_line_config_error(text: str) -> None:
    parse(text)


FOUND_SETTINGS: dict[str, dict[str, Any]] = {
    "an unwritable value (None)": {"source": {"url": None}},
    "int of more than 4300 digits": {"crawl": {"max_depth": 10**4_301}},
}


@pytest.mark.parametrize("settings_", list(FOUND_SETTINGS.values()), ids=list(FOUND_SETTINGS))
def test_found_settings_give_a_job_or_a_one_line_config_error(settings_: dict[str, Any]) -> None:
    build(settings_)


FOUND_REFUSED = {
    "a character outside the BMP": {
        "source": {"url": "http://127.0.0.1:9/😀"},
        "request": {"url": "http://127.0.0.1:9/c"},
    },
}


@pytest.mark.parametrize("settings_", list(FOUND_REFUSED.values()), ids=list(FOUND_REFUSED))
def test_found_valid_settings_are_accepted_in_code_as_in_a_file(settings_: dict[str, Any]) -> None:
    assert parse(toml_document(settings_)) is not None
    assert build(settings_) is not None
