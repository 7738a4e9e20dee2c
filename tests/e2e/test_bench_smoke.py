"""The benchmark, small (N = 200): it completes and every request gets its decision.

Nothing here is about time; bench/run.py measures that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import main

pytestmark = pytest.mark.e2e


def test_benchmark_smoke(tmp_path: Path) -> None:
    report = main(["--smoke", "--output", str(tmp_path)])
    (run,) = report.runs
    assert run.messages == 200 and run.requests == 100
    assert run.decided == run.requests  # every request decided, every reply delivered
    assert 0 < run.replies_sent <= run.requests
    (latency,) = report.latency
    assert latency.samples >= 3
    assert (tmp_path / "smoke.json").exists() and (tmp_path / "smoke.md").exists()
