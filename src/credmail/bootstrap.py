"""Wire settings to adapters and use cases: one place, for the daemon, the CLI and tests.

Nothing here connects: engines, IMAP and SMTP connect on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from credmail.adapters.db.directory_import import SqlDirectoryAdmin
from credmail.adapters.db.engine import checkpoint, is_current, make_engine, upgrade
from credmail.adapters.db.nudge import (
    PgListener,
    SocketListener,
    nudge_sender,
    resolve_mode,
    socket_fits,
    socket_path,
)
from credmail.adapters.db.oauth_store import OAuthStore, TokenKeyError, load_key
from credmail.adapters.db.pacing_store import SqlPacingStore
from credmail.adapters.db.stats import SqlStatistics
from credmail.adapters.db.trace import SqlMessageTraces
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.adapters.db.web_limits import SqlWebLimits
from credmail.adapters.db.worklist import SqlWorklist
from credmail.adapters.dkim_verifier import sender_authenticator
from credmail.adapters.errors import is_login_failure, is_transient
from credmail.adapters.explain import explain as explain
from credmail.adapters.files import EmlFileSender
from credmail.adapters.imap import ImapSource
from credmail.adapters.maildir import MaildirSource
from credmail.adapters.oauth import HttpOAuth, SignInError, TokenSource, token_source
from credmail.adapters.sealing import KeyFileSeal
from credmail.adapters.smtp import SmtpSender
from credmail.adapters.spreadsheets import SpreadsheetFiles
from credmail.config import ConfigError, Settings
from credmail.core.addresses import normalize_address
from credmail.core.campaign import PURPOSE_FIRST_ACCESS
from credmail.core.classify import SubjectRules
from credmail.core.limits import Limits
from credmail.core.privacy import AddressTagger
from credmail.core.values import DecideOptions, Outcome
from credmail.service.authentication import SenderAuthenticator
from credmail.service.campaigns import CampaignConfig, CampaignService
from credmail.service.desks import (
    AuditDesk,
    BacklogDesk,
    CampaignDesk,
    DeferralsDesk,
    Desks,
    DirectoryDesk,
    LimitsDesk,
    ObserveDesk,
    OutboxDesk,
    PrivacyDesk,
    RememberedDesk,
    ResetDesk,
    StaffDesk,
    StatsDesk,
    StatusDesk,
    TasksDesk,
    TokenDesk,
    TraceDesk,
    WorklistDesk,
)
from credmail.service.desks.near_miss import NearMissDesk
from credmail.service.desks.status import SIGN_IN_UNKNOWN
from credmail.service.desks.templates import TemplatesDesk
from credmail.service.handle_request import MessageProcessor
from credmail.service.import_files import ImportLimits
from credmail.service.inbox_sync import Pipeline, Policy
from credmail.service.link_backends import LinkBackend, WorklistBackend
from credmail.service.links import LinkIssuer, TemplateLinkIssuer, TokenLinkIssuer
from credmail.service.notify.alerts import TEMPLATE_ALERT, AlertConfig, AlertService
from credmail.service.notify.digest import TEMPLATE_DIGEST, DigestConfig, DigestService
from credmail.service.notify.mailing import StaffMail
from credmail.service.outbox.delivery import OutboxDelivery, RetryPolicy
from credmail.service.outbox.nudge_poll import OutboxPoll
from credmail.service.outbox.queue import Mailer
from credmail.service.outbox.worker import OutboxWorker
from credmail.service.pacing import Pacer, PacingLimits
from credmail.service.ports import Clock, MailSender, MailSource, NudgeListener
from credmail.service.reply_templates import ReplyComposer, TemplateProblem
from credmail.service.review import ReviewDesk

TEMPLATES = [
    "link_adult",
    "link_student",
    "minor_procedure",
    "review_rejected",
    "acknowledge_unknown",
    "rate_limited",
    "link_already_sent",
    "task_done",
    "campaign_new_student",
    TEMPLATE_DIGEST,
    TEMPLATE_ALERT,
    "near_miss_guide",
]
# Replies that never reach a person on file, so never have a language to add:
# the neutral acknowledgement goes to a sender the directory does not know; the
# digest and the alerts go to the school's own staff.
ITALIAN_ONLY = ["acknowledge_unknown", TEMPLATE_DIGEST, TEMPLATE_ALERT]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    engine: Engine
    uow: SqlUnitOfWorkFactory
    pipeline: Pipeline
    delivery: OutboxDelivery
    review: ReviewDesk
    source_factory: Callable[[], MailSource]
    clock: Clock
    timezone: ZoneInfo
    desks: Desks
    outbox_worker: OutboxWorker
    is_login_failure: Callable[[BaseException], bool]
    campaigns: CampaignService
    digest: DigestService
    alerts: AlertService
    nudge_mode: str = "off"  # daemon.nudge made concrete: listen, socket, poll or off

    def nudge_listener(self) -> NudgeListener | None:
        """The daemon's end of the nudge (None: `off`); it connects when opened."""
        return _nudge_listener(self.nudge_mode, self.engine, self.uow, self.settings, self.clock)

    def schema_current(self) -> bool:
        """True when the database is at the newest migration."""
        return is_current(self.engine)

    def upgrade_schema(self) -> None:
        upgrade(self.engine)

    def web_limits(self) -> SqlWebLimits:
        """The reset page's per-client counters, shared by every `credmail web` process."""
        return SqlWebLimits(self.engine)

    def checkpoint(self) -> None:
        """SQLite: fold the WAL into the database (erased data must not linger there)."""
        checkpoint(self.engine)

    def oauth_login(self, out: TextIO) -> str | None:
        """`credmail oauth login`: the device-code flow in the terminal; stores the refresh
        token encrypted. Returns why it failed (cause and fix), or None."""
        try:
            key = load_key(self.settings.oauth.token_key_file, create=True)
        except TokenKeyError as exc:
            raise ConfigError(str(exc)) from None
        try:
            HttpOAuth(self.settings.oauth, OAuthStore(self.engine, key)).device_login(out)
        except SignInError as exc:
            return f"{exc}" + (f"; {exc.fix}" if exc.fix else "")
        return None

    def close(self) -> None:
        self.engine.dispose()


