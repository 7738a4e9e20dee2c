"""`credmail templates check`'s stale translations and `credmail templates rehash`: the
Italian each translation was made from (service/translation_hashes.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from credmail.service.template_check import TemplatesReport
from credmail.service.translation_hashes import STALE, rehash, stale

if TYPE_CHECKING:
    from credmail.config import Settings
    from credmail.entrypoints.cli_base import Context

PAGE_SUFFIX = ".html"


def stale_findings(settings: Settings, report: TemplatesReport) -> list[dict[str, str]]:
    """Every translation (reply, partial, page) whose Italian changed since it was made."""
    from credmail.bootstrap import templates_desk

    found = [
        {"language": f.language, "file": f.template or "", "message": f.message}
        for f in report.warnings
        if f.message == STALE.format(code=f.language)
    ]
    pages = _pages_env(settings)
    for code in sorted(templates_desk(settings).languages()):
        found += [
            {"language": code, "file": name, "message": STALE.format(code=code)}
            for name in stale(pages, code, PAGE_SUFFIX)
        ]
    return found


def print_stale(found: list[dict[str, str]]) -> None:
    for item in found:
        print(f"WARNING {item['language']} {item['file']}: {item['message']}")


def register(commands: Any) -> None:
    rehash_parser = commands.add_parser(
        "rehash",
        help="after a person has reviewed a language's translations against today's Italian: "
        "record that Italian in them (the files in templates_dir, or credmail's own)",
    )
    rehash_parser.add_argument("language", help="the language code, as in i18n/<code>")
    rehash_parser.set_defaults(handler=cmd_templates_rehash)


def cmd_templates_rehash(args: argparse.Namespace, ctx: Context) -> int:
    """Record today's Italian in a reviewed language's translations."""
    from credmail.bootstrap import templates_desk
    from credmail.entrypoints.cli_base import CommandError

    settings = ctx.settings
    desk = templates_desk(settings)
    if args.language not in desk.composer.languages:
        known = ", ".join(sorted(desk.composer.languages))
        raise CommandError(f"no translation set {args.language!r} (known: {known})")
    changed = rehash(desk.composer.env, args.language)
    changed += rehash(_pages_env(settings), args.language, PAGE_SUFFIX)
    for path in changed:
        print(f"recorded the Italian in {path}")
    print(f"{args.language}: {len(changed)} translations updated")
    return 0


def _pages_env(settings: Settings) -> Any:
    from zoneinfo import ZoneInfo

    from credmail.web.app import make_pages

    return make_pages(settings, ZoneInfo(settings.daemon.timezone)).env
