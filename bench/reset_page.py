"""The reset page's server time, the per-client limits and CSRF check included: opening a
valid link, an unknown one, and pressing the button (worklist backend), p50/p95 per
request, on SQLite and PostgreSQL ($PG_TEST_URL); then the limits' own cost, alone: a
check (every request: one read) and a hit (a press or an unknown link: a read and one
atomic increment), which page times on a busy machine hide in their noise.

    python -m bench.reset_page                    # 300 samples of each, both databases
    python -m bench.reset_page --samples 50       # quicker

Requests go through the whole ASGI app in process (Starlette's TestClient: middleware,
limits, desk, database, template), so the time is the server's, without a network; one
request at a time. The limits are set high enough never to answer 429. The header of the
result names the machine's cores and its load average while it ran (other work on the
machine shows there). Writes bench/results/<stem>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.testclient import TestClient

from bench.console_pages import _reset_postgres
from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.web.app import create_web_app
from tests.support.links import issue_token
from tests.support.wiring import IDENTITY, make_app

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HIGH = "1000000"


@dataclass
class Result:
    database: str
    request: str
    samples: int
    p50_ms: float
    p95_ms: float
    max_ms: float


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def measure(url: str, database: str, samples: int) -> list[Result]:
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": url,
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
        "CREDMAIL_WEB__POST_PER_MINUTE": HIGH,
        "CREDMAIL_WEB__INVALID_PER_HOUR": HIGH,
    }
    app = make_app(load_settings(None, environ=env))
    client = TestClient(
        create_web_app(app, app.settings),
        base_url="https://registro.istitutostanga.edu.it",
        follow_redirects=False,
    )
    valid = issue_token(app, "G1001")

    def press() -> Callable[[], int]:
        token = issue_token(app, "G1002")  # not timed: the page's own work is
        csrf = _csrf(client.get(f"/reset/{token}").text)
        return lambda: client.post(f"/reset/{token}", data={"csrf_token": csrf}).status_code

    requests: dict[str, tuple[Callable[[], Callable[[], int]], int]] = {
        "open a valid link (GET)": (lambda: lambda: client.get(f"/reset/{valid}").status_code, 200),
        "open an unknown link (GET)": (
            lambda: lambda: client.get("/reset/nothing.here").status_code,
            404,
        ),
        "press the button (POST)": (press, 200),
    }
    results = []
    for name, (prepare, status) in requests.items():
        for _ in range(5):  # warm up
            assert prepare()() == status, name
        times = []
        for _ in range(samples):
            request = prepare()
            started = time.perf_counter()
            answered = request()
            times.append((time.perf_counter() - started) * 1000)
            assert answered == status, name
        results.append(_result(database, name, times))
    client.close()
    results += measure_limits(app, database, samples)
    app.close()
    return results


def measure_limits(app: App, database: str, samples: int) -> list[Result]:
    """A check and a hit of the database counters (absent from versions before them)."""
    try:
        from credmail.web.ratelimit import SlidingWindow

        window = SlidingWindow(app.web_limits(), "bench", 10**9, 60)
    except (ImportError, AttributeError, TypeError):
        return []
    results = []
    for name, call in (("limits: check", window.exceeded), ("limits: hit", window.hit)):
        times = []
        for n in range(samples):
            started = time.perf_counter()
            call(f"198.51.100.{n % 200}")
            times.append((time.perf_counter() - started) * 1000)
        results.append(_result(database, name, times))
    return results


def _result(database: str, name: str, times: list[float]) -> Result:
    ordered = sorted(times)
    return Result(
        database,
        name,
        len(ordered),
        round(statistics.median(ordered), 2),
        round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        round(ordered[-1], 2),
    )


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--stem", default="reset_page", help="the result files' name")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += measure(f"sqlite:///{tmp}/bench.db", "sqlite", args.samples)
    pg = os.environ.get("PG_TEST_URL")
    if pg:
        _reset_postgres(pg)
        results += measure(pg, "postgresql", args.samples)
    write(results, args.output, args.stem, (load_before[0], os.getloadavg()[0]))
    return results


def write(results: list[Result], out: Path, stem: str, load: tuple[float, float]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Measured {when} on {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, load average {load[0]:.2f} before and {load[1]:.2f} "
        "after; server time per request in process, one at a time."
    )
    lines = [
        header,
        "",
        "| database | request | samples | p50 ms | p95 ms | max ms |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.database} | {r.request} | {r.samples} | {r.p50_ms} | {r.p95_ms} | {r.max_ms} |"
        for r in results
    ]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    document = {"measured": when, "load": load, "results": [asdict(r) for r in results]}
    (out / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
