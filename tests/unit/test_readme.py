"""Every job file example in README.md is valid, so the documentation cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resumer.job.loader import parse_job

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
MINIMAL = (
    '[source]\nurl = "http://127.0.0.1:8808/features"\n[request]\nurl = "http://127.0.0.1:8808/c"\n'
)


def test_the_readme_has_job_file_examples() -> None:
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_example_is_a_valid_job_file_or_section(block: str) -> None:
    text = block if "[source]" in block else MINIMAL + block
    parse_job(text, "README.md")
