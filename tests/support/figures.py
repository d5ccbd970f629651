"""The reliability suite's scale (short in CI, long on request) and its one figures line."""

from __future__ import annotations

import os

import pytest

LONG = os.environ.get("KTN_RELIABILITY_SCALE", "short") == "long"


def figures(capsys: pytest.CaptureFixture[str], check: str, **counts: object) -> None:
    """One line of figures per check, shown in the CI log even without ``-s``."""
    with capsys.disabled():
        print(f"\n{check}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
