"""Issue 28.3 through the console's own routes: approving, rejecting with notice and
marking a register task done each send one nudge to the daemon's socket (here bound by the
test, as `credmail run` binds it next to the SQLite file) once the decision is committed;
archiving or rejecting without notice send nothing (nothing to deliver)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from credmail.adapters.db.nudge import SocketListener, socket_path
from credmail.bootstrap import App
from tests.web.conftest import ROOT, hold, register_task

SENDER = "g.esposito@example.org"


@pytest.fixture
def daemon_end(console_app: App) -> Iterator[SocketListener]:
    assert console_app.nudge_mode == "socket"  # `auto` on a SQLite file
    path = socket_path(console_app.engine)
    assert path is not None
    listener = SocketListener(path)
    listener.open()
    yield listener
    listener.close()


def heard(listener: SocketListener) -> bool:
    return listener.wait(5.0)


def quiet(listener: SocketListener) -> bool:
    return not listener.wait(0.2)


def test_console_decisions_nudge_the_daemon(
    console_app: App, operator: tuple[TestClient, str], daemon_end: SocketListener
) -> None:
    client, csrf = operator
    approve, reject, silent, archive = (
        hold(console_app, SENDER, "adult", ("unverified_sender",)) for _ in range(4)
    )
    task_id = register_task(console_app, "sel1")
    assert quiet(daemon_end)
    answer = client.post(
        f"{ROOT}/revisione/{approve}/approva",
        data={"csrf_token": csrf, "persona": "T3001", "indirizzo": SENDER},
    )
    assert answer.status_code == 303 and heard(daemon_end)
    client.post(
        f"{ROOT}/revisione/{reject}/respingi",
        data={"csrf_token": csrf, "nota": "non è lui", "avvisa": "si"},
    )
    assert heard(daemon_end)
    client.post(f"{ROOT}/revisione/{silent}/respingi", data={"csrf_token": csrf, "nota": "no"})
    client.post(f"{ROOT}/revisione/{archive}/archivia", data={"csrf_token": csrf})
    assert console_app.review.pending() == [] and quiet(daemon_end)
    answer = client.post(f"{ROOT}/registro/{task_id}/fatto", data={"csrf_token": csrf})
    assert answer.status_code == 303 and heard(daemon_end)
    assert len(console_app.desks.outbox.listing()) == 3
