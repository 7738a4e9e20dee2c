"""Server-rendered Italian pages from Jinja2 templates the school can override
(`replies.templates_dir` first, then the templates shipped in credmail/web/templates)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


class Pages:
    def __init__(
        self,
        globals_: dict[str, Any],
        timezone: ZoneInfo,
        override_dir: Path | None = None,
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

    def local_time(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        return moment.astimezone(self.timezone).strftime("%d/%m/%Y alle %H:%M")

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status)
