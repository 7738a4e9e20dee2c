"""`create_web_app`: the ASGI application `credmail web` serves.

Routes live under the path of the public URL (`web.public_url`, else `links.base_url`),
so `https://scuola.example/credenziali/reset/<token>` is served at
`/credenziali/reset/<token>` (the reverse proxy passes the path through unchanged).
Other pages (the console) add their routes to `routes(...)` and share `WebContext`
(credmail.web.context).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from credmail.bootstrap import App, template_values, templates_desk
from credmail.config import Settings
from credmail.web.context import WebContext as WebContext
from credmail.web.pages import STATIC, Pages
from credmail.web.ratelimit import SlidingWindow
from credmail.web.security import AccessLog, Csrf, Errors, ProxyHeaders, SecurityHeaders

log = structlog.get_logger("credmail.web")

LOGO_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


def make_pages(settings: Settings, timezone: ZoneInfo) -> Pages:
    """The page templates, with the translation sets the replies use (issue 19)."""
    prefix = urlsplit(settings.public_url).path.rstrip("/")
    web = settings.web
    logo = f"{prefix}/logo{web.logo_file.suffix.lower()}" if web.logo_file else None
    return Pages(
        {
            **template_values(settings),
            "logo_url": logo,
            "static_url": f"{prefix}/static",
        },
        timezone,
        settings.replies.templates_dir,
        templates_desk(settings).languages(),
    )


def make_context(app: App, settings: Settings) -> WebContext:
    prefix = urlsplit(settings.public_url).path.rstrip("/")
    web = settings.web
    pages = make_pages(settings, app.timezone)
    if web.secret_key is None:
        log.info("web.csrf_key", source="this process (set web.secret_key_file)")
    key = web.secret_key.encode() if web.secret_key else None
    counter = app.web_limits()
    return WebContext(
        app=app,
        settings=settings,
        prefix=prefix,
        pages=pages,
        csrf=Csrf(key, cookie_path=prefix or "/"),
        post_limit=SlidingWindow(counter, "post", web.post_per_minute, 60),
        invalid_limit=SlidingWindow(counter, "invalid", web.invalid_per_hour, 3600),
    )


def unavailable(ctx: WebContext, scope: Scope) -> Response:
    """The last-resort page (503), in the language the visitor picked (`?lang=`)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    lang = (query.get("lang") or [""])[0][:8] or None
    return ctx.pages.render("unavailable.html", 503, lang=lang)


def create_web_app(app: App, settings: Settings) -> Starlette:
    from credmail.web import reset
    from credmail.web.console.routes import routes as console_routes
    from credmail.web.observe import health_endpoint, metrics_endpoint

    ctx = make_context(app, settings)
    routes: list[BaseRoute] = [
        *reset.routes(ctx),
        *console_routes(ctx),
        Route(ctx.url("/livez"), lambda _: PlainTextResponse("ok"), methods=["GET"]),
        Route(ctx.url("/healthz"), health_endpoint(app.desks.observe), methods=["GET"]),
        Route(ctx.url("/metrics"), metrics_endpoint(app.desks.observe), methods=["GET"]),
        Mount(ctx.url("/static"), app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    logo = settings.web.logo_file
    if logo is not None:
        kind = LOGO_TYPES.get(logo.suffix.lower(), "application/octet-stream")
        routes.append(
            Route(
                ctx.url(f"/logo{logo.suffix.lower()}"),
                lambda _: FileResponse(logo, media_type=kind),
                methods=["GET"],
            )
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return ctx.pages.render("error.html", 405, title="Operazione non consentita")
        lang = request.query_params.get("lang")
        return ctx.pages.render(
            "error.html", 404, title="Pagina non trovata", lang=lang[:8] if lang else None
        )

    web = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog),
            Middleware(
                ProxyHeaders,
                trusted=settings.web.trusted_proxies,
                ipv6_prefix=settings.web.ipv6_prefix,
            ),
            Middleware(SecurityHeaders),
            Middleware(Errors, page=lambda scope: unavailable(ctx, scope)),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    web.state.context = ctx
    return web
