"""What every console page shares: the signed-in staff member (server-side session in an
HttpOnly, SameSite=Strict cookie), the CSRF check of every POST, role checks, rendering."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from credmail.service import presentation as words
from credmail.service.desks import DeskError
from credmail.service.desks.staff import StaffSession
from credmail.service.review import NotPermitted, ReviewError
from credmail.web.context import WebContext
from credmail.web.pages import TEMPLATES as SHARED_TEMPLATES
from credmail.web.security import CSRF_FIELD

log = structlog.get_logger("credmail.web.console")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "credmail_console"
MAX_FORM_FIELDS = 20
MAX_PART = 8 * 1024 * 1024  # the import's confirm step carries the file (base64)

Handler = Callable[[Request, StaffSession, FormData | None], Awaitable[Response]]


@dataclass(frozen=True)
class Nav:
    path: str
    label: str
    admin_only: bool = False


NAV = (
    Nav("/", "Cruscotto"),
    Nav("/revisione", "Da rivedere"),
    Nav("/registro", "Da fare nel registro"),
    Nav("/forse-credenziali", "Forse richieste di credenziali"),
    Nav("/rubrica", "Rubrica"),
    Nav("/posta", "Posta in uscita"),
    Nav("/attivita", "Registro attività"),
    Nav("/personale", "Personale", admin_only=True),
    Nav("/invio", "Invio di settembre", admin_only=True),
    Nav("/statistiche", "Statistiche", admin_only=True),
)


LABELS = (
    "reason_label",
    "kind_label",
    "link_label",
    "role_label",
    "decision_label",
    "header_label",
    "action_label",
    "template_label",
    "outbox_status_label",
    "task_status_label",
    "source_label",
    "sign_in_label",
    "campaign_status_label",
    "language_label",
    "decider_label",
    "detail_label",
    "plural",
)
"""The presentation module's words every console template may use."""


