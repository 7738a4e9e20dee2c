"""Render replies from Jinja2 templates (package defaults, school overrides): Italian first,
then the recipient's language when a translation exists.

Layout, the same in the package and in the school's `replies.templates_dir` (the school's
file wins, name by name):

    <name>.txt.j2                     the Italian reply (the text of record)
    i18n/<code>/language.toml         a language: names, direction, review note, texts
    i18n/<code>/<name>.txt.j2         that reply in that language

A reply named in no `i18n/<code>/` is sent in Italian only; so is one whose translation
fails to load or render (logged, never a broken mail). A template added later (a new kind
of mail) gets translations by adding files, nothing else.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

import jinja2
import structlog
from jinja2 import meta, nodes

from credmail.core.addresses import wire_address
from credmail.core.mail_policy import POLICY
from credmail.core.multilingual import (
    Section,
    bilingual_body,
    content_language,
    is_language_code,
    isolate,
)
from credmail.service.ports import OutgoingMail
from credmail.service.register_import import is_register_reference

TRANSLATIONS = "i18n"
LANGUAGE_FILE = "language.toml"
SUFFIX = ".txt.j2"
MACHINE_DRAFTED = "machine-drafted, awaiting review by a native speaker"
# Values every template gets (bootstrap.template_values); a language may give its own.
COMMON_KEYS = frozenset(
    {
        "school_name",
        "signature",
        "contact",
        "front_desk_hours",
        "backend",
        "worklist_days",
        "webhook_next_steps",
        "password_min_length",
        "automatic",
        "reader",
    }
)
# The school's own Italian texts: a translation shows the language's own version
# (i18n/<code>/language.toml [text]) or, when it has none, the translated template's
# words without it: never the Italian text inside a translation.
SCHOOL_TEXTS = ("front_desk_hours", "webhook_next_steps")
TRANSLATABLE_VALUES = ("contact", "signature", *SCHOOL_TEXTS)
# Defaults: the package's own settings (bootstrap.template_values gives the school's),
# a mail no person decided, a reader not known by name.
DEFAULT_VALUES: dict[str, Any] = {
    "front_desk_hours": "",
    "backend": "worklist",
    "worklist_days": 2,
    "webhook_next_steps": "",
    "password_min_length": 12,
    "automatic": True,
    "reader": None,
}


class TemplateProblem(Exception):
    """A reply template that cannot be loaded (usually a school override)."""


class TranslationMissing(Exception):
    """No usable translation of this reply in this language."""


@dataclass(frozen=True)
class Language:
    """One translation set, from its language.toml (the school's keys over the package's)."""

    code: str
    name: str = ""
    native_name: str = ""
    right_to_left: bool = False
    status: str = MACHINE_DRAFTED
    reviewed_by: str = ""
    reviewed_on: str = ""
    notice: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    origin: str = "package"  # "package", "school" or "package+school"
    problem: str | None = None

    @property
    def reviewed(self) -> bool:
        return bool(self.reviewed_by.strip() and self.reviewed_on.strip())

    @property
    def heading(self) -> str:
        return self.native_name or self.name or self.code


def _environment(
    loader: jinja2.BaseLoader, finalize: Callable[[Any], Any] | None = None
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - plain-text mail, not HTML
        keep_trailing_newline=True,
        finalize=finalize,
    )
    env.tests["register_reference"] = is_register_reference
    return env


def _isolated(value: Any) -> Any:
    """Right-to-left templates: every value printed into the text is a bidi isolate."""
    if value is None or isinstance(value, jinja2.Undefined):
        return value
    return isolate(str(value))


class ReplyComposer:
    """Builds complete RFC 5322 replies; never copies anything from the inbound mail."""

    def __init__(
        self,
        from_address: str,
        from_name: str,
        common: Mapping[str, Any],
        templates_dir: Path | None = None,
    ) -> None:
        self._package: jinja2.BaseLoader = jinja2.PackageLoader("credmail", "templates")
        self._school: jinja2.BaseLoader | None = (
            jinja2.FileSystemLoader(str(templates_dir)) if templates_dir is not None else None
        )
        loaders = [self._package] if self._school is None else [self._school, self._package]
        loader = jinja2.ChoiceLoader(loaders)
        self.env = _environment(loader)
        self.rtl_env = _environment(loader, finalize=_isolated)
        self.from_address = wire_address(from_address)  # an IDN domain in A-labels
        self.from_name = from_name
        self.domain = self.from_address.rpartition("@")[2]
        self.common = {**DEFAULT_VALUES, **common}
        self.log = structlog.get_logger("credmail.replies")
        self.languages: dict[str, Language] = self._load_languages()

    # -- Italian -------------------------------------------------------------------------

    def check(self, names: Iterable[str]) -> None:
        """Load every template once so a broken override fails at start, not per message."""
        for name in names:
            try:
                self.env.get_template(f"{name}{SUFFIX}")
            except jinja2.TemplateError as exc:
                raise TemplateProblem(f"{name}{SUFFIX}: {exc}") from exc

    def render(self, template: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """Return (subject, body); the subject is the template's `subject` variable."""
        return self._render(self.env, f"{template}{SUFFIX}", {**self.common, **context})

    def italian_templates(self) -> list[str]:
        """Every Italian reply template the package or the school has."""
        found = set()
        for loader in self._loaders():
            for name in loader.list_templates():
                if "/" not in name and name.endswith(SUFFIX):
                    found.add(name.removesuffix(SUFFIX))
        return sorted(found)

    # -- translations --------------------------------------------------------------------

    def render_in(self, code: str, template: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """(subject, body) of `template` in language `code`; TranslationMissing when that
        language or that reply has no translation, any other exception when it breaks."""
        language = self.languages.get(code)
        if language is None or language.problem is not None:
            raise TranslationMissing(code)
        env = self.rtl_env if language.right_to_left else self.env
        try:
            env.get_template(self.translation_name(code, template))
        except jinja2.TemplateNotFound as exc:
            raise TranslationMissing(f"{code}/{template}") from exc
        values = {**self.common, **language.values, **context}
        values |= {key: language.values.get(key, "") for key in SCHOOL_TEXTS}
        return self._render(env, self.translation_name(code, template), values)

    @staticmethod
    def translation_name(code: str, template: str) -> str:
        return f"{TRANSLATIONS}/{code}/{template}{SUFFIX}"

    def translation_source(self, code: str, template: str) -> str | None:
        """Where a translation comes from: "school", "package" or None (missing)."""
        name = self.translation_name(code, template)
        for origin, loader in self._origins():
            try:
                loader.get_source(self.env, name)
            except jinja2.TemplateNotFound:
                continue
            return origin
        return None

    def section(self, code: str, template: str, context: Mapping[str, Any]) -> Section | None:
        """The translated copy, or None (missing or broken: the mail goes in Italian only)."""
        try:
            subject, body = self.render_in(code, template, context)
        except TranslationMissing:
            self.log.info("reply.translation_missing", template=template, language=code)
            return None
        except Exception as exc:  # any failure must fall back to Italian
            self.log.warning(
                "reply.translation_failed",
                template=template,
                language=code,
                error=type(exc).__name__,
            )
            return None
        language = self.languages[code]
        return Section(
            code, language.heading, language.notice, subject, body, language.right_to_left
        )

    def compose(
        self,
        template: str,
        to: str,
        context: Mapping[str, Any],
        in_reply_to: str | None,
        now: datetime,
        *,
        languages: Sequence[str] = (),
        translated: Mapping[str, Any] | None = None,
        auto_submitted: str = "auto-replied",
    ) -> OutgoingMail:
        """One mail: the Italian text, then each of `languages` that renders.
        `translated` overrides context values in the translations (dates without "alle")."""
        subject, italian = self.render(template, context)
        local = {**context, **(translated or {})}
        sections = [
            found
            for code in dict.fromkeys(languages)
            if (found := self.section(code, template, local)) is not None
        ]
        msg = EmailMessage(policy=POLICY)
        message_id = make_msgid(idstring="credmail", domain=self.domain)
        msg["From"] = fixed_header("From", formataddr((self.from_name, self.from_address)))
        msg["To"] = wire_address(to)  # never an encoded-word in an address
        msg["Subject"] = fixed_header("Subject", subject)
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = message_id
        thread = threading_id(in_reply_to)
        if thread is not None:
            msg["In-Reply-To"] = thread
            msg["References"] = thread
        # "auto-generated" for a campaign
        msg["Auto-Submitted"] = fixed_header("Auto-Submitted", auto_submitted)
        msg["X-Auto-Response-Suppress"] = fixed_header("X-Auto-Response-Suppress", "All")
        set_text(msg, bilingual_body(italian, sections))
        # after set_text: set_content clears the Content-* headers
        msg["Content-Language"] = fixed_header("Content-Language", content_language(sections))
        return OutgoingMail(message_id, self.from_address, to, msg.as_bytes())

    # -- internals -----------------------------------------------------------------------

    def _render(
        self, env: jinja2.Environment, name: str, values: Mapping[str, Any]
    ) -> tuple[str, str]:
        module = env.get_template(name).make_module(dict(values))  # renders once
        subject = str(getattr(module, "subject", "")).strip()
        return subject or "Segreteria", str(module)

    def _loaders(self) -> list[jinja2.BaseLoader]:
        return [loader for _origin, loader in self._origins()]

    def _origins(self) -> list[tuple[str, jinja2.BaseLoader]]:
        found: list[tuple[str, jinja2.BaseLoader]] = []
        if self._school is not None:
            found.append(("school", self._school))
        found.append(("package", self._package))
        return found

    def _load_languages(self) -> dict[str, Language]:
        """Every i18n/<code>/language.toml, the package's then the school's keys on top."""
        raw: dict[str, dict[str, Any]] = {}
        origins: dict[str, list[str]] = {}
        problems: dict[str, str] = {}
        for origin, loader in reversed(self._origins()):
            for name in loader.list_templates():
                parts = name.split("/")
                if len(parts) != 3 or parts[0] != TRANSLATIONS or parts[2] != LANGUAGE_FILE:
                    continue
                code = parts[1]
                origins.setdefault(code, []).append(origin)
                try:
                    text = loader.get_source(self.env, name)[0]
                    data = tomllib.loads(text)
                except (tomllib.TOMLDecodeError, jinja2.TemplateError, UnicodeError) as exc:
                    problems[code] = f"{origin} {name}: {exc}"
                    continue
                _merge(raw.setdefault(code, {}), data)
        languages = {}
        for code in sorted(origins):
            origin = "+".join(sorted(origins[code], key=lambda o: o != "package"))
            languages[code] = _language(code, raw.get(code, {}), origin, problems.get(code))
        return languages


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _language(code: str, data: Mapping[str, Any], origin: str, problem: str | None) -> Language:
    if problem is None and not is_language_code(code):
        problem = f"{code!r} is not a two-letter ISO 639-1 code"
    if problem is None and code == "it":
        problem = "Italian is the text of record: edit the templates at the top level"
    direction = str(data.get("direction", "ltr"))
    if problem is None and direction not in ("ltr", "rtl"):
        problem = f"direction must be 'ltr' or 'rtl', not {direction!r}"
    texts = data.get("text", {})
    if problem is None and not isinstance(texts, dict):
        problem = "[text] must be a table"
        texts = {}
    reviewed_on = data.get("reviewed_on", "")
    return Language(
        code=code,
        name=str(data.get("name", "")),
        native_name=str(data.get("native_name", "")),
        right_to_left=direction == "rtl",
        status=str(data.get("status", MACHINE_DRAFTED)),
        reviewed_by=str(data.get("reviewed_by", "")),
        reviewed_on=reviewed_on.isoformat() if isinstance(reviewed_on, date) else str(reviewed_on),
        notice=str(texts.get("notice", "")),
        values={k: str(texts[k]) for k in TRANSLATABLE_VALUES if k in texts},
        origin=origin,
        problem=problem,
    )


# -- checking translations against the Italian -----------------------------------------


def placeholders(env: jinja2.Environment, source: str) -> set[str]:
    """The values a template reads: bare names and one level of attributes
    (`person`, `person.first_name`), minus what the template sets itself."""
    ast = env.parse(source)
    names = meta.find_undeclared_variables(ast)
    found = set(names)
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in names:
            found.add(f"{node.node.name}.{node.attr}")
    return found


MAX_LINE_BYTES = 998  # RFC 5322's limit for a line
MAX_THREAD_ID = MAX_LINE_BYTES - len("In-Reply-To: ")


def threading_id(message_id: str | None) -> str | None:
    """The inbound Message-ID a reply names in In-Reply-To and References: one msg-id of
    printable ASCII that fits a line, written as it is (mail_policy never folds it). Any
    other value (8-bit, spaces, absurdly long) is left out: a reply outside the thread
    beats a field no client can read."""
    if not message_id or len(message_id) > MAX_THREAD_ID:
        return None
    printable = all("!" <= char <= "~" for char in message_id)
    return message_id if printable and message_id[0] == "<" and message_id[-1] == ">" else None


_WIDE_LINES = POLICY.clone(max_line_length=MAX_LINE_BYTES)


def set_text(msg: EmailMessage, text: str) -> None:
    """The body as 7bit or 8bit text whenever its lines fit RFC 5322's 998 bytes (a link's
    line is longer than 78): the link placeholder then stays visible in the stored bytes
    and is filled in without parsing the mail again when it leaves. Longer lines get the
    library's usual quoted-printable or base64. Headers are still folded at 78 when the
    mail is serialized (the generator uses the message's own policy)."""
    widest = max(map(len, text.encode().splitlines()), default=0)  # CR and LF only
    if widest > MAX_LINE_BYTES:
        msg.set_content(text)
        return
    msg.policy = _WIDE_LINES
    try:
        msg.set_content(text)
    finally:
        msg.policy = POLICY


@functools.lru_cache(maxsize=256)
def fixed_header(name: str, value: str) -> Any:
    """A header whose value repeats from mail to mail (From, a template's subject), parsed
    once: the email package takes a parsed header as it is (parsing From alone costs about
    0.1 ms a mail), so the check it makes on a plain value is made here: no line break."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"header value may not contain a line break: {name}")
    return POLICY.header_factory(name, value)
