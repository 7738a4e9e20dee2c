"""`credmail web`: serve the reset page with uvicorn.

uvicorn's access log is off (it prints the request path, and the path holds the token);
credmail's own AccessLog middleware logs each request with the path redacted. No
`Server` header, no proxy-header handling in uvicorn: `web.trusted_proxies` decides.
credmail binds the listening socket itself, so an address in use is one line naming
`web.listen`, not uvicorn's log line.
"""

from __future__ import annotations

import contextlib
import socket

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from credmail.bootstrap import App
from credmail.config import Settings

log = structlog.get_logger("credmail.web")


class CannotListen(Exception):
    """The listening address is taken, not this machine's, or not allowed."""


def serve(app: App, settings: Settings, host: str, port: int) -> None:
    with listen(host, port) as listener:
        server = uvicorn.Server(_config(app, settings, host, port))
        log.info("web.start", listen=f"{host}:{port}", backend=settings.links.backend)
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
            server.run(sockets=[listener])
    if not server.started:  # the application's startup failed (uvicorn logged why)
        raise SystemExit(STARTUP_FAILURE)


def _config(app: App, settings: Settings, host: str, port: int) -> uvicorn.Config:
    from credmail.web.app import create_web_app

    return uvicorn.Config(
        create_web_app(app, settings),
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


def listen(host: str, port: int) -> socket.socket:
    """The socket uvicorn serves on, bound as uvicorn would bind it (SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotListen(exc.strerror or str(exc)) from None
    return sock
