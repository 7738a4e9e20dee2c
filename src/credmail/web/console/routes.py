"""The console's routes, and its pages other than Da rivedere (review_pages) and Da fare
nel registro (task_pages): sign-in, Cruscotto, Rubrica, Posta in uscita, Registro
attività, Personale. Every handler calls a desk; every POST answers with a redirect (303)
to the page it came from, or a page saying what went wrong.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from credmail.service.desks.staff import SignInRefused, StaffSession
from credmail.service.ports import UNSENT, AuditFilter
from credmail.service.presentation import ACTION_LABELS, OUTBOX_STATUS_LABELS
from credmail.service.review import STAFF_ROLES
from credmail.web.console.base import (
    SESSION_COOKIE,
    STATIC,
    Console,
    Pages,
    done_message,
    page_number,
    password_field,
    path_id,
    query,
    text_field,
)
from credmail.web.console.campaign_pages import CampaignPages
from credmail.web.console.imports import ImportPages
from credmail.web.console.near_miss_pages import NearMissPages
from credmail.web.console.review_pages import PAGE_SIZE, ReviewPages
from credmail.web.console.stats_pages import StatsPages
from credmail.web.console.task_pages import TaskPages
from credmail.web.context import WebContext
from credmail.web.security import CSRF_FIELD, client_address


def routes(ctx: WebContext) -> list[BaseRoute]:
    c = Console(ctx)
    pages, review, tasks = ConsolePages(c), ReviewPages(c), TaskPages(c)
    imports, stats, mailing = ImportPages(c), StatsPages(c), CampaignPages(c)
    near = NearMissPages(c)
    p = c.page
    return [
        Route(c.url("/accesso"), pages.sign_in, methods=["GET", "POST"]),
        Route(c.url("/esci"), p(pages.sign_out), methods=["POST"]),
        Route(c.url("/"), p(pages.dashboard), methods=["GET"]),
        Route(c.root, lambda _: RedirectResponse(c.url("/"), 308), methods=["GET"]),
        Route(c.url("/limiti/azzera"), p(pages.reset_breaker, "limits.reset"), methods=["POST"]),
        Route(c.url("/revisione"), p(review.queue), methods=["GET"]),
        Route(c.url("/revisione/{id:int}"), p(review.item), methods=["GET"]),
        Route(c.url("/revisione/{id:int}/eccezione"), p(review.override), methods=["GET"]),
        Route(c.url("/revisione/{id:int}/approva"), p(review.approve), methods=["POST"]),
        Route(c.url("/revisione/{id:int}/respingi"), p(review.reject), methods=["POST"]),
        Route(c.url("/revisione/{id:int}/archivia"), p(review.discard), methods=["POST"]),
        Route(c.url("/revisione/{id:int}/rinvia"), p(review.defer), methods=["POST"]),
        Route(c.url("/revisione/{id:int}/ricorda"), p(review.remember), methods=["GET"]),
        Route(c.url("/registro"), p(tasks.tasks), methods=["GET"]),
        Route(c.url("/registro/{id:int}/fatto"), p(tasks.task_done), methods=["POST"]),
        Route(c.url("/registro/eseguite"), p(tasks.tasks_done, max_fields=1024), methods=["POST"]),
        Route(c.url("/registro.csv"), p(tasks.tasks_csv), methods=["GET"]),
        Route(c.url("/forse-credenziali"), p(near.listing), methods=["GET"]),
        Route(c.url("/forse-credenziali/tratta"), p(near.treat), methods=["POST"]),
        Route(c.url("/forse-credenziali/archivia"), p(near.dismiss), methods=["POST"]),
        Route(c.url("/rubrica"), p(pages.directory), methods=["GET"]),
        Route(
            c.url("/rubrica/importa"), p(imports.form, "directory.import"), methods=["GET", "POST"]
        ),
        Route(
            c.url("/rubrica/importa/conferma"),
            p(imports.confirm, "directory.import"),
            methods=["POST"],
        ),
        Route(c.url("/rubrica/persona/{username}"), p(pages.person), methods=["GET"]),
        Route(c.url("/rubrica/persona/{username}/lingua"), p(pages.language), methods=["POST"]),
        Route(
            c.url("/rubrica/persona/{username}/indirizzi/{id:int}/rimuovi"),
            p(pages.unremember),
            methods=["POST"],
        ),
        Route(c.url("/posta"), p(pages.outbox), methods=["GET"]),
        Route(c.url("/posta/riprova"), p(pages.retry), methods=["POST"]),
        Route(c.url("/attivita"), p(pages.audit), methods=["GET"]),
        Route(c.url("/attivita.csv"), p(pages.audit_csv), methods=["GET"]),
        Route(c.url("/personale"), p(pages.staff, "staff.manage"), methods=["GET"]),
        Route(c.url("/personale/aggiungi"), p(pages.staff_add, "staff.manage"), methods=["POST"]),
        Route(
            c.url("/personale/disattiva"), p(pages.staff_disable, "staff.manage"), methods=["POST"]
        ),
        *_campaign_routes(c, mailing),
        Route(c.url("/statistiche"), p(stats.page, "stats.view"), methods=["GET"]),
        Route(c.url("/statistiche/{slug}.csv"), p(stats.csv, "stats.view"), methods=["GET"]),
        Mount(c.url("/static"), app=StaticFiles(directory=str(STATIC)), name="console-static"),
    ]


def _campaign_routes(c: Console, pages: CampaignPages) -> list[BaseRoute]:
    p, may = c.page, "campaign.manage"
    one = "/invio/{name}"
    return [
        Route(c.url("/invio"), p(pages.overview, may), methods=["GET"]),
        Route(c.url("/invio/avvia"), p(pages.start, may), methods=["POST"]),
        Route(c.url(one), p(pages.campaign, may), methods=["GET"]),
        Route(c.url(f"{one}/sospendi"), p(pages.pause, may), methods=["POST"]),
        Route(c.url(f"{one}/riprendi"), p(pages.resume, may), methods=["POST"]),
        Route(c.url(f"{one}/estendi"), p(pages.extend, may), methods=["POST"]),
        Route(c.url(f"{one}/annulla"), p(pages.cancel, may), methods=["POST"]),
    ]


class ConsolePages(Pages):
    # signing in and out ------------------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        c = self.c
        csrf = c.ctx.csrf
        if request.method == "GET":
            return self._sign_in_page(request, None, 200)
        form = await request.form(max_fields=10, max_files=0)
        submitted = form.get(CSRF_FIELD)
        if not csrf.valid(request, submitted if isinstance(submitted, str) else None, "console"):
            return c.refuse(None, 403, "Richiesta non valida (modulo scaduto)")
        name, password = text_field(form, "nome", 100), password_field(form)
        code = text_field(form, "codice", 10)
        try:
            signed = await run_in_threadpool(
                self.desks.staff.sign_in, name, password, code, client_address(request)
            )
        except SignInRefused as exc:
            return self._sign_in_page(request, str(exc), 429 if exc.wait_seconds else 401)
        response = RedirectResponse(c.url("/"), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            signed.token,
            path=c.root,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _sign_in_page(self, request: Request, problem: str | None, status: int) -> Response:
        token = self.c.ctx.csrf.issue(request, "console")
        response = self.c.render(
            "console_sign_in.html",
            None,
            status,
            title="Accesso",
            problem=problem,
            csrf_token=token.value,
        )
        self.c.ctx.csrf.attach(response, token, request)
        return response

    async def sign_out(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        await run_in_threadpool(self.desks.staff.sign_out, request.cookies.get(SESSION_COOKIE, ""))
        response = self.c.to_sign_in()
        response.delete_cookie(SESSION_COOKIE, path=self.c.root)
        return response

    # Cruscotto -----------------------------------------------------------------------

    async def dashboard(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        report = await run_in_threadpool(self.desks.status.report)
        tasks = await run_in_threadpool(self.desks.tasks.listing)
        near_misses = await run_in_threadpool(self.desks.near_miss.count_open)
        details = report.details
        return self.c.render(
            "console_dashboard.html",
            staff,
            title="Cruscotto",
            done=done_message(request),
            report=details,
            healthy=report.healthy,
            open_tasks=len(tasks),
            near_misses=near_misses,
            failing=report.failing_since_sent,
            last_sync=_parse(details.get("last_sync")),
        )

    async def reset_breaker(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        await run_in_threadpool(self.desks.limits.reset, staff.actor())
        return self.c.done("/", "azzerato")

    # Rubrica -------------------------------------------------------------------------

    async def directory(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        text = query(request, "q", 100)
        found = await run_in_threadpool(self.desks.directory.find, text, PAGE_SIZE)
        return self.c.render(
            "console_directory.html",
            staff,
            title="Rubrica",
            done=done_message(request),
            q=text,
            people=found,
            limit=PAGE_SIZE,
        )

    async def person(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        username = str(request.path_params["username"])[:100]
        view = await run_in_threadpool(self.desks.directory.person, username)
        related = [
            await run_in_threadpool(self.desks.directory.person, other)
            for other in (*view.students, *view.guardians)
        ]
        remembered = await run_in_threadpool(self.desks.remembered.listing, username)
        return self.c.render(
            "console_person.html",
            staff,
            title=f"{view.first_name} {view.last_name}",
            done=done_message(request),
            person=view,
            related={p.username: p for p in related},
            remembered=remembered,
        )

    async def unremember(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        username = str(request.path_params["username"])[:100]
        entry = path_id(request)
        await run_in_threadpool(self.desks.remembered.remove, username, entry, staff.actor())
        return self.c.done(f"/rubrica/persona/{username}", "indirizzo_rimosso")

    async def language(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        username = str(request.path_params["username"])[:100]
        language = text_field(form, "lingua", 8)
        await run_in_threadpool(
            self.desks.directory.set_language, username, language, staff.actor()
        )
        return self.c.done(f"/rubrica/persona/{username}", "lingua")

    # Posta in uscita -----------------------------------------------------------------

    async def outbox(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        state = query(request, "stato")
        listing = await run_in_threadpool(
            self.desks.outbox.listing, state if state in OUTBOX_STATUS_LABELS else UNSENT
        )
        report = await run_in_threadpool(self.desks.status.report)
        return self.c.render(
            "console_outbox.html",
            staff,
            title="Posta in uscita",
            done=done_message(request),
            lines=listing[:200],
            total=len(listing),
            state=state,
            states=OUTBOX_STATUS_LABELS,
            paused=report.details.get("delivery_paused"),
            paused_until=self.desks.outbox.paused_until(),
        )

    async def retry(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        raw = text_field(form, "messaggio", 12)
        entry = int(raw) if raw.isdigit() else None
        await run_in_threadpool(self.desks.outbox.retry, entry, staff.actor())
        return self.c.done("/posta", "riprova")

    # Registro attività ---------------------------------------------------------------

    def _audit_filter(self, request: Request) -> AuditFilter:
        tz = self.c.ctx.app.timezone

        def day(name: str, plus: int = 0) -> datetime | None:
            raw = query(request, name, 10)
            try:
                start = datetime.combine(datetime.strptime(raw, "%Y-%m-%d").date(), time(), tz)
            except ValueError:
                return None
            return start + timedelta(days=plus)

        action = query(request, "azione", 50)
        return AuditFilter(
            actor=query(request, "chi", 200) or None,
            action=action if action in ACTION_LABELS else None,
            item=query(request, "oggetto", 200) or None,
            since=day("dal"),
            until=day("al", plus=1),
        )

    async def audit(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        where = self._audit_filter(request)
        number = page_number(request)
        entries, total = await run_in_threadpool(
            self.desks.audit.listing, where, PAGE_SIZE, (number - 1) * PAGE_SIZE
        )
        params = {k: query(request, k) for k in ("chi", "azione", "oggetto", "dal", "al")}
        return self.c.render(
            "console_audit.html",
            staff,
            title="Registro attività",
            entries=entries,
            total=total,
            page=number,
            pages=max(1, -(-total // PAGE_SIZE)),
            actions=sorted(ACTION_LABELS.items(), key=lambda kv: kv[1]),
            params=params,
            query_string=str(request.url.query),
        )

    async def audit_csv(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        where = self._audit_filter(request)
        chunks = iterate_in_threadpool(self.desks.audit.export_csv(where))
        return StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="registro-attivita.csv"'},
        )

    # Personale -----------------------------------------------------------------------

    async def staff(self, request: Request, staff: StaffSession, form: FormData | None) -> Response:
        accounts = await run_in_threadpool(self.desks.staff.listing)
        return self.c.render(
            "console_staff.html",
            staff,
            title="Personale",
            done=done_message(request),
            accounts=accounts,
            roles=STAFF_ROLES,
        )

    async def staff_add(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        name, role = text_field(form, "nome", 100), text_field(form, "ruolo", 20)
        password = password_field(form)
        await run_in_threadpool(self.desks.staff.add, name, role, password, staff.actor())
        return self.c.done("/personale", "aggiunto")

    async def staff_disable(
        self, request: Request, staff: StaffSession, form: FormData | None
    ) -> Response:
        name = text_field(form, "nome", 100)
        await run_in_threadpool(self.desks.staff.disable, name, staff.actor())
        return self.c.done("/personale", "disattivato")


def _parse(iso: object) -> datetime | None:
    return datetime.fromisoformat(iso) if isinstance(iso, str) else None
