"""Server-rendered pages from Jinja2 templates the school can override
(`replies.templates_dir` first, then the templates shipped in credmail/web/templates).

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

from credmail.service.reply_templates import Language

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

    def also(self, key: str) -> Markup:
        """A control's label in this language, to show beside the Italian one."""
        text = self.strings.get(key)
        if not text:
            return Markup("")
        return Markup('<span class="also" lang="{}" dir="{}">{}</span>').format(
            self.code, self.direction, text
        )


@dataclass(frozen=True)
class Choice:
    code: str
    name: str
    current: bool


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
            "also": translation.also if translation else (lambda key: Markup("")),
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

    def translation(self, name: str, code: str, context: Mapping[str, Any]) -> Translation | None:
        language = self.languages[code]
        try:
            template = self.env.get_template(f"i18n/{code}/{name}")
            module = template.make_module(dict(context))
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
