"""`credmail web`: serve the reset page with uvicorn.

uvicorn's access log is off (it prints the request path, and the path holds the token);
credmail's own AccessLog middleware logs each request with the path redacted. No
`Server` header, no proxy-header handling in uvicorn: `web.trusted_proxies` decides.
"""

from __future__ import annotations

import structlog
import uvicorn

from credmail.bootstrap import App
from credmail.config import Settings

log = structlog.get_logger("credmail.web")


def serve(app: App, settings: Settings, host: str, port: int) -> None:
    from credmail.web.app import create_web_app

    asgi = create_web_app(app, settings)
    log.info("web.start", listen=f"{host}:{port}", backend=settings.links.backend)
    uvicorn.run(
        asgi,
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
