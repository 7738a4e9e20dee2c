"""The `credmail` command line: configuration, database, directory, daemon, review, outbox."""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credmail.config import ConfigError, Settings, config_path, load_settings, with_mail_secrets
from credmail.entrypoints import cli_backup, cli_stats, cli_templates, db_wait
from credmail.entrypoints.cli_base import EXIT_FAILURE as EXIT_FAILURE
from credmail.entrypoints.cli_base import CommandError as CommandError
from credmail.entrypoints.cli_base import Context as Context
from credmail.entrypoints.cli_base import actor as _actor
from credmail.entrypoints.cli_base import line as _line
from credmail.entrypoints.cli_base import require_schema as _require_schema
from credmail.entrypoints.cli_base import review_action as _review_action
from credmail.entrypoints.cli_base import review_json as _review_json
from credmail.entrypoints.cli_base import say as _say
from credmail.entrypoints.csv_output import csv_on_stdout
from credmail.logs import command_level, configure_logging

if TYPE_CHECKING:
    from credmail.service.desks.backlog import BacklogDesk, Waiting
    from credmail.service.desks.outbox import OutboxLine

EXIT_CONFIG = 2
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `| head`


# Only these commands sign in to IMAP or SMTP (and so read the mail password files).
CONNECTING = {"run", "check-config", "backlog", "notify"}
# Only these create or migrate the database; every other command needs it to exist.
MIGRATING = {"run", "directory", "oauth", "staff"}
# The daemon's commands log at logging.level; the others only warnings and errors (logs.py).
DAEMON = {"run", "web"}


Handler = Callable[[argparse.Namespace, Context], int]


