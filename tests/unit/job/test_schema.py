"""`resumer init`'s template and `resumer schema`'s JSON Schema, both from jobkeys.SCHEMA."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from resumer.errors import ConfigError
from resumer.job.loader import parse_job
from resumer.job.schema import ENVELOPE_RULES, LEVEL_OVERRIDES, SHAPE_RULES, json_schema, template
from tests.helpers import resumer

ROOT = Path(__file__).resolve().parents[3]
MINIMAL = '[source]\nurl = "http://127.0.0.1:8808/f"\n[request]\nurl = "http://127.0.0.1:8808/c"\n'


def valid(text: str) -> bool:
    try:
        jsonschema.validate(tomllib.loads(text), json_schema())
    except jsonschema.ValidationError:
        return False
    return True


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_the_template_loads_and_passes_the_schema() -> None:
    text = template()
    job = parse_job(text, "init.toml")
    assert job.request.url == "http://127.0.0.1:8808/children"
    assert valid(text)
    for section in ("[retry]", "[breaker]", "[rate]", "[priority]", "[alerts]", "[metrics]"):
        assert section in text


@pytest.mark.parametrize(
    "extra",
    [
        "retries = 3\n",  # unknown key in [request]
        '[crawl]\nhttp_concurrency = "many"\n',  # wrong type
        "[crawl]\nhttp_concurrency = 0\n",  # out of range
        "[crawler]\nmax_depth = 3\n",  # unknown section
        "[levels.x]\nworkers = 2\n",  # not a level number
        "[retry]\nretry_on = [99]\n",  # not an HTTP status
    ],
)
def test_the_schema_rejects_what_the_loader_rejects(extra: str) -> None:
    assert not valid(MINIMAL + extra)


def test_the_templates_rules_uncommented_load_and_pass_the_schema() -> None:
    rules = ENVELOPE_RULES.splitlines()
    start = rules.index("# [[response.rule]]")
    body = "\n".join(line.removeprefix("# ") for line in rules[start:])
    text = MINIMAL + '[response]\nitems = "data.list"\nmessage = "msg"\n' + body + "\n"
    job = parse_job(text, "job.toml")
    assert [rule.then for rule in job.response.rules] == [
        "empty",
        "retry",
        "throttle",
        "retry",
        "fail",
        "empty",
    ]
    assert valid(text)
    assert "\n".join(rules) in template()


@pytest.mark.parametrize(
    "rule",
    [
        'then = "fail"\n',  # no condition
        'status = [404]\nthen = "fial"\n',  # an unknown outcome
        'field = "code"\nin = [1]\nnot_in = [2]\nthen = "fail"\n',  # two tests
        'field = "code"\nthen = "fail"\n',  # a field with no test
        'in = [1]\nthen = "fail"\n',  # a test with no field
        'status = [404]\nthen = "empty"\nwait = "data.wait"\n',  # wait with empty
        'status = [404]\nthen = "empty"\nwhen = 1\n',  # an unknown key
        'field = "code"\nin = []\nthen = "fail"\n',  # no value to compare with
    ],
)
def test_the_schema_and_the_loader_refuse_the_same_rules(rule: str) -> None:
    text = MINIMAL + "[[response.rule]]\n" + rule
    assert not valid(text)
    with pytest.raises(ConfigError, match=r"^job\.toml:5: response\.rule 1: "):
        parse_job(text, "job.toml")


def uncommented(block: str) -> str:
    """A commented template block as TOML: its lines from the first table header on."""
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# ["))
    return "\n".join(line.removeprefix("# ") for line in lines[start:]) + "\n"


def test_the_templates_tree_shape_uncommented_loads_and_passes_the_schema() -> None:
    text = MINIMAL + uncommented(SHAPE_RULES) + uncommented(LEVEL_OVERRIDES)
    job = parse_job(text, "job.toml")
    assert [rule.condition.field for rule in (*job.crawl.leaf, *job.crawl.drop)] == [
        "hasChildren",
        "type",
    ]
    assert job.response_of(3).id == "subFeatureId"
    assert dict(job.request_of(3).params) == {"subFeatureId": "{id}"}
    assert valid(text)
    assert SHAPE_RULES in template() and LEVEL_OVERRIDES in template()


@pytest.mark.parametrize(
    "extra",
    [
        "[[crawl.leaf]]\nin = [false]\n",  # no field
        '[[crawl.leaf]]\nfield = "leaf"\n',  # a field with no test
        '[[crawl.drop]]\nfield = "t"\nin = ["x"]\nmissing = true\n',  # two tests
        '[[crawl.drop]]\nfield = "t"\nin = ["x"]\nlevel = []\n',  # no level
        '[[crawl.drop]]\nfield = "t"\nin = ["x"]\nthen = "drop"\n',  # an unknown key
        "[levels.2.request]\ntimeout = 3\n",  # not a key a level overrides
        "[levels.2.response]\nitems = 3\n",  # wrong type
        '[[levels.2.response.rule]]\nthen = "empty"\n',  # a rule with no condition
    ],
)
def test_the_schema_and_the_loader_refuse_the_same_shapes(extra: str) -> None:
    assert not valid(MINIMAL + extra)
    with pytest.raises(ConfigError, match=r"^job\.toml:[56]: (crawl|levels)"):
        parse_job(MINIMAL + extra, "job.toml")


def test_the_schema_wants_exactly_one_of_url_and_file() -> None:
    both = '[source]\nurl = "http://x/f"\nfile = "r.csv"\n[request]\nurl = "http://x/c"\n'
    assert not valid(both)
    assert not valid('[source]\n[request]\nurl = "http://x/c"\n')


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    assert resumer("init", "job.toml", cwd=tmp_path).returncode == 0
    (tmp_path / "job.toml").write_text("# mine\n")
    refused = resumer("init", "job.toml", cwd=tmp_path)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert (tmp_path / "job.toml").read_text() == "# mine\n"
    assert resumer("init", "job.toml", "--force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "job.toml").read_text() == template()


def test_schema_and_version_commands(tmp_path: Path) -> None:
    printed = resumer("schema", cwd=tmp_path)
    assert json.loads(printed.stdout) == json_schema()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert resumer("--version", cwd=tmp_path).stdout.strip() == f"resumer {version}"