def database_engine(settings: Settings) -> Engine:
    """The school's database: its url, its schema in a shared one, its pool."""
    database = settings.database
    return make_engine(
        database.url,
        schema=database.schema_,
        pool_size=database.pool_size,
        prepared_statements=database.prepared_statements,
    )


def bootstrap(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    sender: MailSender | None = None,
    source_factory: Callable[[], MailSource] | None = None,
    authenticator: SenderAuthenticator | None = None,
) -> App:
    engine = database_engine(settings)
    mode = nudge_mode(settings, engine)
    uow = SqlUnitOfWorkFactory(
        engine, settings.review.max_pending_raw_bytes, nudge_sender(mode, engine)
    )
    timezone = ZoneInfo(settings.daemon.timezone)
    mailer = Mailer(_links(settings), _composer(settings), timezone)
    retry = RetryPolicy(
        settings.smtp.retry_base_seconds,
        settings.smtp.retry_max_seconds,
        settings.smtp.max_attempts,
    )
    tokens = oauth_tokens(settings, engine)
    pacer = _pacer(settings, engine)
    delivery = OutboxDelivery(
        uow,
        sender or make_sender(settings, tokens),
        clock,
        retry,
        mailer.finalize,
        is_transient,
        pacer,
    )
    campaigns = CampaignService(
        uow,
        mailer,
        clock,
        timezone,
        CampaignConfig(
            settings.campaign.batch_size,
            settings.campaign.daily_cap,
            pacer.limits,
            settings.school.front_desk_hours,
            settings.smtp.from_address,
            settings.campaign.send_to_pec,
        ),
    )
    worker = OutboxWorker(delivery, threading.Event())
    processor = MessageProcessor(
        _policy(settings, timezone),
        uow,
        mailer,
        authenticator or _authenticator(settings),
        clock,
        AddressTagger(settings.privacy.log_key),
        is_transient,
        on_outbox=worker.nudge,
    )
    pipeline = Pipeline(processor)
    sources = source_factory or (lambda: make_source(settings, tokens))
    review = ReviewDesk(uow, mailer, clock, timezone, settings.review.staff)
    desks = _desks(
        settings, engine, uow, clock, review, pipeline, delivery, sources, mailer, campaigns
    )
    staff_mail = StaffMail(uow, mailer.composer, clock, timezone)
    return App(
        settings=settings,
        engine=engine,
        uow=uow,
        pipeline=pipeline,
        delivery=delivery,
        review=review,
        source_factory=sources,
        clock=clock,
        timezone=timezone,
        desks=desks,
        outbox_worker=worker,
        is_login_failure=is_login_failure,
        campaigns=campaigns,
        nudge_mode=mode,
        digest=DigestService(staff_mail, _digest_config(settings)),
        alerts=AlertService(staff_mail, desks.status.report, _alert_config(settings)),
    )


