"""The `credmail` command line: configuration, database, directory, daemon, review, outbox."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from credmail.bootstrap import App, bootstrap
from credmail.config import ConfigError, Settings, config_path, load_settings
from credmail.logs import configure_logging

if TYPE_CHECKING:
    from credmail.adapters.db.directory_import import ImportSummary

EXIT_CONFIG = 2
EXIT_USAGE = 64
EXIT_FAILURE = 1


class Context:
    """What a command needs; the app (and its engine) is built on first use, closed at exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: App | None = None

    def app(self, *, migrate: bool = True) -> App:
        if self._app is None:
            self._app = bootstrap(self.settings)
            if migrate:
                _ensure_schema(self._app)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.engine.dispose()


Handler = Callable[[argparse.Namespace, Context], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    if args.command == "demo":
        from credmail.demo import run_demo

        return int(run_demo(args.workdir))
    try:
        settings = load_settings(config_path(args.config))
    except ConfigError as exc:
        print(f"credmail: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.logging.level, settings.logging.format)
    handler: Handler = args.handler
    context = Context(settings)
    try:
        return handler(args, context)
    except ConfigError as exc:
        print(f"credmail: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CommandError as exc:
        print(f"credmail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        context.close()


class CommandError(Exception):
    """A failure worded for the person at the terminal."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credmail", description=__doc__)
    parser.add_argument("--config", help="TOML config file (default: $CREDMAIL_CONFIG)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("check-config", help="validate the configuration and exit").set_defaults(
        handler=cmd_check_config
    )
    run = sub.add_parser("run", help="watch the mailbox until SIGTERM")
    run.add_argument("--once", action="store_true", help="handle what is there now and exit")
    run.set_defaults(handler=cmd_run)
    demo = sub.add_parser("demo", help="the whole flow on embedded sample data")
    demo.add_argument("--workdir", type=Path, help="keep the demo files here")
    demo.set_defaults(handler=None)
    status = sub.add_parser("status", help="last successful sync, outbox and review counts")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    _db_commands(sub)
    _directory_commands(sub)
    _review_commands(sub)
    _outbox_commands(sub)
    _token_commands(sub)
    _privacy_commands(sub)
    _limits_commands(sub)
    _oauth_commands(sub)
    return parser


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
    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)


def _directory_commands(sub: Any) -> None:
    directory = sub.add_parser("directory", help="recognized people").add_subparsers(
        dest="directory_command", required=True
    )
    imp = directory.add_parser("import", help="upsert people from a CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    imp.add_argument("--prune", action="store_true", help="remove people missing from the file")
    imp.add_argument("--force", action="store_true", help="prune beyond directory.max_prune_share")
    imp.set_defaults(handler=cmd_directory_import)
    listing = directory.add_parser("list", help="everyone on file")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_directory_list)
    show = directory.add_parser("show", help="one person, with addresses and links")
    show.add_argument("username")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_directory_show)


def _review_commands(sub: Any) -> None:
    review = sub.add_parser("review", help="the secretariat's review queue").add_subparsers(
        dest="review_command", required=True
    )
    listing = review.add_parser("list", help="pending requests")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_review_list)
    show = review.add_parser("show", help="one request in full")
    show.add_argument("id", type=int)
    show.set_defaults(handler=cmd_review_show)
    approve = review.add_parser("approve", help="send the link to the address on file")
    approve.add_argument("id", type=int)
    approve.add_argument("--person", required=True, help="username of the account")
    approve.add_argument("--to", help="one of the person's addresses on file")
    approve.set_defaults(handler=cmd_review_approve)
    reject = review.add_parser("reject", help="close the request")
    reject.add_argument("id", type=int)
    reject.add_argument("--note", required=True, help="the reason (sent with --notify)")
    reject.add_argument("--notify", action="store_true", help="tell the sender")
    reject.set_defaults(handler=cmd_review_reject)
    discard = review.add_parser("discard", help="close the request silently")
    discard.add_argument("id", type=int)
    discard.set_defaults(handler=cmd_review_discard)
    for command in (approve, reject, discard):
        command.add_argument("--by", default=None, help="who decides (default: the OS user)")


def _outbox_commands(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(
        dest="outbox_command", required=True
    )
    listing = outbox.add_parser("list", help="pending, sent and failed mail")
    listing.add_argument("--status", choices=["pending", "sent", "failed"])
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_outbox_list)
    retry = outbox.add_parser("retry", help="queue a failed message again")
    retry.add_argument("id", type=int)
    retry.set_defaults(handler=cmd_outbox_retry)


def _token_commands(sub: Any) -> None:
    token = sub.add_parser("token", help="reset links").add_subparsers(
        dest="token_command", required=True
    )
    check = token.add_parser("check", help="what a token or link is bound to")
    check.add_argument("token")
    check.set_defaults(handler=cmd_token_check)


# -- handlers ---------------------------------------------------------------------------


def _ensure_schema(app: App) -> None:
    from credmail.adapters.db.engine import is_current, upgrade

    if not is_current(app.engine):
        upgrade(app.engine)


def cmd_check_config(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app(migrate=False)  # builds everything, loads every reply template, connects nothing
    print("configuration ok")
    return 0


def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.adapters.db.engine import upgrade

    upgrade(ctx.app(migrate=False).engine)
    print("database at the newest revision")
    return 0


def cmd_run(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.runners.daemon import run_forever, run_once

    app = ctx.app()
    if args.once:
        print(json.dumps(run_once(app)))
        return 0
    run_forever(app)
    return 0


def cmd_directory_import(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.adapters.db.directory_import import import_records
    from credmail.service.directory_csv import (
        DELIMITERS,
        DirectoryError,
        decode,
        detect_delimiter,
        read_directory,
    )

    try:
        data = args.file.read_bytes()
        delimiter = detect_delimiter(decode(data))
        print(f"{args.file}: fields separated by {DELIMITERS[delimiter]} ({delimiter!r})")
        app = ctx.app()
        records = read_directory(data, app.clock().astimezone(app.timezone).date())
        with app.uow() as uow:
            summary = import_records(uow.session, records, prune=args.prune)
            share = ctx.settings.directory.max_prune_share
            refusal = None if args.force else summary.prune_refusal(share)
            if not args.dry_run and refusal is None:
                uow.commit()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except DirectoryError as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        print("nothing imported", file=sys.stderr)
        return EXIT_FAILURE
    return _import_report(args, summary, refusal)


def _import_report(args: argparse.Namespace, summary: ImportSummary, refusal: str | None) -> int:
    verb = "would remove" if args.dry_run or refusal else "removed"
    for person in summary.removed_people:
        print(f"{verb}: {person}")
    if refusal:
        print(f"credmail: {refusal}; nothing imported", file=sys.stderr)
        return EXIT_FAILURE
    prefix = "dry run, nothing written: " if args.dry_run else ""
    print(prefix + summary.as_text())
    return 0


def cmd_directory_list(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.adapters.db.directory_import import people

    with ctx.app().uow() as uow:
        found = people(uow.session)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    for person in found:
        print(
            f"{person['username']:<12} {person['role']:<9} "
            f"{person['first_name']} {person['last_name']}"
            f"{' [' + person['class'] + ']' if person['class'] else ''}  "
            f"{'; '.join(person['emails']) or '-'}"
        )
    print(f"{len(found)} people")
    return 0


def cmd_directory_show(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.adapters.db.directory_import import people

    with ctx.app().uow() as uow:
        found = people(uow.session, args.username)
    if not found:
        raise CommandError(f"no person with username {args.username}")
    (person,) = found
    if args.json:
        print(json.dumps(person, ensure_ascii=False, indent=2))
        return 0
    for key, value in person.items():
        shown = "; ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':<12} {shown if shown else '-'}")
    return 0


def cmd_review_list(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.review import fmt_time, reason_label

    app = ctx.app()
    items = app.review.pending()
    if args.json:
        print(json.dumps([_review_json(item) for item in items], ensure_ascii=False, indent=2))
        return 0
    if not items:
        print("Nessuna richiesta in attesa di revisione.")
        return 0
    print(f"{len(items)} richieste in attesa di revisione:\n")
    for item in items:
        print(
            f"#{item.id}  {fmt_time(item.created_at, app.timezone)}  {item.sender or '?'}"
            f"  [{item.kind}]"
        )
        for code in item.reasons:
            print(f"      - {reason_label(code)} ({code})")
    return 0


def _review_json(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
        "message_id": item.message_id,
        "sender": item.sender,
        "kind": str(item.kind),
        "subject": item.subject,
        "reasons": list(item.reasons),
    }


def cmd_review_show(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.review import ReviewError, fmt_time, reason_label

    app = ctx.app()
    try:
        detail = app.review.show(args.id)
    except ReviewError as exc:
        raise CommandError(str(exc)) from None
    item = detail.item
    received = fmt_time(item.created_at, app.timezone)
    print(f"Richiesta #{item.id} ({item.status}), ricevuta il {received}")
    print(f"Tipo: {item.kind}")
    for name, value in detail.headers.items():
        print(f"{name}: {value}")
    print("\nMotivi della revisione:")
    for code in item.reasons:
        print(f"  - {reason_label(code)} ({code})")
    print("\nPersone registrate con l'indirizzo del mittente:")
    for person in detail.people or []:
        born = f", nato/a il {person.birth_date:%d/%m/%Y}" if person.birth_date else ""
        print(f"  - {person.username}: {person.full_name} ({person.role}{born})")
    if not detail.people:
        print("  (nessuna)")
    print("\nTesto del messaggio:\n" + (detail.text.strip() or "(vuoto)"))
    if item.decided_at:
        print(
            f"\nDecisione: {item.decision} da {item.decided_by} il "
            f"{fmt_time(item.decided_at, app.timezone)}; inviato: {item.sent_summary}"
        )
    return 0


def _by(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())


def _review_action(action: Callable[[], object]) -> object:
    from credmail.service.review import ReviewError

    try:
        return action()
    except ReviewError as exc:
        raise CommandError(str(exc)) from None


def cmd_review_approve(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    sent = _review_action(lambda: app.review.approve(args.id, args.person, _by(args), args.to))
    print(f"Richiesta #{args.id} approvata: in coda {sent}.")
    return 0


def cmd_review_reject(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    _review_action(lambda: app.review.reject(args.id, args.note, args.notify, _by(args)))
    told = " Il mittente sarà avvisato." if args.notify else ""
    print(f"Richiesta #{args.id} respinta.{told}")
    return 0


def cmd_review_discard(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    _review_action(lambda: app.review.discard(args.id, _by(args)))
    print(f"Richiesta #{args.id} archiviata senza risposta.")
    return 0


def cmd_outbox_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.uow() as uow:
        entries = uow.outbox.listing(args.status)
    rows = [
        {
            "id": e.id,
            "status": e.status,
            "template": e.template,
            "recipient": e.recipient,
            "attempts": e.attempts,
            "created_at": e.created_at.isoformat(),
            "next_attempt_at": e.next_attempt_at.isoformat() if e.status == "pending" else None,
            "sent_at": e.sent_at.isoformat() if e.sent_at else None,
            "last_error": e.last_error,
        }
        for e in entries
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    paused = _outbox_paused(app)
    if paused is not None:
        print(f"outbox paused until {paused[0]} ({paused[1]})")
    for row in rows:
        error = f"  last error: {row['last_error']}" if row["last_error"] else ""
        print(
            f"{row['id']:>5}  {row['status']:<8} {row['template']:<16} {row['recipient']}"
            f"  attempts={row['attempts']}{error}"
        )
    if not rows:
        print("outbox is empty")
    return 0


def cmd_outbox_retry(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.uow() as uow:
        entry = uow.outbox.get(args.id)
        if entry is None or entry.status != "failed" or entry.raw is None:
            raise CommandError(f"outbox message {args.id} is not a failed message")
        uow.outbox.requeue(args.id, app.clock())
        uow.commit()
    print(f"outbox message {args.id} queued again")
    return 0


def cmd_token_check(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.links import check_token

    app = ctx.app()
    with app.uow() as uow:
        status = check_token(uow, args.token, app.clock())
    print(json.dumps(status.as_json()))
    return 0 if status.valid else EXIT_FAILURE


def _address(value: str) -> str:
    from credmail.core.addresses import AddressError, normalize_address

    try:
        return normalize_address(value)
    except AddressError as exc:
        raise CommandError(str(exc)) from None


def cmd_privacy_show(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.privacy import show

    app = ctx.app()
    with app.uow() as uow:
        held = show(uow, _address(args.email), app.clock())
    print(json.dumps(held, ensure_ascii=False, indent=2))
    return 0


def cmd_privacy_forget(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.service.privacy import forget

    app = ctx.app()
    with app.uow() as uow:
        erased = forget(uow, _address(args.email))
        uow.commit()
    print(json.dumps({"erased": erased}))
    return 0


def cmd_limits_show(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.app().uow() as uow:
        tripped = uow.breaker.tripped()
    print("circuit breaker: " + ("TRIPPED (every request goes to review)" if tripped else "closed"))
    return 0


def cmd_limits_reset(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.uow() as uow:
        was_tripped = uow.breaker.reset(app.clock())
        uow.commit()
    print("circuit breaker reset" if was_tripped else "circuit breaker was not tripped")
    return 0


def _oauth_commands(sub: Any) -> None:
    oauth = sub.add_parser("oauth", help="OAuth2 sign-in for the mailbox").add_subparsers(
        dest="oauth_command", required=True
    )
    login = oauth.add_parser("login", help="delegated sign-in in the terminal (device code)")
    login.set_defaults(handler=cmd_oauth_login)


def cmd_oauth_login(args: argparse.Namespace, ctx: Context) -> int:
    from credmail.adapters.db.oauth_store import OAuthStore, TokenKeyError, load_key
    from credmail.adapters.oauth import HttpOAuth, SignInError

    oauth = ctx.settings.oauth
    if oauth.provider is None or oauth.flow != "refresh_token":
        raise CommandError("oauth login needs [oauth] flow = 'refresh_token' (see README)")
    try:
        key = load_key(oauth.token_key_file, create=True)
    except TokenKeyError as exc:
        raise ConfigError(str(exc)) from None
    store = OAuthStore(ctx.app().engine, key)
    try:
        HttpOAuth(oauth, store).device_login(sys.stdout)
    except SignInError as exc:
        raise CommandError(f"{exc}" + (f"; {exc.fix}" if exc.fix else "")) from None
    print("signed in: the refresh token is stored, encrypted, in the database")
    return 0


def _outbox_paused(app: App) -> tuple[str, str] | None:
    """(until, reason) while a provider's quota reply holds the whole outbox."""
    from credmail.adapters.db.pacing_store import SqlPacingStore

    paused = SqlPacingStore(app.engine).paused()
    if paused is None or paused[0] <= app.clock():
        return None
    return paused[0].isoformat(), paused[1]


def _sign_in_state(app: App) -> dict[str, Any] | None:
    """The OAuth2 sign-in state the daemon recorded (None without OAuth2)."""
    from credmail.adapters.db.oauth_store import OAuthStore

    if "oauth2" not in (app.settings.mailbox.auth, app.settings.smtp.auth):
        return None
    state = OAuthStore(app.engine).state()
    if state is None:
        return {"status": "unknown", "cause": None, "fix": None}
    return {"status": state.status, "cause": state.cause, "fix": state.fix}


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    from datetime import timedelta

    from credmail.service.status import status

    app = ctx.app()
    stale_after = timedelta(seconds=app.settings.daemon.stale_after_seconds)
    with app.uow() as uow:
        report = status(uow, app.clock(), stale_after)
    sign_in = report["sign_in"] = _sign_in_state(app)
    paused = _outbox_paused(app)
    report["outbox_paused_until"] = paused[0] if paused else None
    if sign_in is not None and sign_in["status"] == "needs_reauth":
        report["healthy"] = False
    if args.json:
        print(json.dumps(report))
    else:
        age = report["last_sync_age_seconds"]
        state = "ok" if report["healthy"] else "STALE"
        print(
            f"{state}: last successful sync {report['last_sync'] or 'never'}"
            + (f" ({age:.0f} s ago)" if age is not None else "")
        )
        print(
            f"outbox: {report['outbox'] or {}}; review pending: {report['review_pending']}"
            f"; circuit breaker: {'TRIPPED' if report['circuit_breaker_tripped'] else 'closed'}"
        )
        if paused is not None:
            print(f"outbox paused until {paused[0]} ({paused[1]})")
        if sign_in is not None and sign_in["status"] == "needs_reauth":
            print(f"sign-in: needs re-authorisation: {sign_in['cause']}; {sign_in['fix']}")
    return 0 if report["healthy"] else EXIT_FAILURE
