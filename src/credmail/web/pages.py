"""Server-rendered pages from Jinja2 templates the school can override
(`replies.templates_dir` first, then the templates shipped in credmail/web/templates, then
the replies' partials such as `next_steps.j2`, so a page and a mail say the same thing).

Italian first, then the family's language (issue 19): a page `name` may have a translated
section in `i18n/<code>/<name>` (same override rule). It renders the translated text and
may set strings for the shared controls (`{% set button = "..." %}`), shown beside the
Italian labels. The language is the `lang` query parameter when it names a translation
set ("it" = Italian only), else the first of the recipient's languages; a switch on the
page (plain links, no script) lists Italian and every language that has this page. A
missing or failing translation leaves the page in Italian only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import structlog
from markupsafe import Markup
from starlette.responses import HTMLResponse

from credmail.service.partial_check import foreign_imports
from credmail.service.password_policy import COMMON, PROBLEM_CODES, TOO_SHORT, Problem
from credmail.service.reply_templates import SCHOOL_TEXTS, Language
from credmail.service.template_samples import MADE_UP, leaks

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
ITALIAN = "it"

log = structlog.get_logger("credmail.web")


@dataclass(frozen=True)
class Translation:
    """The translated section of one page."""

    code: str
    name: str
    direction: str  # "ltr" or "rtl"
    html: Markup
    strings: Mapping[str, str]

    def also(self, key: str, **values: object) -> Markup:
        """A control's label in this language, to show beside the Italian one; `values`
        fill its `{name}` fields (a password problem's minimum length)."""
        text = self.strings.get(key)
        if not text:
            return Markup("")
        if values:
            text = text.format_map(_Missing(values))
        return Markup('<span class="also" lang="{}" dir="{}">{}</span>').format(
            self.code, self.direction, text
        )

    def also_problem(self, problem: object) -> Markup:
        """A password problem in this language (`problem_<code>` strings), if it has one."""
        code = getattr(problem, "code", None)
        if not code:
            return Markup("")
        return self.also(f"problem_{code}", n=getattr(problem, "n", ""))


class _Missing(dict[str, object]):
    """`str.format_map` values that leave an unknown field as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Choice:
    code: str
    name: str
    current: bool


def _nothing(*_args: object, **_values: object) -> Markup:
    return Markup("")


class Pages:
    def __init__(
        self,
        globals_: dict[str, Any],
        timezone: ZoneInfo,
        override_dir: Path | None = None,
        languages: Mapping[str, Language] | None = None,
    ) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
        # The replies' partials (next_steps.j2, names.j2): the page says what the mail said.
        loaders.append(jinja2.PackageLoader("credmail", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(globals_)
        self.timezone = timezone
        self.env.filters["local_time"] = self.local_time
        self.env.filters["plain_time"] = self.plain_time
        self.languages = dict(languages or {})

    def local_time(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        return moment.astimezone(self.timezone).strftime("%d/%m/%Y alle %H:%M")

    def plain_time(self, moment: datetime | None) -> str:
        """The same moment without the Italian "alle", for the translated sections."""
        if moment is None:
            return ""
        return moment.astimezone(self.timezone).strftime("%d/%m/%Y %H:%M")

    def render(
        self,
        name: str,
        status: int = 200,
        *,
        lang: str | None = None,
        preferred: Sequence[str] = (),
        **context: Any,
    ) -> HTMLResponse:
        code = self.choose(lang, preferred)
        translation = self.translation(name, code, context) if code else None
        values = {
            **context,
            "translation": translation,
            "also": translation.also if translation else _nothing,
            "also_problem": translation.also_problem if translation else _nothing,
            "languages": self.switch(name, translation.code if translation else None),
            "lang_query": f"?lang={translation.code}" if translation else "",
        }
        body = self.env.get_template(name).render(**values)
        return HTMLResponse(body, status_code=status)

    def choose(self, requested: str | None, preferred: Sequence[str]) -> str | None:
        """The page's second language: an explicit choice, else the recipient's."""
        if requested == ITALIAN:
            return None
        if requested in self.languages:
            return requested
        return next((code for code in preferred if code in self.languages), None)

    def has(self, name: str, code: str) -> bool:
        try:
            self.env.get_template(f"i18n/{code}/{name}")
        except jinja2.TemplateError:
            return False
        return True

    def switch(self, name: str, current: str | None) -> list[Choice]:
        """Italian and every language with a translation of this page."""
        found = [Choice(ITALIAN, "Italiano", current is None)]
        for code, language in sorted(self.languages.items()):
            if self.has(name, code):
                found.append(Choice(code, language.heading, code == current))
        return found if len(found) > 1 else []

    def section(self, name: str, code: str, context: Mapping[str, Any]) -> Any:
        """The translated section's module (its text and strings). The school's own Italian
        texts (opening hours, the webhook's next steps) become the language's own
        (language.toml `[text]`) or nothing: never Italian inside a translation."""
        language = self.languages[code]
        own = {key: language.values.get(key, "") for key in SCHOOL_TEXTS}
        return self.env.get_template(f"i18n/{code}/{name}").make_module({**context, **own})

    def translation(self, name: str, code: str, context: Mapping[str, Any]) -> Translation | None:
        language = self.languages[code]
        try:
            module = self.section(name, code, context)
            html = Markup(str(module))  # noqa: S704 - rendered with autoescape
        except jinja2.TemplateNotFound:
            return None
        except Exception as exc:  # a broken translation: the page stays Italian only
            error = type(exc).__name__
            log.warning("web.translation_failed", page=name, language=code, error=error)
            return None
        strings = {  # escaped when shown (Translation.also)
            key: value
            for key, value in vars(module).items()
            if not key.startswith("_") and isinstance(value, str)
        }
        direction = "rtl" if language.right_to_left else "ltr"
        return Translation(code, language.heading, direction, html, strings)


# -- `credmail templates check`: the translated page sections ------------------------------

PAGES = (
    "reset_confirm.html",
    "reset_done.html",
    "reset_invalid.html",
    "reset_retry.html",
    "rate_limited.html",
    "error.html",
    "unavailable.html",
)
# Password problems whose Italian has a number: the translation says it with `{n}`.
PROBLEMS_WITH_N = ("too_short", "too_long")
# Strings a page's translation must set for the shared controls (shown beside the Italian).
PAGE_STRINGS = {
    "reset_confirm.html": (
        "button",
        "label_password",
        "label_password_again",
        "password_help",
        "problems_title",
        "footer",
        *(f"problem_{code}" for code in PROBLEM_CODES),
    ),
}
SAMPLE_MOMENT = datetime(2026, 11, 28, 10, 0, tzinfo=ZoneInfo("UTC"))
SAMPLE_MIN_LENGTH = 17  # an unusual minimum: `password_help` must show the configured one
_SAMPLE_PROBLEMS = (Problem(TOO_SHORT, "too_short", SAMPLE_MIN_LENGTH), Problem(COMMON, "common"))


def page_cases(name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every view a page can be rendered with: each backend, origin and kind of account,
    with and without a name, a register code and the register's sex field; each state of
    an invalid link, for an adult's and a student's link; the error page's two kinds."""
    from credmail.core.campaign import PURPOSE_FIRST_ACCESS
    from credmail.core.recipients import PURPOSE_ADULT, PURPOSE_STUDENT
    from credmail.service.desks.reset import ResetView
    from credmail.service.link_backends import BackendKind
    from credmail.service.ports import ORIGINS, TokenState

    purposes = (PURPOSE_ADULT, PURPOSE_STUDENT, PURPOSE_FIRST_ACCESS)
    cases: list[tuple[str, dict[str, Any]]] = []
    for kind in BackendKind:
        for origin in ORIGINS:
            for purpose in purposes:
                for holder, username, sex in (
                    ("Mario Rossi", "G1234567L", "M"),
                    ("Anna Rossi", "S1234567A", "F"),
                    ("Luca Rossi", MADE_UP, None),
                    (None, MADE_UP, None),
                ):
                    view = ResetView(
                        TokenState.VALID,
                        kind,
                        kind is BackendKind.LDAP,
                        username=username,
                        name=holder,
                        purpose=purpose,
                        expires_at=SAMPLE_MOMENT,
                        origin=origin,
                        sex=sex,
                    )
                    label = f"{kind.value}, {origin}, {purpose}, {holder}, {username}, {sex}"
                    context = {
                        "view": view,
                        "backend": kind.value,  # what next_steps.j2 reads (the settings')
                        "password_min_length": SAMPLE_MIN_LENGTH,
                        "problems": _SAMPLE_PROBLEMS,
                        "csrf_token": "t",
                    }
                    cases.append((label, context))
    if name == "reset_invalid.html":
        return [
            (f"{state.value}, {purpose}", {"view": _invalid_view(state, purpose)})
            for state in TokenState
            if state is not TokenState.VALID
            for purpose in (None, *purposes)
        ]
    if name == "reset_retry.html":
        bare = ResetView(TokenState.VALID, BackendKind.WEBHOOK, False)
        return [*cases, ("no expiry", {"view": bare})]
    if name == "error.html":
        return [("expired form", {"reload": True, "title": "x"}), ("not found", {"title": "x"})]
    if name == "rate_limited.html":
        return [("page", {})]
    return cases


def _invalid_view(state: Any, purpose: str | None) -> Any:
    from credmail.service.desks.reset import ResetView
    from credmail.service.link_backends import BackendKind

    return ResetView(state, BackendKind.WORKLIST, False, purpose=purpose)


def check_pages(pages: Pages) -> list[tuple[str, str, str | None, str]]:
    """(level, language, page, message): a page a language lacks is a warning (the page
    stays Italian); a render failure, a missing control string, an Italian partial
    imported, the school's Italian text or a made-up code shown is an error."""
    findings: list[tuple[str, str, str | None, str]] = []
    for code in sorted(pages.languages):
        for name in PAGES:
            if not pages.has(name, code):
                findings.append(("warning", code, name, "missing page: shown in Italian only"))
                continue
            problems = _check_page(pages, code, name)
            findings += [("error", code, name, message) for message in problems]
    return findings


def _check_page(pages: Pages, code: str, name: str) -> list[str]:
    loader = pages.env.loader
    assert loader is not None
    source = loader.get_source(pages.env, f"i18n/{code}/{name}")[0]
    problems = foreign_imports(pages.env, source, code)
    italian = {key: str(pages.env.globals.get(key) or "") for key in SCHOOL_TEXTS}
    for label, context in page_cases(name):
        try:
            module = pages.section(name, code, context)
            text = str(module)
        except Exception as exc:  # report every way a page can fail
            return [*problems, f"render failure ({label}): {type(exc).__name__}: {exc}"]
        problems += _strings_problems(module, name)
        problems += leaks(text + "".join(map(str, vars(module).values())))
        problems += [
            f"prints the school's Italian {key}" for key, it in italian.items() if it and it in text
        ]
        if problems:
            return list(dict.fromkeys(problems))
    return problems


def _strings_problems(module: Any, name: str) -> list[str]:
    problems = []
    for key in PAGE_STRINGS.get(name, ("footer",)):
        if not isinstance(getattr(module, key, None), str):
            problems.append(f"missing key {key}")
    for code in PROBLEMS_WITH_N if name in PAGE_STRINGS else ():
        if "{n}" not in str(getattr(module, f"problem_{code}", "{n}")):
            problems.append(f"problem_{code} must say the number as {{n}}")
    help_text = getattr(module, "password_help", None)
    if isinstance(help_text, str) and str(SAMPLE_MIN_LENGTH) not in help_text:
        problems.append("password_help must show {{ password_min_length }}")
    return problems