def _digest_config(settings: Settings) -> DigestConfig:
    notify = settings.notify
    return DigestConfig(
        notify.staff,
        notify.digest_at,
        notify.weekdays,
        settings.school.closed_on,
        f"{settings.public_url}/console",
    )


def _alert_config(settings: Settings) -> AlertConfig:
    notify = settings.notify
    return AlertConfig(
        notify.admin,
        timedelta(minutes=notify.mailbox_down_minutes),
        timedelta(hours=notify.alert_repeat_hours),
        notify.bounce_share,
        notify.bounce_min_mails,
    )


def nudge_mode(settings: Settings, engine: Engine) -> str:
    """`daemon.nudge` made concrete for this database (adapters/db/nudge.py)."""
    mode = resolve_mode(settings.daemon.nudge, engine, settings.database.prepared_statements)
    path = socket_path(engine)
    if mode == "socket" and (path is None or not socket_fits(path)):
        raise ConfigError(
            f"daemon.nudge = 'socket': the socket {path or '(in-memory database)'} cannot be "
            "bound (an in-memory database, or a path over 107 bytes); use 'poll'"
        )
    return mode


def _nudge_listener(
    mode: str, engine: Engine, uow: SqlUnitOfWorkFactory, settings: Settings, clock: Clock
) -> NudgeListener | None:
    path = socket_path(engine)
    if mode == "listen":
        return PgListener(engine)
    if mode == "socket" and path is not None:
        return SocketListener(path)
    if mode == "poll":
        return OutboxPoll(uow, clock, settings.daemon.nudge_poll_seconds)
    return None


def _desks(
    settings: Settings,
    engine: Engine,
    uow: SqlUnitOfWorkFactory,
    clock: Clock,
    review: ReviewDesk,
    pipeline: Pipeline,
    delivery: OutboxDelivery,
    sources: Callable[[], MailSource],
    mailer: Mailer,
    campaigns: CampaignService,
) -> Desks:
    daemon = settings.daemon
    quota_pause = SqlPacingStore(engine).paused
    audit = AuditDesk(uow, clock)
    limits = ImportLimits(settings.directory.max_import_bytes, settings.directory.max_import_rows)
    return Desks(
        review=review,
        outbox=OutboxDesk(uow, clock, quota_pause),
        limits=LimitsDesk(uow, clock),
        directory=DirectoryDesk(
            SqlDirectoryAdmin(uow),
            clock,
            review.timezone,
            settings.directory.max_prune_share,
            audit,
            SpreadsheetFiles(limits),
            limits,
        ),
        tokens=TokenDesk(uow, clock),
        privacy=PrivacyDesk(uow, clock, after_erase=lambda: checkpoint(engine)),
        status=StatusDesk(
            uow,
            clock,
            timedelta(seconds=daemon.stale_after_seconds),
            timedelta(seconds=daemon.outbox_stale_after_seconds),
            sign_in=lambda: _sign_in_state(settings, engine),
            quota_pause=quota_pause,
        ),
        backlog=BacklogDesk(pipeline, sources, delivery, settings.mailbox.kind == "imap"),
        trace=TraceDesk(SqlMessageTraces(uow)),
        staff=StaffDesk(
            uow,
            clock,
            issuer=f"credmail {settings.replies.school_name}",
            max_age=timedelta(hours=settings.console.session_max_hours),
            seal=KeyFileSeal(settings.console.totp_key_file, "console.totp_key_file"),
        ),
        audit=audit,
        observe=ObserveDesk(uow, clock, timedelta(seconds=daemon.stale_after_seconds)),
        reset=ResetDesk(uow, clock, make_link_backend(settings), settings.web.claim_seconds),
        tasks=TasksDesk(uow, mailer, clock),
        campaign=CampaignDesk(campaigns, audit),
        stats=StatsDesk(
            SqlStatistics(uow), clock, review.timezone, settings.privacy.retention_days
        ),
        deferrals=DeferralsDesk(uow, clock, review.timezone, review),
        remembered=RememberedDesk(uow, review),
        worklist=WorklistDesk(uow, SqlWorklist(uow), mailer, clock, review.timezone),
        near_miss=NearMissDesk(uow, pipeline.processor, clock, review.authorize),
    )


