"""Who a client is for the limits and the sign-in lockout: the address a trusted proxy
names (X-Forwarded-For read right to left), an IPv6 client's /64, an IPv4-mapped address
as IPv4; forwarding headers from an untrusted peer ignored with one warning; and the
CSRF cookie a sibling subdomain cannot plant (__Host-)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.web.app import create_web_app
from tests.support.wiring import make_app
from tests.web.conftest import PASSWORD, ROOT, client_at, csrf_of, web_env

pytestmark = pytest.mark.integration  # a real database (SQLite)

Peers = Callable[[str], TestClient]


@pytest.fixture
def peers_of() -> Iterator[Callable[[App], Peers]]:
    """Clients at several addresses of ONE web app (one process, one set of counters)."""
    opened: list[TestClient] = []

    def of(app: App) -> Peers:
        asgi = create_web_app(app, app.settings)

        def peer(address: str) -> TestClient:
            opened.append(client_at(asgi, address))
            return opened[-1]

        return peer

    yield of
    for client in opened:
        client.close()


def limited_app(sqlite_url: str, **web: str) -> App:
    env = web_env(sqlite_url, web__invalid_per_hour="2", **{f"web__{k}": v for k, v in web.items()})
    return make_app(load_settings(None, environ=env))


def test_an_ipv6_client_is_limited_on_its_64(
    sqlite_url: str, peers_of: Callable[[App], Peers]
) -> None:
    peer = peers_of(limited_app(sqlite_url))
    assert peer("2001:db8:1:2::1").get("/reset/a.b").status_code == 404
    assert peer("2001:db8:1:2::2").get("/reset/a.b").status_code == 404
    assert peer("2001:db8:1:2:abcd::3").get("/reset/a.b").status_code == 429  # same /64
    assert peer("2001:db8:1:3::1").get("/reset/a.b").status_code == 404  # the next /64


def test_the_ipv6_prefix_is_configurable(sqlite_url: str, peers_of: Callable[[App], Peers]) -> None:
    peer = peers_of(limited_app(sqlite_url, ipv6_prefix="128"))
    codes = [peer(f"2001:db8:1:2::{n}").get("/reset/a.b").status_code for n in range(1, 4)]
    assert codes == [404, 404, 404]


def test_an_ipv4_mapped_peer_is_its_ipv4_address(
    sqlite_url: str, peers_of: Callable[[App], Peers]
) -> None:
    peer = peers_of(limited_app(sqlite_url))
    peer("198.51.100.7").get("/reset/a.b")
    peer("::ffff:198.51.100.7").get("/reset/a.b")
    assert peer("198.51.100.7").get("/reset/a.b").status_code == 429


def test_forwarded_for_is_read_right_to_left_past_trusted_hops(
    sqlite_url: str, peers_of: Callable[[App], Peers]
) -> None:
    peer = peers_of(limited_app(sqlite_url, trusted_proxies='["10.0.0.0/24"]'))
    proxy = peer("10.0.0.1")

    def through(chain: str) -> int:
        return int(proxy.get("/reset/a.b", headers={"x-forwarded-for": chain}).status_code)

    # the client's own left-hand entries change nothing: 198.51.100.9 is who the first
    # trusted proxy (10.0.0.2) saw
    assert through("6.6.6.6, 198.51.100.9, 10.0.0.2") == 404
    assert through("7.7.7.7, 198.51.100.9, 10.0.0.2") == 404
    assert through("8.8.8.8, 198.51.100.9, 10.0.0.2") == 429
    assert through("198.51.100.10, 10.0.0.2") == 404
    # IPv6 clients named by the proxy are keyed on their /64 too
    assert through("2001:db8:5:6::1") == 404 and through("2001:db8:5:6::2") == 404
    assert through("2001:db8:5:6::3") == 429


def warnings_in(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "web.forwarded_headers_ignored"]


def test_forwarding_headers_from_an_untrusted_peer_warn_once(
    sqlite_url: str, peers_of: Callable[[App], Peers]
) -> None:
    peer = peers_of(limited_app(sqlite_url))
    nginx = peer("127.0.0.1")  # the documented nginx, not in web.trusted_proxies
    with structlog.testing.capture_logs() as logs:
        for n in range(3):
            nginx.get("/reset/a.b", headers={"x-forwarded-for": f"192.0.2.{n}"})
        nginx.get("/reset/a.b", headers={"x-forwarded-proto": "https"})
    (warning,) = warnings_in(logs)
    assert warning["log_level"] == "warning" and warning["peer"] == "127.0.0.1"
    assert "web.trusted_proxies" in str(warning["fix"])
    # every family behind it shares the proxy's address: that is what the warning is for
    assert nginx.get("/reset/a.b", headers={"x-forwarded-for": "192.0.2.99"}).status_code == 429


def test_the_warning_does_not_name_a_public_peer_and_trusted_ones_do_not_warn(
    sqlite_url: str, peers_of: Callable[[App], Peers]
) -> None:
    peer = peers_of(limited_app(sqlite_url, trusted_proxies='["10.0.0.1"]'))
    with structlog.testing.capture_logs() as logs:
        peer("10.0.0.1").get("/reset/a.b", headers={"x-forwarded-for": "192.0.2.1"})
        peer("10.0.0.1").get("/reset/a.b")
    assert warnings_in(logs) == []
    with structlog.testing.capture_logs() as logs:
        peer("93.184.216.34").get("/reset/a.b", headers={"forwarded": "for=192.0.2.1"})
    (warning,) = warnings_in(logs)
    assert warning["peer"] is None and "93.184.216.34" not in repr(logs)


def failed_sign_ins(client: TestClient, count: int) -> None:
    csrf = csrf_of(client.get(f"{ROOT}/accesso").text)
    for n in range(count):
        wrong = {"csrf_token": csrf, "nome": f"nessuno{n}", "password": "sbagliata-123456"}
        assert client.post(f"{ROOT}/accesso", data=wrong).status_code == 401


def sign_in_status(client: TestClient, name: str) -> int:
    csrf = csrf_of(client.get(f"{ROOT}/accesso").text)
    form = {"csrf_token": csrf, "nome": name, "password": PASSWORD}
    return int(client.post(f"{ROOT}/accesso", data=form).status_code)


def test_the_console_lockout_holds_an_ipv6_client_on_its_64(
    console_app: App, peers_of: Callable[[App], Peers]
) -> None:
    peer = peers_of(console_app)
    failed_sign_ins(peer("2001:db8:7:8::a"), 5)  # five names, five failures from one /64
    assert sign_in_status(peer("2001:db8:7:8::b"), "anna") == 429  # another address in it
    assert sign_in_status(peer("2001:db8:7:9::b"), "anna") == 303  # another /64


def test_a_csrf_cookie_planted_by_a_sibling_subdomain_is_not_believed(
    console_app: App, peers_of: Callable[[App], Peers]
) -> None:
    """Login CSRF by cookie tossing: www.istitutostanga.edu.it sets `credmail_csrf` for the
    whole domain with a nonce the attacker chose, gets the sign-in form for it, and makes
    the victim's browser post it with the attacker's name and password. The cookie that
    counts is `__Host-credmail_csrf`, which browsers never accept from another host."""
    peer = peers_of(console_app)
    planted = "tossed-nonce-" + "x" * 30
    attacker = peer("198.51.100.66")
    attacker.cookies.set("credmail_csrf", planted)
    form = attacker.get(f"{ROOT}/accesso")
    assert form.headers["set-cookie"].startswith("__Host-credmail_csrf=")
    victim = peer("203.0.113.10")
    victim.cookies.set("credmail_csrf", planted)
    data = {"csrf_token": csrf_of(form.text), "nome": "olga", "password": PASSWORD}
    answer = victim.post(f"{ROOT}/accesso", data=data)
    assert answer.status_code == 403 and "credmail_console" not in answer.headers.get(
        "set-cookie", ""
    )
