"""A real browser for the web pages: Debian's Chromium driven by Selenium through Debian's
chromedriver (Selenium Manager never downloads anything: SE_OFFLINE=1 and the driver's
path are given), `credmail web` served on a loopback port, and axe-core for accessibility.

Fixtures (registered for every test by tests/conftest.py):
- `browser`: a headless Chromium with a phone-sized window (412x915), one per test;
- `web_server`: a factory: `web_server(config_path)` starts `credmail web` as a subprocess
  on a free loopback port and returns a `WebServer` (its `url`, its log `output()`);
  stopped by its own pid at the end of the test.
Helpers: `axe_violations(driver)`, `screenshot(driver, name)` into docs/screenshots/,
`follow(driver, element)`: click and wait for the next page.

Nothing here skips: a missing tool fails with what to install (scripts/test installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.servers import free_port

if TYPE_CHECKING:
    from credmail.bootstrap import App
    from tests.support.servers import Dovecot, SmtpServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE = (412, 915)


def _require(path: Path, fix: str) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: {fix}", pytrace=False)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    _require(CHROMIUM, "apt-get install chromium (scripts/test does)")
    _require(CHROMEDRIVER, "apt-get install chromium-driver (scripts/test does)")
    monkeypatch.setenv("SE_OFFLINE", "1")  # Selenium Manager: never reach the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--lang=it-IT",
        f"--window-size={PHONE[0]},{PHONE[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def axe_violations(driver: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """Run axe-core on the current page; the violations of those impacts, described."""
    _require(AXE, "run `npm install --prefix tests/browser` (scripts/test does)")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(JSON.stringify(r.violations)))"
        ".catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}])));"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} - "
        + "; ".join(n.get("html", "")[:120] for n in v.get("nodes", [])[:3])
        for v in json.loads(result)
        if v.get("impact") in impacts
    ]


def follow(driver: Any, element: Any) -> None:
    """Click `element` and wait until the next page has loaded in its place (reading the
    page right after a click races the navigation). The old document carries a mark the
    new one lacks; errors while the page is being swapped are retried."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    driver.execute_script("window.__credmailBeforeClick = true")
    element.click()
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__credmailBeforeClick === undefined"
            " && document.readyState === 'complete'"
        )
    )


def screenshot(driver: Any, name: str) -> Path:
    """Save the whole page (its full height) as docs/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(PHONE[0], max(PHONE[1], int(height) + 120))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(*PHONE)
    return path


@dataclass
class WebServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def credmail_command() -> list[str]:
    exe = Path(sys.executable).with_name("credmail")
    return [str(exe)] if exe.exists() else [shutil.which("credmail") or "credmail"]


def start_web(config: Path, log_path: Path, env: dict[str, str] | None = None) -> WebServer:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    environment.update(env or {})
    environment["CREDMAIL_CONFIG"] = str(config)
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*credmail_command(), "web", "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    log.close()
    server = WebServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"credmail web exited ({process.returncode}): {server.output()}")
        try:
            # any answer will do: /healthz is 503 until the daemon has synced (issue 14)
            httpx.get(f"{server.url}/healthz", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    pytest.fail(f"credmail web did not answer within 30 s: {server.output()}")


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    started: list[WebServer] = []

    def start(config: Path, env: dict[str, str] | None = None) -> WebServer:
        server = start_web(config, tmp_path / f"web-{len(started)}.log", env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class ThreadServer:
    """An ASGI app served by uvicorn in a thread of the test (for pages that need an
    in-process stand-in, e.g. a backend another build provides)."""

    url: str
    server: Any
    thread: Any

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve_in_thread(asgi: Any) -> ThreadServer:
    import threading

    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        pytest.fail("uvicorn did not start in its thread")
    return ThreadServer(f"http://127.0.0.1:{port}", server, thread)


def replaced(element: Any) -> Callable[[Any], bool]:
    """A wait condition: the page holding `element` has been replaced. Selenium's
    staleness_of, also when Chromium, caught mid-navigation, reports the node as an
    inspector error ("Node with given id does not belong to the document") instead of a
    stale element."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def gone(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return gone


def mailbox_console_app(
    tmp_path: Path, dovecot: Dovecot, smtp: SmtpServer, name: str, role: str
) -> tuple[App, dict[str, str]]:
    """A school on a SQLite file with the test's Dovecot and SMTP sink, and one staff
    account (`name`, `role`, the tests' password) the browser signs in with; the app and
    its environment (for the `credmail web` the test starts)."""
    from credmail.config import load_settings
    from credmail.service.review import Actor
    from tests.support.wiring import make_app, server_env
    from tests.web.conftest import PASSWORD

    env = server_env(dovecot, smtp, f"sqlite:///{tmp_path / 'credmail.db'}")
    app = make_app(load_settings(None, environ=env))
    app.desks.staff.add(name, role, PASSWORD, Actor("root", "cli"))
    return app, env
