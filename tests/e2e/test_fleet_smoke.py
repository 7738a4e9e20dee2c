"""The fleet benchmark, small (3 schools): it completes, every request of both bursts is
answered exactly once, also when a daemon is SIGKILLed and restarted in the middle.

Nothing here is about time; bench/fleet.py measures that by hand (bench/results/fleet.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fleet import main

pytestmark = pytest.mark.e2e


def test_fleet_smoke(tmp_path: Path) -> None:
    report = main(["--smoke", "--output", str(tmp_path)])
    assert report.schools == 3
    calm, killed = report.bursts
    for burst in (calm, killed):
        assert burst.requests == 3 * 2
        assert (burst.answered, burst.lost, burst.answered_twice) == (burst.requests, 0, 0)
    assert calm.killed == [] and len(killed.killed) == 1
    assert 0 < report.rss_mb_per_instance_max <= report.rss_mb_total
    assert (tmp_path / "smoke-fleet.json").exists() and (tmp_path / "smoke-fleet.md").exists()
