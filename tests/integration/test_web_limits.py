"""The reset page's limits in the database (SqlWebLimits under SlidingWindow), on SQLite
and PostgreSQL: shared by every process, atomic under concurrent presses, a sliding
window across the fixed windows' edge, old windows purged."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from credmail.adapters.db.engine import make_engine, upgrade
from credmail.adapters.db.models import WebLimitRow
from credmail.adapters.db.web_limits import SqlWebLimits
from credmail.web.ratelimit import SlidingWindow

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0  # a multiple of 60: a minute window starts here


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_two_processes_count_together(engine: Engine) -> None:
    clock = Clock()
    one, two = (SlidingWindow(SqlWebLimits(engine), "post", 3, 60, clock) for _ in range(2))
    assert [one.hit("198.51.100.1"), two.hit("198.51.100.1"), one.hit("198.51.100.1")] == [True] * 3
    assert not two.hit("198.51.100.1") and two.exceeded("198.51.100.1")
    assert two.hit("198.51.100.2")  # another client, its own count
    assert not one.exceeded("198.51.100.2")


def test_concurrent_hits_never_count_past_the_limit(engine: Engine) -> None:
    limit = SlidingWindow(SqlWebLimits(engine), "invalid", 25, 3600, Clock())
    results: list[bool] = []
    lock = threading.Lock()

    def press() -> None:
        for _ in range(10):
            counted = limit.hit("203.0.113.9")
            with lock:
                results.append(counted)

    threads = [threading.Thread(target=press) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 25 and len(results) == 60
    with engine.connect() as conn:
        assert conn.execute(select(WebLimitRow.hits)).scalar_one() == 25


def test_the_window_slides_across_the_edge_of_a_fixed_one(engine: Engine) -> None:
    clock = Clock(T0 + 59)
    limit = SlidingWindow(SqlWebLimits(engine), "post", 3, 60, clock)
    assert all(limit.hit("c") for _ in range(3))
    clock.now = T0 + 61  # a new fixed window, but the three presses were 2 s ago
    assert limit.exceeded("c") and not limit.hit("c")
    clock.now = T0 + 100  # a third of the old window left: ceil(3 x 1/3) = 1 still counts
    assert limit.hit("c") and limit.hit("c") and not limit.hit("c")
    clock.now = T0 + 120  # the old window is out: the two of this one remain
    assert limit.hit("c") and not limit.hit("c")


def test_windows_older_than_the_previous_one_are_purged(engine: Engine) -> None:
    clock = Clock()
    limit = SlidingWindow(SqlWebLimits(engine), "post", 3, 60, clock)
    other = SlidingWindow(SqlWebLimits(engine), "invalid", 3, 60, clock)
    for minute in range(5):
        clock.now = T0 + 60 * minute
        limit.hit(f"client-{minute}")
    other.hit("kept")
    with engine.connect() as conn:
        rows = conn.execute(select(WebLimitRow.name, func.count()).group_by(WebLimitRow.name))
        assert dict(rows.all()) == {"post": 2, "invalid": 1}  # this window and the previous