def run() -> int:
    """The console entry point: every file credmail creates is private (0600, dirs 0700).

    What the imports built (modules, classes, SQLAlchemy's and pydantic's tables) lives as
    long as the process: frozen out of the garbage collector, no collection walks it again,
    the final one at exit included (measured: every command's exit took 0.10 s, now
    0.012 s)."""
    os.umask(0o077)
    gc.freeze()
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    daemon = args.command in DAEMON
    configure_logging(command_level("info", args.verbose, daemon))  # until settings say more
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    if args.command == "demo":
        from credmail.entrypoints.demo import run_demo

        return int(run_demo(args.workdir, keep=args.keep))
    if args.command == "status" and args.all is not None:
        from credmail.entrypoints.fleet import status_all

        return status_all(args.all, args.json, sys.stdout)
    if config_path(args.config) is None and not _env_settings():
        print(f"credmail: {NO_CONFIG}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        settings = load_settings(config_path(args.config))
        if args.command in CONNECTING:
            settings = with_mail_secrets(settings)
    except ConfigError as exc:
        print(f"credmail: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(
        command_level(settings.logging.level, args.verbose, daemon), settings.logging.format
    )
    handler: Handler = args.handler
    context = Context(settings, may_migrate=args.command in MIGRATING)
    try:
        with csv_on_stdout(args):
            code = handler(args, context)
        sys.stdout.flush()  # a closed pipe shows here, not in the flush at exit
        return code
    except ConfigError as exc:
        print(f"credmail: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"credmail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if _is_desk_error(exc):
            print(f"credmail: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        return _expected_failure(exc, settings)
    finally:
        context.close()


NO_CONFIG = "no configuration file: give --config FILE or set CREDMAIL_CONFIG"


def _env_settings() -> bool:
    """Settings given only through CREDMAIL_SECTION__KEY variables (containers, tests)."""
    return any(
        name.startswith("CREDMAIL_") and name != "CREDMAIL_CONFIG" and value
        for name, value in os.environ.items()
    )


def _reader_gone() -> int:
    """Standard output was closed (`| head`): stop quietly, like a command killed by SIGPIPE."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_BROKEN_PIPE


def _expected_failure(exc: Exception, settings: Settings) -> int:
    """A connection, login, folder or database failure: one line, no traceback."""
    from credmail.bootstrap import explain

    line = explain(exc, settings)
    if line is None:
        raise exc
    print(f"credmail: {line}", file=sys.stderr)
    return EXIT_FAILURE


def _is_desk_error(exc: Exception) -> bool:
    from credmail.service.desks import DeskError

    return isinstance(exc, DeskError)


def _parser() -> argparse.ArgumentParser:
    from credmail import __version__

    parser = argparse.ArgumentParser(prog="credmail", description=__doc__)
    parser.add_argument("--version", action="version", version=f"credmail {__version__}")
    parser.add_argument("--config", help="TOML config file (default: $CREDMAIL_CONFIG)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log progress to standard error (-vv: debug); by default a command other than "
        "run and web logs only warnings and errors",
    )
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("check-config", help="validate the configuration and exit")
    check.add_argument(
        "--connect", action="store_true", help="also sign in to IMAP and SMTP, step by step"
    )
    check.set_defaults(handler=cmd_check_config)
    run = sub.add_parser("run", help="watch the mailbox until SIGTERM")
    run.add_argument("--once", action="store_true", help="handle what is there now and exit")
    run.add_argument("--json", action="store_true", help="with --once: the summary as JSON")
    run.set_defaults(handler=cmd_run)
    demo = sub.add_parser("demo", help="the whole flow on embedded sample data")
    demo.add_argument("--workdir", type=Path, help="write the demo files here (and keep them)")
    demo.add_argument("--keep", action="store_true", help="keep the temporary demo files")
    demo.set_defaults(handler=None)
    status = sub.add_parser("status", help="last successful sync, outbox and review counts")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--all",
        type=Path,
        metavar="CONFIG_DIR",
        help="one line per school: every *.toml in CONFIG_DIR (e.g. /etc/credmail)",
    )
    status.set_defaults(handler=cmd_status)
    _db_commands(sub)
    _directory_commands(sub)
    _review_commands(sub)
    _outbox_commands(sub)
    _token_commands(sub)
    _backlog_commands(sub)
    _privacy_commands(sub)
    _limits_commands(sub)
    _oauth_commands(sub)
    _staff_commands(sub)
    _templates_commands(sub)
    _web_commands(sub)
    _task_commands(sub)
    _campaign_commands(sub)
    from credmail.entrypoints.cli_notify import add_notify_commands

    add_notify_commands(sub)
    cli_stats.register(sub)
    return parser


def _staff_commands(sub: Any) -> None:
    staff = sub.add_parser("staff", help="console accounts of the secretariat").add_subparsers(
        dest="staff_command", required=True
    )
    add = staff.add_parser("add", help="a new account (password asked twice, or on stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("operatore", "amministratore"))
    add.set_defaults(handler=cmd_staff_add)
    passwd = staff.add_parser("passwd", help="set a new password (signs the account out)")
    passwd.add_argument("name")
    passwd.set_defaults(handler=cmd_staff_passwd)
    disable = staff.add_parser("disable", help="disable an account (signs it out)")
    disable.add_argument("name")
    disable.set_defaults(handler=cmd_staff_disable)
    listing = staff.add_parser("list", help="every account")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_staff_list)
    totp = staff.add_parser("totp", help="turn on the second factor; prints the otpauth URI")
    totp.add_argument("name")
    totp.set_defaults(handler=cmd_staff_totp)


def _new_password() -> str:
    """Asked twice at a terminal; otherwise the first line of standard input."""
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on standard input")
        return password
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise CommandError("the two passwords differ")
    return first


def cmd_staff_add(args: argparse.Namespace, ctx: Context) -> int:
    desks = ctx.app().desks
    added = desks.staff.add(args.name, args.role, _new_password(), _actor())
    print(f"staff member {added.name} added ({added.role})")
    return 0


def cmd_staff_passwd(args: argparse.Namespace, ctx: Context) -> int:
    desks = ctx.app().desks
    desks.staff.passwd(args.name, _new_password(), _actor())
    print(f"password of {args.name} changed; their sessions are closed")
    return 0


def cmd_staff_disable(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app().desks.staff.disable(args.name, _actor())
    print(f"staff member {args.name} disabled; their sessions are closed")
    return 0


def cmd_staff_list(args: argparse.Namespace, ctx: Context) -> int:
    accounts = ctx.app().desks.staff.listing()
    if args.json:
        rows = [
            {"name": a.name, "role": a.role, "active": a.active, "totp": a.totp} for a in accounts
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for a in accounts:
        state = "active" if a.active else "disabled"
        print(f"{a.name}\t{a.role}\t{state}\t{'totp' if a.totp else 'password only'}")
    if not accounts:
        print("no staff accounts")
    return 0


def cmd_staff_totp(args: argparse.Namespace, ctx: Context) -> int:
    uri = ctx.app().desks.staff.totp(args.name, _actor())
    print("Add this to the authenticator app (it contains the secret: do not share it):")
    print(uri)
    return 0


def _web_commands(sub: Any) -> None:
    web = sub.add_parser("web", help="serve the reset page (web.listen, behind a TLS proxy)")
    web.add_argument("--listen", help="host:port (default: web.listen)")
    web.set_defaults(handler=cmd_web)


def _task_commands(sub: Any) -> None:
    tasks = sub.add_parser(
        "tasks", help="verified requests to carry out in the register (links.backend = worklist)"
    ).add_subparsers(dest="tasks_command", required=True)
    listing = tasks.add_parser("list", help="open tasks (--all: done ones too)")
    listing.add_argument("--all", action="store_true", help="also the tasks already done")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_tasks_list)
    done = tasks.add_parser(
        "done", help="the credentials were resent from the register: tell the person"
    )
    done.add_argument("id", type=int)
    done.add_argument("--note", help="an internal note, kept with the task; never mailed")
    done.add_argument(
        "--message",
        help="a message for the person, printed in the mail: shown first, sent with --confirm",
    )
    done.add_argument(
        "--confirm", action="store_true", help="send the --message (after reading it)"
    )
    done.set_defaults(handler=cmd_tasks_done)


def _privacy_commands(sub: Any) -> None:
    privacy = sub.add_parser("privacy", help="personal data held about an address").add_subparsers(
        dest="privacy_command", required=True
    )
    show = privacy.add_parser("show", help="print everything credmail holds about an address")
    show.add_argument("email")
    show.set_defaults(handler=cmd_privacy_show)
    forget = privacy.add_parser("forget", help="erase it (directory rows stay)")
    forget.add_argument("email")
    forget.set_defaults(handler=cmd_privacy_forget)


def _limits_commands(sub: Any) -> None:
    limits = sub.add_parser("limits", help="abuse limits").add_subparsers(
        dest="limits_command", required=True
    )
    limits.add_parser("show", help="is the circuit breaker tripped?").set_defaults(
        handler=cmd_limits_show
    )
    limits.add_parser("reset", help="close the circuit breaker").set_defaults(
        handler=cmd_limits_reset
    )


def _db_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema, backup and restore").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)
    db_wait.add_parser(db)
    cli_backup.add_parsers(db)


def _directory_commands(sub: Any) -> None:
    directory = sub.add_parser("directory", help="recognized people").add_subparsers(
        dest="directory_command", required=True
    )
    imp = directory.add_parser(
        "import", help="upsert people from credmail's CSV or the register's exports"
    )
    imp.add_argument(
        "file", type=Path, nargs="+", help="CSV, .xls or .xlsx files, or - for standard input"
    )
    imp.add_argument(
        "--format",
        choices=("auto", "credmail", "classeviva", "guardians"),
        default="auto",
        help="credmail's CSV, the register's student export, or a guardian sheet",
    )
    imp.add_argument("--mapping", metavar="NAME", help="a saved column mapping (or a .toml file)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    imp.add_argument("--csv", type=Path, metavar="REPORT", help="write the report to a CSV file")
    imp.add_argument("--prune", action="store_true", help="remove people missing from the file")
    imp.add_argument(
        "--force", action="store_true", help="prune or retire beyond directory.max_prune_share"
    )
    imp.set_defaults(handler=cmd_directory_import)
    mapping = directory.add_parser(
        "mapping", help="column mappings for the register's exports"
    ).add_subparsers(dest="mapping_command", required=True)
    init = mapping.add_parser("init", help="write an editable mapping for a file's header row")
    init.add_argument("file", type=Path, help="a CSV, .xls or .xlsx file")
    init.add_argument("--name", help="the mapping's name (default: the file name)")
    init.add_argument("--force", action="store_true", help="overwrite a saved mapping")
    init.set_defaults(handler=cmd_directory_mapping_init)
    listing = directory.add_parser("list", help="everyone on file")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_directory_list)
    show = directory.add_parser("show", help="one person, with addresses and links")
    show.add_argument("username")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_directory_show)
    search = directory.add_parser("search", help="people whose username, name or address match")
    search.add_argument("text")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_directory_search)


class _ItalianHelp(argparse.HelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "uso: " if prefix is None else prefix)


def _italian(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Help of the review commands in Italian (for the secretariat)."""
    parser.formatter_class = _ItalianHelp
    parser._optionals.title = "opzioni"
    parser._positionals.title = "argomenti"
    parser.add_argument("-h", "--help", action="help", help="mostra questo aiuto ed esce")
    return parser


def _sub(review: Any, name: str, text: str) -> argparse.ArgumentParser:
    return _italian(review.add_parser(name, help=text, description=text, add_help=False))


def _review_commands(sub: Any) -> None:
    review = _italian(
        sub.add_parser("review", help="la coda di revisione della segreteria", add_help=False)
    ).add_subparsers(dest="review_command", required=True, title="comandi")
    listing = _sub(review, "list", "le richieste in attesa")
    listing.add_argument("--json", action="store_true", help="in formato JSON")
    listing.set_defaults(handler=cmd_review_list)
    show = _sub(review, "show", "una richiesta per intero, con le persone registrate")
    show.add_argument("id", type=int, help="numero della richiesta")
    show.set_defaults(handler=cmd_review_show)
    approve = _sub(review, "approve", "invia il collegamento a un indirizzo registrato")
    approve.add_argument("id", type=int, help="numero della richiesta")
    approve.add_argument("--person", required=True, help="codice (username) dell'account")
    approve.add_argument("--to", help="uno degli indirizzi ammessi, se ce n'è più d'uno")
    approve.add_argument(
        "--kind",
        choices=["adult", "student"],
        help="conferma un collegamento di tipo diverso da quello richiesto",
    )
    approve.add_argument(
        "--conferma",
        action="store_true",
        help="conferma una persona che non è tra quelle collegate al mittente",
    )
    approve.add_argument(
        "--ricorda",
        nargs="?",
        const="",
        metavar="GENITORE",
        help="aggiunge l'indirizzo del mittente alla persona (per uno studente minorenne al "
        "genitore/tutore indicato) e le invia lì il collegamento",
    )
    approve.set_defaults(handler=cmd_review_approve)
    reject = _sub(review, "reject", "respinge la richiesta")
    reject.add_argument("id", type=int, help="numero della richiesta")
    reject.add_argument("--note", required=True, help="il motivo (inviato con --notify)")
    reject.add_argument("--notify", action="store_true", help="avvisa il mittente")
    reject.set_defaults(handler=cmd_review_reject)
    discard = _sub(review, "discard", "archivia la richiesta senza rispondere")
    discard.add_argument("id", type=int, help="numero della richiesta")
    discard.set_defaults(handler=cmd_review_discard)
    from credmail.entrypoints.cli_review_later import register

    register(review, _sub)
    for command in (approve, reject, discard):
        command.add_argument(
            "--by",
            default=None,
            help="nota: per conto di chi (chi decide è sempre l'utente del sistema)",
        )


def _outbox_commands(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(
        dest="outbox_command", required=True
    )
    listing = outbox.add_parser("list", help="pending, sent and failed mail")
    listing.add_argument("--status", choices=["pending", "sent", "failed", "bounced"])
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_outbox_list)
    retry = outbox.add_parser(
        "retry",
        help="resume a paused delivery and send pending mail now; queue a failed message again",
    )
    retry.add_argument("id", type=int, nargs="?")
    retry.set_defaults(handler=cmd_outbox_retry)


def _token_commands(sub: Any) -> None:
    token = sub.add_parser("token", help="reset links").add_subparsers(
        dest="token_command", required=True
    )
    check = token.add_parser(
        "check", help="what a token or link is bound to (read from a prompt or standard input)"
    )
    check.set_defaults(handler=cmd_token_check)


def _backlog_commands(sub: Any) -> None:
    backlog = sub.add_parser(
        "backlog", help="requests first start left in the folder unanswered"
    ).add_subparsers(dest="backlog_command", required=True)
    backlog.add_parser("list", help="the skipped requests still waiting").set_defaults(
        handler=cmd_backlog_list
    )
    handle = backlog.add_parser("handle", help="handle them now, as if they had just arrived")
    handle.add_argument("--dry-run", action="store_true", help="list what would be handled")
    handle.set_defaults(handler=cmd_backlog_handle)


# -- handlers ---------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app(migrate=False)  # builds everything, loads every reply template
    if args.connect:
        from credmail.diagnostics import check_connections

        check_connections(ctx.settings, lambda step: print(f"ok: {step}", flush=True))
        current = ctx.app(migrate=False).schema_current()  # connects: a bad role, host... fail
        print("ok: database" + ("" if current else " (run `credmail db upgrade` before starting)"))
    print("configuration ok")
    return 0


def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app(migrate=False).upgrade_schema()
    print("database at the newest revision")
    return 0


def cmd_run(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.daemon import run_forever, run_once

    app = ctx.app()
    if args.once:
        summary = run_once(app, deliver_alongside=True)
        print(json.dumps(summary) if args.json else _once_text(summary))
        return 0
    run_forever(app)
    return 0


def _once_text(summary: dict[str, Any]) -> str:
    """`run --once` for a person: what was read, decided and sent, and the skipped backlog."""
    outcomes = summary["handled"]
    parts = [f"{n} {outcome}" for outcome, n in sorted(outcomes.items())]
    near = summary.get("near_misses", 0)
    untouched = summary["scanned"] - sum(outcomes.values()) - near
    if near:
        parts.append(f"{near} flagged as near misses (README, Near misses)")
    if untouched > 0:
        parts.append(f"{untouched} left untouched: not a credentials request")
    scanned = (
        f"scanned {_count(summary['scanned'], 'message')} ({', '.join(parts)})"
        if summary["scanned"]
        else "no new message"
    )
    text = (
        f"{scanned}; mail sent {summary['sent']},"
        f" to retry {summary['retried']}, failed {summary['failed']}"
    )
    skipped = summary["skipped_requests"]
    if skipped:
        text += (
            f"\nfirst start: {_count(skipped, 'request')} already in the folder left"
            " unanswered; see `credmail backlog list`"
        )
    return text


def cmd_directory_import(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.directory_import import import_files

    return import_files(args, ctx, _actor())


def cmd_directory_mapping_init(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.directory_import import mapping_init

    return mapping_init(args, ctx)


def _print_people(found: Sequence[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([p.as_json() for p in found], ensure_ascii=False, indent=2))
        return
    for person in found:
        print(
            f"{person.username:<12} {person.role:<9} "
            f"{person.first_name} {person.last_name}"
            f"{' [' + person.class_name + ']' if person.class_name else ''}  "
            f"{'; '.join(person.emails) or '-'}"
            f"{'' if person.active else '  (inactive)'}"
        )
    print(f"{len(found)} people")


def cmd_directory_list(args: argparse.Namespace, ctx: Context) -> int:
    _print_people(ctx.app().desks.directory.people(), args.json)
    return 0


def cmd_directory_search(args: argparse.Namespace, ctx: Context) -> int:
    _print_people(ctx.app().desks.directory.search(args.text), args.json)
    return 0


def cmd_directory_show(args: argparse.Namespace, ctx: Context) -> int:
    person = ctx.app().desks.directory.person(args.username).as_json()
    if args.json:
        print(json.dumps(person, ensure_ascii=False, indent=2))
        return 0
    for key, value in person.items():
        shown = "; ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':<12} {shown if shown else '-'}")
    return 0


def cmd_review_list(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.presentation import italian_time, kind_label, plural, reason_label

    app = ctx.app()
    items = app.desks.review.pending()
    if args.json:
        _say(json.dumps([_review_json(item) for item in items], ensure_ascii=False, indent=2))
        return 0
    if not items:
        _say("Nessuna richiesta in attesa di revisione.")
        return 0
    _say(f"{plural(len(items), 'richiesta', 'richieste')} in attesa di revisione:\n")
    for item in items:
        _say(
            f"#{item.id}  {italian_time(item.created_at, app.timezone)}  "
            f"{_line(item.sender or '?')}  [{kind_label(str(item.kind))}]"
        )
        for code in item.reasons:
            _say(f"      - {reason_label(code)}")
    return 0


def cmd_review_show(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.cli_review_later import deferred_line
    from credmail.service import presentation as words
    from credmail.service.review import ReviewError

    app = ctx.app()
    try:
        detail = app.desks.review.show(args.id)
    except ReviewError as exc:
        raise CommandError(str(exc)) from None
    item, zone = detail.item, app.timezone
    received = words.italian_time(item.created_at, zone)
    _say(f"Richiesta #{item.id} ({_decision(item.status)}), ricevuta il {received}")
    _say(f"Tipo: {words.kind_label(str(item.kind))}")
    if item.deferred_until:
        _say(deferred_line(item, zone))
    for name, value in detail.headers.items():
        _say(f"{words.header_label(name)}: {_line(words.header_value(name, value, zone))}")
    _say("\nMotivi della revisione:")
    for code in item.reasons:
        _say(f"  - {words.reason_label(code)}")
    _say("\nPersone registrate con l'indirizzo del mittente (codice: nome, ruolo):")
    today = app.clock().astimezone(app.timezone).date()
    for candidate in detail.people:
        _say("  - " + _person_line(candidate.person, today))
        for child in candidate.children:
            _say("      figlio/a: " + _person_line(child, today))
    if not detail.people:
        _say("  (nessuna)")
    _say("\nTesto del messaggio:\n" + (detail.text.strip() or "(vuoto)"))
    if item.decided_at:
        by, sent = words.decider_label(item.decided_by), words.detail_label(item.sent_summary)
        _say(
            f"\nDecisione: {_decision(item.decision)} da {_line(by)} il "
            f"{words.italian_time(item.decided_at, zone)}; inviato: {_line(sent)}"
        )
        if item.note:
            _say(f"Nota: {_line(item.note)}")
    return 0


def _decision(code: str | None) -> str:
    from credmail.service.presentation import decision_label

    return decision_label(code)


def _person_line(person: Any, today: Any) -> str:
    from credmail.service.presentation import role_label

    age = person.age_on(today)
    born = f", {age} anni" if age is not None else ""
    return _line(f"{person.username}: {person.full_name} ({role_label(str(person.role))}{born})")


def _on_behalf(args: argparse.Namespace) -> str | None:
    return f"indicato con --by: {args.by}" if args.by else None


def cmd_review_approve(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.presentation import template_label
    from credmail.service.review import Approval

    app = ctx.app()
    done = _review_action(
        lambda: app.desks.review.approve(
            args.id,
            args.person,
            _actor(),
            args.to,
            kind=args.kind,
            note=_on_behalf(args),
            confirmed=args.conferma,
            remember=args.ricorda is not None,
            remember_for=args.ricorda or None,
        )
    )
    assert isinstance(done, Approval)
    if done.remembered_for:
        _say(f"Indirizzo {_line(done.to)} aggiunto alla rubrica di {done.remembered_for}.")
    _say(
        f"Richiesta #{args.id} approvata per {done.username}: il "
        f"{template_label(done.template)} è in coda per l'invio a {_line(done.to)}."
    )
    for address in done.revoked:
        _say(f"Revocato il collegamento ancora valido inviato a {_line(address)}.")
    return 0


def cmd_review_reject(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    _review_action(
        lambda: app.desks.review.reject(
            args.id, args.note, args.notify, _actor(), extra=_on_behalf(args)
        )
    )
    told = " Il mittente sarà avvisato." if args.notify else ""
    _say(f"Richiesta #{args.id} respinta.{told}")
    return 0


def cmd_review_discard(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    _review_action(lambda: app.desks.review.discard(args.id, _actor(), note=_on_behalf(args)))
    _say(f"Richiesta #{args.id} archiviata senza risposta.")
    return 0


def cmd_outbox_list(args: argparse.Namespace, ctx: Context) -> int:
    lines = ctx.app().desks.outbox.listing(args.status)
    if args.json:
        print(json.dumps([line.as_json() for line in lines], indent=2))
        return 0
    paused = ctx.app().desks.outbox.paused_until()
    if paused is not None:
        print(f"outbox paused until {paused[0]} ({paused[1]})")
    width = max((len(line.template) for line in lines), default=16)
    for line in lines:
        _say(_outbox_line(line, width))
    if not lines:
        print(_no_outbox_lines(ctx, args.status))
    return 0


def _no_outbox_lines(ctx: Context, status: str | None) -> str:
    """An empty listing says whether the outbox is empty or only holds other mail."""
    counts = ctx.app().desks.outbox.counts()
    if not counts:
        return "outbox is empty"
    return f"no {status} mail in the outbox ({_outbox_counts(counts)})"


def _outbox_counts(counts: dict[str, int]) -> str:
    """`14 sent, 1 failed` (`empty` for none)."""
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty"


def _outbox_line(line: OutboxLine, width: int = 16) -> str:
    error = f"  last error: {line.last_error}" if line.last_error else ""
    return (
        f"{line.id:>5}  {line.status:<8} {line.template:<{width}} {line.recipient}"
        f"  attempts={line.attempts}{error}"
    )


def cmd_outbox_retry(args: argparse.Namespace, ctx: Context) -> int:
    done = ctx.app().desks.outbox.retry(args.id, _actor())
    if done.resumed:
        print("delivery resumed (it was paused on an SMTP configuration error)")
    if done.requeued is not None:
        print(f"outbox message {done.requeued} queued again")
    if args.id is None or done.due_now:
        print(f"{_count(done.due_now, 'pending message')} due now (sent on the next pass)")
    if not done.resumed and done.requeued is None:
        print("delivery was not paused")
    return 0


def _count(n: int, noun: str) -> str:
    """`1 skipped request`, `2 skipped requests`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _read_token() -> str:
    """The token is a secret: never an argument (shell history, ps); a prompt or a pipe."""
    tty = sys.stdin.isatty()
    try:
        token = getpass.getpass("Token or link: ") if tty else sys.stdin.readline()
    except EOFError:
        token = ""
    if not token.strip():
        raise CommandError("no token given (type it at the prompt or pipe it in)")
    return token.strip()


def cmd_token_check(args: argparse.Namespace, ctx: Context) -> int:
    token = _read_token()
    status = ctx.app().desks.tokens.check(token)
    print(json.dumps(status.as_json()))
    return 0 if status.valid else EXIT_FAILURE


def _print_backlog(waiting: Sequence[Waiting]) -> None:
    for entry in waiting:
        print(f"  uid {entry.uid}: {entry.subject}")


def _backlog(ctx: Context) -> BacklogDesk:
    """The Maildir refusal comes before the database is looked at."""
    app = ctx.app(migrate=False)
    app.desks.backlog.require_uids()
    _require_schema(app)
    return app.desks.backlog


def cmd_backlog_list(args: argparse.Namespace, ctx: Context) -> int:
    waiting = _backlog(ctx).waiting()
    print(f"{_count(len(waiting), 'skipped request')} waiting in the watched folder")
    _print_backlog(waiting)
    return 0


def cmd_backlog_handle(args: argparse.Namespace, ctx: Context) -> int:
    done = _backlog(ctx).handle(dry_run=args.dry_run)
    if done.dry_run:
        skipped = _count(len(done.waiting), "skipped request")
        print(f"dry run, nothing handled: {skipped} would be handled")
        _print_backlog(done.waiting)
        return 0
    handled = ", ".join(f"{n} {outcome}" for outcome, n in sorted(done.handled.items()))
    skipped = _count(len(done.waiting), "skipped request")
    print(f"handled {skipped} ({handled or 'none'}); {done.sent} sent")
    return 0


def cmd_privacy_show(args: argparse.Namespace, ctx: Context) -> int:
    held = ctx.app().desks.privacy.show(args.email)
    _say(json.dumps(held.as_json(), ensure_ascii=False, indent=2))  # subjects come from mail
    return 0


def cmd_privacy_forget(args: argparse.Namespace, ctx: Context) -> int:
    erased = ctx.app().desks.privacy.forget(args.email, _actor())
    print(json.dumps(erased.as_json()))
    return 0


def cmd_limits_show(args: argparse.Namespace, ctx: Context) -> int:
    tripped = ctx.app().desks.limits.show().tripped
    print("circuit breaker: " + ("TRIPPED (every request goes to review)" if tripped else "closed"))
    return 0


def cmd_limits_reset(args: argparse.Namespace, ctx: Context) -> int:
    done = ctx.app().desks.limits.reset(_actor())
    print("circuit breaker reset" if done.was_tripped else "circuit breaker was not tripped")
    return 0


def _print_delivery(report: dict[str, Any], failing_since_sent: bool, when: _When) -> None:
    """`ok` only while nothing failed since the last mail went out."""
    age = report["oldest_unsent_age_seconds"]
    ok = report["delivery_ok"]
    state = "FAILING" if not ok else ("RETRYING" if failing_since_sent else "ok")
    error = report["last_delivery_error_class"]
    failed = (
        f"; last error: {error} at {when(report['last_delivery_error_at'])}"
        + ("" if failing_since_sent else ", mail has been sent since")
        if error
        else ""
    )
    print(
        f"delivery {state}: oldest unsent mail "
        + (f"{age:.0f} s old" if age is not None else "none")
        + failed
        + (f"; PAUSED: {report['delivery_paused']}" if report["delivery_paused"] else "")
    )


def _oauth_commands(sub: Any) -> None:
    oauth = sub.add_parser("oauth", help="OAuth2 sign-in for the mailbox").add_subparsers(
        dest="oauth_command", required=True
    )
    login = oauth.add_parser("login", help="delegated sign-in in the terminal (device code)")
    login.set_defaults(handler=cmd_oauth_login)


def _templates_commands(sub: Any) -> None:
    templates = sub.add_parser("templates", help="reply templates and their translations")
    commands = templates.add_subparsers(dest="templates_command", required=True)
    check = commands.add_parser(
        "check",
        help="languages, missing templates and keys, unreviewed translations "
        "(exit 1 on a missing key or a render failure)",
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_templates_check)
    cli_templates.register(commands)


def cmd_templates_check(args: argparse.Namespace, ctx: Context) -> int:
    from dataclasses import asdict

    from credmail.bootstrap import templates_desk
    from credmail.web.pages import PAGES

    report = templates_desk(ctx.settings).check()
    pages = _page_findings(ctx.settings)
    page_errors = [f for f in pages if f["level"] == "error"]
    failed = bool(report.errors or page_errors)
    stale = cli_templates.stale_findings(ctx.settings, report)
    if args.json:
        data = {**asdict(report), "pages": pages, "stale": stale, "ok": not failed}
        print(json.dumps(data, ensure_ascii=False))
        return EXIT_FAILURE if failed else 0
    missing_pages = [f for f in pages if f["level"] == "warning"]
    print("replies with translations: " + ", ".join(report.templates))
    if report.italian_only:
        print(
            "Italian only (staff mail, or no person on file to choose a language): "
            + ", ".join(report.italian_only)
        )
    for lang in report.languages:
        review = (
            f"reviewed by {lang.reviewed_by} on {lang.reviewed_on}"
            if lang.reviewed
            else f"UNREVIEWED ({lang.status})"
        )
        gaps = sum(1 for gap in missing_pages if gap["language"] == lang.code)
        print(
            f"{lang.code}  {lang.name} / {lang.native_name}  {lang.direction}  "
            f"{len(lang.translated)}/{len(report.templates)} replies  "
            f"{len(PAGES) - gaps}/{len(PAGES)} pages  [{lang.origin}]  {review}"
        )
        if lang.missing:
            print(f"    missing: {', '.join(lang.missing)} (sent in Italian only)")
    for gap in missing_pages:
        print(f"    missing page {gap['language']} {gap['page']} (shown in Italian only)")
    for finding in report.errors:
        where = f" {finding.template}" if finding.template else ""
        print(f"ERROR {finding.language}{where}: {finding.message}")
    for found in page_errors:
        print(f"ERROR {found['language']} {found['page']}: {found['message']}")
    cli_templates.print_stale(stale)
    unreviewed = sum(1 for lang in report.languages if not lang.reviewed)
    missing = sum(len(lang.missing) for lang in report.languages) + len(missing_pages)
    print(
        f"{len(report.languages)} languages, {len(report.errors) + len(page_errors)} errors, "
        f"{missing} missing translations, {unreviewed} unreviewed languages"
        + (f", {len(stale)} stale translations" if stale else "")
    )
    return EXIT_FAILURE if failed else 0


def _page_findings(settings: Settings) -> list[dict[str, str | None]]:
    """The translated sections of the reset page and its outcome pages (credmail web)."""
    from zoneinfo import ZoneInfo

    from credmail.web.app import make_pages
    from credmail.web.pages import check_pages

    pages = make_pages(settings, ZoneInfo(settings.daemon.timezone))
    return [
        {"level": level, "language": code, "page": page, "message": message}
        for level, code, page, message in check_pages(pages)
    ]


def cmd_oauth_login(args: argparse.Namespace, ctx: Context) -> int:
    oauth = ctx.settings.oauth
    if oauth.provider is None or oauth.flow != "refresh_token":
        raise CommandError("oauth login needs [oauth] flow = 'refresh_token' (see README)")
    failure = ctx.app().oauth_login(sys.stdout)
    if failure is not None:
        raise CommandError(failure)
    print("signed in: the refresh token is stored, encrypted, in the database")
    return 0


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    result = ctx.app().desks.status.report()
    report = result.as_json()
    if args.json:
        print(json.dumps(report))
    else:
        _print_status(report, result.healthy, result.failing_since_sent, _local(ctx))
    return 0 if result.healthy else EXIT_FAILURE


_When = Callable[[str | None], str]


def _local(ctx: Context) -> _When:
    """An ISO time from the report as the school's clock shows it."""
    from datetime import datetime

    zone = ctx.app().timezone

    def when(iso: str | None) -> str:
        if iso is None:
            return "never"
        return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    return when


def _print_status(report: dict[str, Any], healthy: bool, failing: bool, when: _When) -> None:
    age = report["last_sync_age_seconds"]
    print(
        f"{'ok' if healthy else 'STALE'}: last successful sync {when(report['last_sync'])}"
        + (f" ({age:.0f} s ago)" if age is not None else "")
    )
    outbox = _outbox_counts(report["outbox"] or {})
    print(
        f"outbox: {outbox}; review pending: {report['review_pending']}"
        + (f" ({report['review_deferred']} deferred)" if report.get("review_deferred") else "")
        + f"; circuit breaker: {'TRIPPED' if report['circuit_breaker_tripped'] else 'closed'}"
    )
    _print_delivery(report, failing, when)
    paused = report["outbox_paused_until"]
    if paused is not None:
        print(f"outbox paused until {when(paused[0])} ({paused[1]})")
    sign_in = report["sign_in"]
    if sign_in is not None and sign_in["status"] == "needs_reauth":
        print(f"sign-in: needs re-authorisation: {sign_in['cause']}; {sign_in['fix']}")


def cmd_web(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.web import CannotListen, serve

    listen = args.listen or ctx.settings.web.listen
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen: expected host:port, got {listen!r}")
    try:
        serve(ctx.app(), ctx.settings, host.strip("[]"), int(port))
    except CannotListen as exc:
        key = "--listen" if args.listen else "web.listen"
        raise CommandError(f"cannot listen on {listen}: {exc}; check {key}") from None
    return 0


def _task_json(task: Any) -> dict[str, Any]:
    def iso(moment: Any) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": task.id,
        "status": task.status,
        "username": task.username,
        "purpose": task.purpose,
        "role": task.role,
        "first_name": task.first_name,
        "last_name": task.last_name,
        "address": task.address,
        "requested_at": iso(task.requested_at),
        "confirmed_at": iso(task.confirmed_at),
        "done_at": iso(task.done_at),
        "done_by": task.done_by,
        "note": task.note,
    }


TASK_STATUS = {"open": "da eseguire", "done": "eseguita"}


def cmd_tasks_list(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service import presentation as words

    tasks = ctx.app().desks.tasks.listing(None if args.all else "open")
    if args.json:
        print(json.dumps([_task_json(task) for task in tasks], indent=2))
        return 0
    zone = ctx.app().timezone
    for task in tasks:
        _say(
            f"{task.id:>5}  {TASK_STATUS.get(task.status, task.status):<11}  "
            f"{words.register_code(task.username):<12} "
            f"{task.last_name} {task.first_name} ({words.role_label(task.role)})  "
            f"richiesta {words.italian_time_on(task.requested_at, zone)}  "
            f"confermata {words.italian_time_on(task.confirmed_at, zone)}"
            + (f"  eseguita da {words.decider_label(task.done_by)}" if task.done_by else "")
        )
    if not tasks:
        print("nessuna attività da eseguire nel registro" if not args.all else "nessuna attività")
    return 0


def cmd_tasks_done(args: argparse.Namespace, ctx: Context) -> int:
    desk = ctx.app().desks.tasks
    if args.message and not args.confirm:
        mail = desk.preview(args.id, args.message)
        _say(f"A: {_line(mail.to)}\nOggetto: {_line(mail.subject)}\n\n{mail.text.rstrip()}\n")
        if args.note:
            _say(f"Nota interna (non inviata): {_line(args.note)}\n")
        raise CommandError(
            "niente è stato fatto: controllare il messaggio qui sopra, "
            "poi ripetere il comando con --confirm"
        )
    from credmail.service import presentation as words

    task = desk.done(args.id, _actor(), args.note, args.message)
    queued = "; l'avviso alla persona è in coda e parte con il prossimo invio"
    mailed = queued if task.address else ""
    told = " (con il messaggio)" if args.message else ""
    code = words.register_code(task.username)
    print(f"attività {task.id} ({code}) segnata come eseguita{mailed}{told}")
    return 0


# -- the September campaign -------------------------------------------------------------


def _campaign_commands(sub: Any) -> None:
    campaign = sub.add_parser(
        "campaign", help="the September mailing to new students' guardians"
    ).add_subparsers(dest="campaign_command", required=True)
    plan = campaign.add_parser("plan", help="dry run: who gets what, warnings, duration")
    plan.add_argument("name")
    plan.add_argument("--csv", type=Path, help="also write the plan as a spreadsheet (CSV)")
    plan.add_argument("--json", action="store_true", help="the plan's totals and warnings")
    plan.add_argument(
        "--preview",
        nargs="?",
        const="",
        metavar="USERNAME|ADDRESS",
        help="print one planned mail as the family reads it (default: the first)",
    )
    plan.set_defaults(handler=cmd_campaign_plan)
    start = campaign.add_parser("start", help="store the campaign; the daemon sends it")
    start.add_argument("name")
    start.add_argument("--at", help='start time, local: "YYYY-MM-DD HH:MM" (default: now)')
    start.add_argument(
        "--without-register-codes",
        action="store_true",
        help="start even when no student has a register login code (made-up usernames)",
    )
    start.set_defaults(handler=cmd_campaign_start)
    status = campaign.add_parser("status", help="queued / sent / failed / bounced, end")
    status.add_argument("name")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_campaign_status)
    for name, text, handler in (
        ("pause", "stop sending (unsent mail leaves the outbox)", cmd_campaign_pause),
        ("resume", "send again after a pause", cmd_campaign_resume),
        ("cancel", "send nothing more", cmd_campaign_cancel),
        ("extend", "add new students found in the directory since the start", cmd_campaign_extend),
    ):
        command = campaign.add_parser(name, help=text)
        command.add_argument("name")
        command.set_defaults(handler=handler)
    report = campaign.add_parser("report", help="each family's state, as a spreadsheet (CSV)")
    report.add_argument("name")
    report.add_argument("--csv", type=Path, required=True)
    report.set_defaults(handler=cmd_campaign_report)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    from credmail.entrypoints.csv_output import write_spreadsheet

    try:
        write_spreadsheet(path, [header, *rows])
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None


def cmd_campaign_plan(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints import campaign_output as output

    desk = ctx.app().desks.campaign
    if args.preview is not None:
        for line in output.preview_lines(args.name, desk.preview(args.preview or None)):
            _say(line)
        return 0
    view = desk.plan()
    if args.json:
        print(json.dumps(output.plan_json(args.name, view), ensure_ascii=False, indent=2))
    else:
        for line in output.plan_lines(args.name, view):
            _say(line)
    if args.csv:
        _write_csv(args.csv, output.CSV_HEADER, output.plan_rows(view))
        print(f"plan written to {args.csv}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_campaign_start(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.entrypoints.campaign_output import started_lines

    desk = ctx.app().desks.campaign
    started = desk.start(args.name, args.at, _actor(), without_codes=args.without_register_codes)
    when = desk.local(started.campaign.start_at).strftime("%Y-%m-%d %H:%M %Z")
    for line in started_lines(args.name, started, when):
        _say(line)
    return 0


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    share = 100 * done // total if total else 100
    return f"[{'#' * filled}{'.' * (width - filled)}] {share}%"


def cmd_campaign_status(args: argparse.Namespace, ctx: Context) -> int:
    desk = ctx.app().desks.campaign
    status = desk.status(args.name)
    info, counts = status.campaign, status.counts
    end = (
        desk.local(status.estimated_end).strftime("%Y-%m-%d %H:%M")
        if status.estimated_end
        else None
    )
    if args.json:
        print(
            json.dumps(
                {
                    "name": info.name,
                    "status": info.status,
                    "start_at": info.start_at.isoformat(),
                    "counts": counts,
                    "mails_left": status.mails_left,
                    "estimated_end": status.estimated_end.isoformat()
                    if status.estimated_end
                    else None,
                }
            )
        )
        return 0
    states = ("planned", "queued", "sent", "failed", "bounced", "cancelled", "skipped")
    print(
        f"campaign {info.name}: {info.status}, from "
        f"{desk.local(info.start_at).strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        ", ".join(f"{state} {counts.get(state, 0)}" for state in states)
        + f" (of {status.total} links)"
    )
    if sys.stdout.isatty():
        print(_bar(status.done, status.total))
    if end:
        print(f"{status.mails_left} mails left; estimated end {end}")
    return 0


def cmd_campaign_pause(args: argparse.Namespace, ctx: Context) -> int:
    withdrawn = ctx.app().desks.campaign.pause(args.name, _actor())
    print(
        f"campaign {args.name} paused; "
        f"{_count(withdrawn, 'unsent link')} taken back out of the outbox"
    )
    return 0


def cmd_campaign_resume(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app().desks.campaign.resume(args.name, _actor())
    print(f"campaign {args.name} resumed")
    return 0


def cmd_campaign_cancel(args: argparse.Namespace, ctx: Context) -> int:
    count = ctx.app().desks.campaign.cancel(args.name, _actor())
    print(f"campaign {args.name} cancelled; {_count(count, 'link')} will not be sent")
    return 0


def cmd_campaign_extend(args: argparse.Namespace, ctx: Context) -> int:
    added = ctx.app().desks.campaign.extend(args.name, _actor())
    print(f"campaign {args.name}: {_count(added, 'new link')} added")
    return 0


def cmd_campaign_report(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service import presentation as words

    desk = ctx.app().desks.campaign
    pairs = desk.report(args.name)

    def when(moment: Any) -> str:
        return desk.local(moment).strftime("%Y-%m-%d %H:%M") if moment else ""

    rows = [
        [
            p.address or "",
            p.student,
            ", ".join(p.guardians),
            words.PAIR_STATE_LABELS.get(p.state, p.state),
            when(p.queued_at),
            when(p.sent_at),
        ]
        for p in pairs
    ]
    _write_csv(
        args.csv, ["indirizzo", "studente", "genitori/tutori", "stato", "in coda", "inviata"], rows
    )
    print(f"{_count(len(rows), 'row')} written to {args.csv}")
    return 0
