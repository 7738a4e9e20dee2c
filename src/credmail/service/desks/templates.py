"""The templates desk: which languages the replies go out in, and what is missing."""

from __future__ import annotations

from collections.abc import Sequence

from credmail.service.reply_templates import ReplyComposer
from credmail.service.template_check import TemplatesReport, check_templates


class TemplatesDesk:
    def __init__(
        self, composer: ReplyComposer, templates: Sequence[str], italian_only: Sequence[str]
    ) -> None:
        self.composer = composer
        self.templates = templates
        self.italian_only = italian_only

    def check(self) -> TemplatesReport:
        """Every translation against its Italian reply (errors and warnings)."""
        names = set(self.templates) | set(self.composer.italian_templates())
        return check_templates(self.composer, names, self.italian_only)
