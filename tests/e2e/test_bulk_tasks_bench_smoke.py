"""The bulk task benchmark, small (120 tasks, SQLite): it completes, and marking every
task done wrote one audit entry per task, one mail per family, 25 families per
transaction. Nothing here is about time; bench/bulk_tasks.py measures that."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bulk_tasks import main

pytestmark = pytest.mark.e2e


def test_bulk_tasks_benchmark_smoke(tmp_path: Path) -> None:
    (run,) = main(["--smoke", "--samples", "2", "--output", str(tmp_path)])
    assert (run.tasks, run.families, run.csv_rows) == (120, 90, 120)
    assert (run.audit_entries, run.mails_queued) == (120, 90)
    assert run.transactions == -(-90 // 25)
    assert "load average" in run.load_before
    assert (tmp_path / "bulk_tasks_smoke.md").exists()