class Console:
    """Routing helpers for the console; `root` is the console's URL prefix."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.desks = ctx.app.desks
        self.root = ctx.url("/console")
        loaders: list[jinja2.BaseLoader] = []
        override = ctx.settings.replies.templates_dir
        if override is not None:
            loaders.append(jinja2.FileSystemLoader(str(override)))
        loaders += [
            jinja2.FileSystemLoader(str(TEMPLATES)),
            jinja2.FileSystemLoader(str(SHARED_TEMPLATES)),
        ]
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            school_name=ctx.settings.replies.school_name,
            static_url=ctx.url("/static"),
            console_static=f"{self.root}/static",
            root=self.root,
            nav=NAV,
            csrf_field=CSRF_FIELD,
            **{name: getattr(words, name) for name in LABELS},
        )
        zone = ctx.app.timezone
        self.env.filters.update(
            local_time=lambda moment: words.italian_time(moment, zone),
            local_date=lambda moment: words.italian_date(moment.astimezone(zone).date()),
            on_time=lambda moment, to="": words.italian_time_on(moment, zone, to),
            from_iso=words.from_iso,
            italian_date=words.italian_date,
            capital=words.capital,
            sentence=words.sentence,
            code=words.register_code,
        )
        self.env.globals["header_value"] = lambda name, value: words.header_value(name, value, zone)

    def url(self, path: str) -> str:
        return f"{self.root}{path}"

    def render(
        self, name: str, staff: StaffSession | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        body = self.env.get_template(name).render(staff=staff, **context)
        return HTMLResponse(body, status_code=status)

    def refuse(self, staff: StaffSession | None, status: int, message: str) -> HTMLResponse:
        return self.render("console_message.html", staff, status, title=message, message=None)

    def result(
        self, staff: StaffSession, status: int, title: str, message: str, back: str
    ) -> HTMLResponse:
        """A page saying what went wrong; `message` (a desk's, often lowercase) is shown as
        a sentence."""
        return self.render(
            "console_message.html",
            staff,
            status,
            title=title,
            message=words.sentence(message),
            back=back,
        )

    def done(self, path: str, code: str) -> RedirectResponse:
        """After a POST that worked: back to a page (303), which says what was done."""
        return RedirectResponse(self.url(path) + f"?fatto={code}", status_code=303)

    def to_sign_in(self) -> RedirectResponse:
        return RedirectResponse(self.url("/accesso"), status_code=303)

    def page(
        self, handler: Handler, permission: str | None = None, max_fields: int = MAX_FORM_FIELDS
    ) -> Callable[..., Any]:
        """A signed-in page: no session -> the sign-in page (nothing else runs); a POST
        without this session's CSRF token -> 403; a role without `permission` -> 403.
        `max_fields`: more for a form that ticks many rows (the bulk task form)."""

        async def endpoint(request: Request) -> Response:
            token = request.cookies.get(SESSION_COOKIE, "")
            staff = await run_in_threadpool(self.desks.staff.session, token) if token else None
            if staff is None:
                return self.to_sign_in()
            form: FormData | None = None
            if request.method == "POST":
                form = await request.form(max_fields=max_fields, max_part_size=MAX_PART)
                submitted = form.get(CSRF_FIELD)
                if not isinstance(submitted, str) or not hmac.compare_digest(
                    submitted.encode(), staff.csrf.encode()
                ):
                    log.info("web.console.csrf_refused")
                    await form.close()
                    return self.refuse(staff, 403, "Richiesta non valida (modulo scaduto)")
            if permission is not None and not staff.actor().may(permission):
                if form is not None:
                    await form.close()
                return self.refuse(staff, 403, "Operazione riservata agli amministratori")
            try:
                return await handler(request, staff, form)
            except NotPermitted:
                return self.refuse(staff, 403, "Operazione riservata agli amministratori")
            except (DeskError, ReviewError) as exc:
                back = request.url.path.rpartition("/")[0] or self.url("/")
                return self.result(staff, 409, "Operazione non eseguita", str(exc), back)
            finally:
                if form is not None:
                    await form.close()  # uploaded files are spooled to temporary files

        return endpoint


class Pages:
    """A group of console pages (one area of the console) and the desks they call."""

    def __init__(self, console: Console) -> None:
        self.c = console
        self.desks = console.desks


def path_id(request: Request) -> int:
    return int(request.path_params["id"])


def text_field(form: FormData | None, name: str, limit: int = 2000) -> str:
    value = form.get(name) if form is not None else None
    return value[:limit].strip() if isinstance(value, str) else ""


def password_field(form: FormData | None, name: str = "password", limit: int = 256) -> str:
    """A password exactly as typed: spaces around it are part of it."""
    value = form.get(name) if form is not None else None
    return value[:limit] if isinstance(value, str) else ""


def query(request: Request, name: str, limit: int = 200) -> str:
    return request.query_params.get(name, "")[:limit].strip()


def page_number(request: Request) -> int:
    raw = query(request, "pagina", 6)
    return max(1, int(raw)) if raw.isdigit() else 1


DONE_MESSAGES = {
    "approvata": "Richiesta approvata: il collegamento è in coda per l'invio.",
    "approvata_ricordata": (
        "Richiesta approvata: l'indirizzo del mittente è stato aggiunto alla rubrica e il "
        "collegamento è in coda per l'invio a quell'indirizzo."
    ),
    "respinta": "Richiesta respinta.",
    "respinta_avviso": "Richiesta respinta: il mittente riceverà un avviso.",
    "archiviata": "Richiesta archiviata senza risposta.",
    "rinviata": "Richiesta rinviata: torna nella coda alla data indicata.",
    "eseguita": "Attività segnata come eseguita: la persona riceverà un avviso per e-mail.",
    "eseguita_messaggio": (
        "Attività segnata come eseguita: la persona riceverà un avviso per e-mail con il "
        "messaggio scritto."
    ),
    "eseguita_senza_avviso": (
        "Attività segnata come eseguita (nessun indirizzo registrato: nessun avviso inviato)."
    ),
    "nm_inviata": (
        "Trattato come richiesta: la risposta è in coda per l'invio all'indirizzo in rubrica; "
        "il messaggio sarà spostato in Credenziali/Evase."
    ),
    "nm_revisione": (
        'Trattato come richiesta: nessun invio automatico, la richiesta è ora in "Da rivedere".'
    ),
    "nm_scartata": "Trattato come richiesta: posta automatica, scartata senza risposta.",
    "nm_trattata": "Trattato come richiesta.",
    "nm_archiviata": "Archiviato: il messaggio resta nella casella, senza contrassegno.",
    "lingua": "Lingua aggiornata.",
    "indirizzo_rimosso": (
        "Indirizzo rimosso: le prossime richieste da quell'indirizzo andranno in revisione."
    ),
    "importata": "Rubrica importata.",
    "riprova": "Nuovo tentativo di invio programmato.",
    "azzerato": "Limite globale azzerato.",
    "aggiunto": "Account creato.",
    "disattivato": "Account disattivato.",
    "avviato": (
        "Invio registrato: il servizio spedisce le e-mail a gruppi, al ritmo impostato, "
        "dall'ora indicata. Qui sotto l'avanzamento."
    ),
    "esistente": "Esiste già un invio con questo nome: non è stato aggiunto nulla.",
    "sospeso": (
        "Invio sospeso: le e-mail non ancora partite sono uscite dalla coda. «Riprendi» lo "
        "fa ripartire."
    ),
    "ripreso": "Invio ripreso: il servizio riprende a spedire al prossimo giro.",
    "annullato": (
        "Invio annullato: non partirà più nessuna e-mail; quelle già inviate restano valide."
    ),
    "esteso": (
        "Nuovi iscritti cercati in rubrica: chi non era nell'invio riceverà l'e-mail con il "
        "resto dell'invio."
    ),
}


def done_message(request: Request) -> str | None:
    return DONE_MESSAGES.get(query(request, "fatto", 30))
