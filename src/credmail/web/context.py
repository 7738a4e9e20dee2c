"""`WebContext`: what every page handler shares (the reset page, the console).

Its own module so the pages can import it without importing the application that
imports them (no import circle through credmail.web.app).
"""

from __future__ import annotations

from dataclasses import dataclass

from credmail.bootstrap import App
from credmail.config import Settings
from credmail.web.pages import Pages
from credmail.web.ratelimit import SlidingWindow
from credmail.web.security import Csrf


@dataclass
class WebContext:
    """What every page handler shares."""

    app: App
    settings: Settings
    prefix: str  # "" or "/path" (no trailing slash)
    pages: Pages
    csrf: Csrf
    post_limit: SlidingWindow
    invalid_limit: SlidingWindow

    def url(self, path: str) -> str:
        return f"{self.prefix}{path}"