def make_link_backend(settings: Settings) -> LinkBackend:
    """What spending a link on the reset page does (`links.backend`; the settings already
    hold its section). The LDAP and webhook adapters are imported only when chosen, so the
    daemon never loads ldap3 or zxcvbn; nothing connects here."""
    if settings.links.backend == "ldap" and settings.ldap is not None:
        from credmail.adapters.ldap_backend import LdapBackend

        return LdapBackend.from_settings(settings.ldap)
    if settings.links.backend == "webhook" and settings.webhook is not None:
        from credmail.adapters.webhook_backend import WebhookBackend

        return WebhookBackend.from_settings(settings.webhook)
    return WorklistBackend()


def _sign_in_state(settings: Settings, engine: Engine) -> dict[str, str | None] | None:
    """The OAuth2 sign-in state the daemon recorded (None without OAuth2)."""
    if "oauth2" not in (settings.mailbox.auth, settings.smtp.auth):
        return None
    state = OAuthStore(engine).state()
    if state is None:
        return {"status": SIGN_IN_UNKNOWN, "cause": None, "fix": None}
    return {"status": state.status, "cause": state.cause, "fix": state.fix}


def _policy(settings: Settings, timezone: ZoneInfo) -> Policy:
    classify, mailbox = settings.classify, settings.mailbox
    folders = mailbox.folders
    own = {normalize_address(settings.smtp.from_address)}
    if "@" in mailbox.username:
        own.add(normalize_address(mailbox.username))
    return Policy(
        rules=SubjectRules.build(
            classify.student_phrases,
            classify.adult_phrases,
            classify.reply_prefixes,
            classify.ignored_subject_tags,
            classify.spam_subject_tags,
        ),
        own_addresses=frozenset(own),
        folders={
            Outcome.ANSWERED: folders.answered,
            Outcome.REVIEW: folders.review,
            Outcome.AUTOMATED: folders.automated,
            Outcome.ERRORS: folders.errors,
        },
        timezone=timezone,
        process_existing=mailbox.process_existing,
        max_message_bytes=mailbox.max_message_bytes,
        batch_size=mailbox.batch_size,
        max_attempts=mailbox.max_attempts,
        options=DecideOptions(
            acknowledge_unknown=settings.replies.acknowledge_unknown,
        ),
        limits=Limits(**settings.limits.model_dump()),
        single_use_links=settings.links.issuer == "token",
        near_miss=classify.near_miss_policy(),
    )


def _authenticator(settings: Settings) -> SenderAuthenticator:
    auth = settings.auth
    return sender_authenticator(
        auth.require,
        auth.trusted_authserv_ids,
        auth.verify_dkim,
        auth.dns_timeout_seconds,
        trusted_arc_sealers=auth.trusted_arc_sealers,
    )


def templates_desk(settings: Settings) -> TemplatesDesk:
    """`credmail templates check`: needs no database and connects to nothing."""
    return TemplatesDesk(_composer(settings), TEMPLATES, ITALIAN_ONLY)


def template_values(settings: Settings) -> dict[str, Any]:
    """What every reply and page may say about the school and what happens next: the
    same values for the mails and the reset page, so that they agree."""
    replies = settings.replies
    webhook = settings.webhook
    return {
        "school_name": replies.school_name,
        "signature": replies.signature,
        "contact": replies.contact,
        "front_desk_hours": settings.school.front_desk_hours,
        "backend": settings.links.backend,
        "worklist_days": settings.links.worklist_days,
        "webhook_next_steps": webhook.next_steps if webhook else "",
        "password_min_length": settings.ldap.password_min_length if settings.ldap else 12,
        **settings.classify.subjects_to_write(),
    }


