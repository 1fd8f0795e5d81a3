"""The ``engine`` fixture: a test that takes it runs once on each HTTP engine (curl is
skipped where pycurl cannot be imported)."""

from __future__ import annotations

import pytest

from tests.helpers import ENGINES


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "curl":
        pytest.importorskip("pycurl")
    return name
