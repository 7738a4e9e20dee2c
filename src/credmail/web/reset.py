"""The reset page: `GET /reset/{token}` shows what the link is for (never spends),
`POST /reset/{token}` (with the CSRF token, from the page's own button) spends it.

Every invalid link (unknown, expired, spent, stale, revoked) answers the same status
and takes at least `web.invalid_min_seconds`, with a page saying what to do next. Over
the per-address limits (POSTs per minute, invalid links per hour) the answer is 429.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from credmail.service.desks.reset import ResetView, SpendStatus, SpendView
from credmail.service.password_policy import BOTH_FIELDS, MISMATCH, TOO_LONG, Problem
from credmail.web.context import WebContext
from credmail.web.security import CSRF_FIELD, client_address

log = structlog.get_logger("credmail.web")

INVALID_STATUS = 404
pause = anyio.sleep  # how an invalid answer waits out web.invalid_min_seconds
MAX_TOKEN = 200  # longer than any real token: answered as unknown without a lookup
PASSWORD_FIELDS = ("password", "password_again")
MAX_PASSWORD = 256


def routes(ctx: WebContext) -> list[BaseRoute]:
    page = ResetPage(ctx)
    return [Route(ctx.url("/reset/{token}"), page.handle, methods=["GET", "POST"])]


class ResetPage:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.desk = ctx.app.desks.reset

    async def handle(self, request: Request) -> Response:
        started = time.monotonic()
        client = client_address(request)
        # The limits are counted in the database: never on the event loop (a SQLite
        # writer waiting for the lock would stall every request of the process).
        if await run_in_threadpool(self.ctx.invalid_limit.exceeded, client):
            return self._too_many(request)
        if request.method == "POST":
            if not await run_in_threadpool(self.ctx.post_limit.hit, client):
                return self._too_many(request)
            return await self._post(request, client, started)
        return await self._get(request, client, started)

    def _token(self, request: Request) -> str:
        token = str(request.path_params["token"])
        return token if len(token) <= MAX_TOKEN else ""

    async def _get(self, request: Request, client: str, started: float) -> Response:
        view = await run_in_threadpool(self.desk.look, self._token(request))
        if not view.valid:
            return await self._invalid(request, view, client, started)
        return self._confirm(request, view)

    async def _post(self, request: Request, client: str, started: float) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        submitted = form.get(CSRF_FIELD)
        csrf = submitted if isinstance(submitted, str) else None
        if not self.ctx.csrf.valid(request, csrf, request.url.path):
            log.info("web.reset.csrf_refused")
            return self.ctx.pages.render(
                "error.html", 403, title="Richiesta non valida", reload=True, **_lang(request)
            )
        token = self._token(request)
        password: str | None = None
        if self.desk.needs_password:
            first, again = (form.get(name) for name in PASSWORD_FIELDS)
            problem = _password_form_problem(first, again)
            if problem is not None:
                view = await run_in_threadpool(self.desk.look, token)
                return await self._maybe_invalid(request, view, client, started, (problem,))
            password = str(first)
        result = await run_in_threadpool(self.desk.spend, token, password, client)
        return await self._outcome(request, result, client, started)

    async def _maybe_invalid(
        self,
        request: Request,
        view: ResetView,
        client: str,
        started: float,
        problems: tuple[str, ...],
    ) -> Response:
        if not view.valid:
            return await self._invalid(request, view, client, started)
        return self._confirm(request, view, problems)

    async def _outcome(
        self, request: Request, result: SpendView, client: str, started: float
    ) -> Response:
        log.info("web.reset.spend", status=result.status.value, backend=result.view.backend.value)
        if result.status is SpendStatus.INVALID:
            return await self._invalid(request, result.view, client, started)
        if result.status is SpendStatus.REJECTED:
            return self._confirm(request, result.view, result.problems)
        lang = _lang(request, result.view)
        if result.status is SpendStatus.RETRY_LATER:
            return self.ctx.pages.render("reset_retry.html", 503, view=result.view, **lang)
        return self.ctx.pages.render("reset_done.html", 200, view=result.view, **lang)

    def _confirm(
        self, request: Request, view: ResetView, problems: tuple[str, ...] = ()
    ) -> Response:
        token = self.ctx.csrf.issue(request, request.url.path)
        response = self.ctx.pages.render(
            "reset_confirm.html",
            200,
            view=view,
            problems=problems,
            csrf_token=token.value,
            **_lang(request, view),
        )
        self.ctx.csrf.attach(response, token, request)
        return response

    async def _invalid(
        self, request: Request, view: ResetView, client: str, started: float
    ) -> Response:
        """Same status for every invalid state, and no faster than the floor."""
        await run_in_threadpool(self.ctx.invalid_limit.hit, client)
        log.info("web.reset.invalid", state=view.state.value)
        response = self.ctx.pages.render(
            "reset_invalid.html", INVALID_STATUS, view=view, **_lang(request)
        )
        rest = self.ctx.settings.web.invalid_min_seconds - (time.monotonic() - started)
        if rest > 0:
            await pause(rest)
        return response

    def _too_many(self, request: Request) -> Response:
        log.info("web.reset.rate_limited")
        response = self.ctx.pages.render("rate_limited.html", 429, **_lang(request))
        response.headers["retry-after"] = "60"
        return response


def _lang(request: Request, view: ResetView | None = None) -> dict[str, Any]:
    """The page's second language: `?lang=` (kept by the form), else the recipient's. An
    invalid link names nobody, so only an explicit choice translates its page."""
    requested = request.query_params.get("lang")
    preferred = view.languages if view is not None and view.valid else ()
    return {"lang": requested[:8] if requested else None, "preferred": preferred}


def _password_form_problem(first: object, again: object) -> str | None:
    """What is wrong with the two password fields before any policy is asked."""
    if not isinstance(first, str) or not isinstance(again, str) or not first:
        return Problem(BOTH_FIELDS, "both_fields")
    if first != again:
        return Problem(MISMATCH, "mismatch")
    if len(first) > MAX_PASSWORD:
        return Problem(TOO_LONG, "too_long", MAX_PASSWORD)
    return None