def _composer(settings: Settings) -> ReplyComposer:
    replies = settings.replies
    composer = ReplyComposer(
        settings.smtp.from_address,
        settings.smtp.from_name,
        template_values(settings),
        replies.templates_dir,
    )
    try:
        composer.check(TEMPLATES)
    except TemplateProblem as exc:
        raise ConfigError(f"replies.templates_dir: {exc}") from None
    broken = [code for code, language in composer.languages.items() if language.problem]
    if broken:  # those languages are skipped: their replies go in Italian only
        structlog.get_logger("credmail.replies").warning("reply.languages_unusable", codes=broken)
    return composer


def _links(settings: Settings) -> LinkIssuer:
    if settings.links.issuer == "template":
        return TemplateLinkIssuer(settings.links.url_template)
    return TokenLinkIssuer(
        settings.links.base_url,
        settings.links.ttl_minutes,
        {PURPOSE_FIRST_ACCESS: timedelta(days=settings.campaign.link_ttl_days)},
    )


def _pacer(settings: Settings, engine: Engine) -> Pacer:
    smtp = settings.smtp
    provider = settings.oauth.provider or _provider_of(smtp.host)
    limits = PacingLimits.build(
        provider if smtp.outbox_dir is None else None,
        smtp.max_per_second,
        smtp.max_per_minute,
        smtp.max_per_day,
        smtp.quota_pause_seconds,
        smtp.rate_limit_pause_seconds,
    )
    return Pacer(limits, SqlPacingStore(engine))


def _provider_of(host: str) -> str | None:
    """Presets apply to the big providers' submission hosts even with password sign-in."""
    if host.endswith(("office365.com", "outlook.com")):
        return "microsoft"
    if host.endswith(("gmail.com", "googlemail.com")):
        return "google"
    return None


def database_file_missing(settings: Settings) -> bool:
    """A SQLite database whose file does not exist (opening it would create an empty one)."""
    url = make_url(settings.database.url)
    return url.get_backend_name() == "sqlite" and not Path(url.database or "").exists()


@contextmanager
def connection_probes(
    settings: Settings,
) -> Iterator[tuple[MailSource, Callable[[], MailSender]]]:
    """The mail source and (built on demand) the SMTP sender `credmail check-config
    --connect` signs in with; the database they read OAuth2 tokens from is closed after."""
    engine = database_engine(settings)
    try:
        tokens = oauth_tokens(settings, engine)
        yield make_source(settings, tokens), lambda: make_sender(settings, tokens)
    finally:
        engine.dispose()


def oauth_tokens(settings: Settings, engine: Engine) -> TokenSource | None:
    """The one OAuth2 identity IMAP and SMTP share, when either signs in with it."""
    if "oauth2" not in (settings.mailbox.auth, settings.smtp.auth):
        return None
    try:
        key = load_key(settings.oauth.token_key_file)
    except TokenKeyError as exc:
        raise ConfigError(str(exc)) from None
    return token_source(settings.oauth, OAuthStore(engine, key))


def make_sender(settings: Settings, tokens: TokenSource | None = None) -> MailSender:
    smtp = settings.smtp
    if smtp.outbox_dir is not None:
        return EmlFileSender(smtp.outbox_dir)
    if smtp.auth == "oauth2":
        username = smtp.username or settings.mailbox.username
        return SmtpSender(
            smtp.host,
            smtp.effective_port,
            smtp.security,
            username,
            None,
            smtp.ca_file,
            smtp.timeout_seconds,
            tokens,
            smtp.keep_alive_seconds,
        )
    return SmtpSender(
        smtp.host,
        smtp.effective_port,
        smtp.security,
        smtp.username if smtp.auth == "password" else "",
        smtp.password,
        smtp.ca_file,
        smtp.timeout_seconds,
        keep_seconds=smtp.keep_alive_seconds,
    )


def make_source(settings: Settings, tokens: TokenSource | None = None) -> MailSource:
    mailbox = settings.mailbox
    if mailbox.kind == "maildir":
        assert mailbox.maildir_path is not None
        return MaildirSource(mailbox.maildir_path)
    folders = mailbox.folders
    return ImapSource(
        mailbox.host,
        mailbox.effective_port,
        mailbox.security,
        mailbox.username,
        mailbox.password or "",
        mailbox.folder,
        [folders.answered, folders.review, folders.automated, folders.errors],
        mailbox.ca_file,
        mailbox.timeout_seconds,
        mailbox.use_idle,
        mailbox.idle_refresh_seconds,
        tokens if mailbox.auth == "oauth2" else None,
    )
