"""Render Italian replies from Jinja2 templates (package defaults, school overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

import jinja2

from credmail.service.ports import OutgoingMail


class TemplateProblem(Exception):
    """A reply template that cannot be loaded (usually a school override)."""


class ReplyComposer:
    """Builds complete RFC 5322 replies; never copies anything from the inbound mail."""

    def __init__(
        self,
        from_address: str,
        from_name: str,
        common: Mapping[str, Any],
        templates_dir: Path | None = None,
    ) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("credmail", "templates")]
        if templates_dir is not None:
            loaders.insert(0, jinja2.FileSystemLoader(str(templates_dir)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail, not HTML
            keep_trailing_newline=True,
        )
        self.from_address = from_address
        self.from_name = from_name
        self.domain = from_address.rpartition("@")[2]
        self.common = dict(common)

    def check(self, names: list[str]) -> None:
        """Load every template once so a broken override fails at start, not per message."""
        for name in names:
            try:
                self.env.get_template(f"{name}.txt.j2")
            except jinja2.TemplateError as exc:
                raise TemplateProblem(f"{name}.txt.j2: {exc}") from exc

    def render(self, template: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """Return (subject, body); the subject is the template's `subject` variable."""
        tmpl = self.env.get_template(f"{template}.txt.j2")
        values = {**self.common, **context}
        body = tmpl.render(values)
        subject = str(getattr(tmpl.make_module(values), "subject", "")).strip()
        return subject or "Segreteria", body

    def compose(
        self,
        template: str,
        to: str,
        context: Mapping[str, Any],
        in_reply_to: str | None,
        now: datetime,
        *,
        auto_submitted: str = "auto-replied",
    ) -> OutgoingMail:
        subject, body = self.render(template, context)
        msg = EmailMessage()
        message_id = make_msgid(idstring="credmail", domain=self.domain)
        msg["From"] = formataddr((self.from_name, self.from_address))
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = message_id
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = in_reply_to
        msg["Auto-Submitted"] = auto_submitted  # "auto-generated" for a campaign
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Content-Language"] = "it"
        msg.set_content(body)
        return OutgoingMail(message_id, self.from_address, to, msg.as_bytes())
