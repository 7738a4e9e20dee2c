"""The templates desk: which languages the replies go out in, and what is missing."""

from __future__ import annotations

from collections.abc import Sequence

from credmail.service.reply_templates import Language, ReplyComposer
from credmail.service.template_check import TemplatesReport, check_templates


class TemplatesDesk:
    def __init__(
        self, composer: ReplyComposer, templates: Sequence[str], italian_only: Sequence[str]
    ) -> None:
        self.composer = composer
        self.templates = templates
        self.italian_only = italian_only

    def languages(self) -> dict[str, Language]:
        """Every usable translation set (the pages follow the same ones as the mail)."""
        return {c: lang for c, lang in self.composer.languages.items() if lang.problem is None}

    def check(self) -> TemplatesReport:
        """Every translation against its Italian reply (errors and warnings)."""
        names = set(self.templates) | set(self.composer.italian_templates())
        return check_templates(self.composer, names, self.italian_only)
