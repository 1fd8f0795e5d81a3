from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# Tests import their helpers as `tests.helpers`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The fuzz tests' profiles: ``ci`` (few examples, derandomized, no database) by default,
# ``long`` by hand: HYPOTHESIS_PROFILE=long python -m pytest -o timeout=0 tests/unit -k fuzz
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, database=None, print_blob=True,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=_SLOW_DATA,
)  # fmt: skip
settings.register_profile(
    "long", max_examples=5_000, deadline=None, suppress_health_check=_SLOW_DATA, print_blob=True,
    database=DirectoryBasedExampleDatabase(Path(tempfile.gettempdir()) / "resumer-hypothesis"),
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
