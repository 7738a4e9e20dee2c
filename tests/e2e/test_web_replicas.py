"""Two `credmail web` processes behind one port (a round-robin TCP balancer, no session
affinity), as the Kubernetes base runs them: a form served by one is accepted by the
other (one key, web.secret_key_file), and the per-address limit counts presses to both
(the counters are in the database): the N+1-th is refused whichever process gets it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from credmail.config import load_settings
from tests.support.browser import WebServer, start_web
from tests.support.links import issue_token
from tests.support.round_robin import RoundRobin
from tests.support.wiring import IDENTITY, make_app, write_config

pytestmark = pytest.mark.e2e

INVALID_PER_HOUR = 4


@pytest.fixture
def balanced(db_url: str, tmp_path: Path) -> Iterator[tuple[RoundRobin, dict[str, str]]]:
    key = tmp_path / "web-secret-key"
    key.write_text("5f0c9a" * 8 + "\n")
    key.chmod(0o600)
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": db_url,
        "CREDMAIL_WEB__SECRET_KEY_FILE": str(key),
        "CREDMAIL_WEB__INVALID_PER_HOUR": str(INVALID_PER_HOUR),
        "CREDMAIL_WEB__INVALID_MIN_SECONDS": "0",
    }
    config = write_config(tmp_path / "credmail.toml", env)
    make_app(load_settings(config, environ={}))  # the schema and the directory
    servers: list[WebServer] = []
    try:
        for n in range(2):
            servers.append(start_web(config, tmp_path / f"web-{n}.log"))
        ports = [int(server.url.rsplit(":", 1)[1]) for server in servers]
        balancer = RoundRobin([("127.0.0.1", port) for port in ports]).start()
        yield balancer, env
        balancer.stop()
    finally:
        for server in servers:
            server.stop()


def get(balancer: RoundRobin, path: str, **options: object) -> httpx.Response:
    """One request on its own connection: the balancer picks the next process for it."""
    with httpx.Client(base_url=balancer.url, timeout=30) as client:
        return client.request("GET", path, **options)  # type: ignore[arg-type]


def test_a_form_from_one_process_is_accepted_by_the_other(
    balanced: tuple[RoundRobin, dict[str, str]],
) -> None:
    balancer, env = balanced
    app = make_app(load_settings(None, environ=env), directory=False)
    for _ in range(3):  # three presses, each form served by one process, posted to the other
        token = issue_token(app, "G1001")
        page = get(balancer, f"/reset/{token}")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert page.status_code == 200 and found, page.text
        with httpx.Client(base_url=balancer.url, timeout=30, cookies=page.cookies) as client:
            done = client.post(f"/reset/{token}", data={"csrf_token": found.group(1)})
        assert done.status_code == 200 and "Richiesta confermata" in done.text, done.text
    assert balancer.served[0] == balancer.served[1] == 3


def test_the_per_address_limit_is_shared_by_both_processes(
    balanced: tuple[RoundRobin, dict[str, str]],
) -> None:
    balancer, _ = balanced
    codes = [get(balancer, f"/reset/guess{n}.x").status_code for n in range(INVALID_PER_HOUR)]
    assert codes == [404] * INVALID_PER_HOUR
    assert [get(balancer, "/reset/guess.y").status_code for _ in range(2)] == [429, 429]
    assert balancer.served[0] == balancer.served[1] == 3
