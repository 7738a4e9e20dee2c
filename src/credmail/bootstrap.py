"""Wire settings to adapters and use cases: one place, for the daemon, the CLI and tests.

Nothing here connects: engines, IMAP and SMTP connect on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from credmail.adapters.db.engine import make_engine
from credmail.adapters.db.oauth_store import OAuthStore, TokenKeyError, load_key
from credmail.adapters.db.pacing_store import SqlPacingStore
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.adapters.dkim_verifier import sender_authenticator
from credmail.adapters.errors import is_transient
from credmail.adapters.files import EmlFileSender
from credmail.adapters.imap import ImapSource
from credmail.adapters.maildir import MaildirSource
from credmail.adapters.oauth import TokenSource, token_source
from credmail.adapters.smtp import SmtpSender
from credmail.config import ConfigError, Settings
from credmail.core.addresses import normalize_address
from credmail.core.classify import SubjectRules
from credmail.core.limits import Limits
from credmail.core.privacy import AddressTagger
from credmail.core.values import DecideOptions, Outcome
from credmail.service.authentication import SenderAuthenticator
from credmail.service.handle_request import MessageProcessor
from credmail.service.inbox_sync import Pipeline, Policy
from credmail.service.links import LinkIssuer, TemplateLinkIssuer, TokenLinkIssuer
from credmail.service.outbox.delivery import OutboxDelivery, RetryPolicy
from credmail.service.outbox.queue import Mailer
from credmail.service.pacing import Pacer, PacingLimits
from credmail.service.ports import Clock, MailSender, MailSource
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
]


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
    links: LinkIssuer
    source_factory: Callable[[], MailSource]
    clock: Clock
    timezone: ZoneInfo


def bootstrap(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    sender: MailSender | None = None,
    source_factory: Callable[[], MailSource] | None = None,
    authenticator: SenderAuthenticator | None = None,
) -> App:
    engine = make_engine(settings.database.url)
    uow = SqlUnitOfWorkFactory(engine, settings.review.max_pending_raw_bytes)
    timezone = ZoneInfo(settings.daemon.timezone)
    links = _links(settings)
    mailer = Mailer(links, _composer(settings), timezone)
    processor = MessageProcessor(
        _policy(settings, timezone),
        uow,
        mailer,
        authenticator or _authenticator(settings),
        clock,
        AddressTagger(settings.privacy.log_key),
        is_transient,
    )
    pipeline = Pipeline(processor)
    retry = RetryPolicy(
        settings.smtp.retry_base_seconds,
        settings.smtp.retry_max_seconds,
        settings.smtp.max_attempts,
    )
    tokens = oauth_tokens(settings, engine)
    delivery = OutboxDelivery(
        uow,
        sender or make_sender(settings, tokens),
        clock,
        retry,
        mailer.finalize,
        is_transient,
        _pacer(settings, engine),
    )
    review = ReviewDesk(uow, mailer, clock, timezone, settings.review.staff)
    return App(
        settings,
        engine,
        uow,
        pipeline,
        delivery,
        review,
        links,
        source_factory or (lambda: make_source(settings, tokens)),
        clock,
        timezone,
    )


def _policy(settings: Settings, timezone: ZoneInfo) -> Policy:
    classify, mailbox = settings.classify, settings.mailbox
    folders = mailbox.folders
    own = {normalize_address(settings.smtp.from_address)}
    if "@" in mailbox.username:
        own.add(normalize_address(mailbox.username))
    return Policy(
        rules=SubjectRules.build(
            classify.student_phrases, classify.adult_phrases, classify.reply_prefixes
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
    )


def _authenticator(settings: Settings) -> SenderAuthenticator:
    auth = settings.auth
    return sender_authenticator(
        auth.require, auth.trusted_authserv_ids, auth.verify_dkim, auth.dns_timeout_seconds
    )


def _composer(settings: Settings) -> ReplyComposer:
    replies = settings.replies
    composer = ReplyComposer(
        settings.smtp.from_address,
        settings.smtp.from_name,
        {
            "school_name": replies.school_name,
            "signature": replies.signature,
            "contact": replies.contact,
        },
        replies.templates_dir,
    )
    try:
        composer.check(TEMPLATES)
    except TemplateProblem as exc:
        raise ConfigError(f"replies.templates_dir: {exc}") from None
    return composer


def _links(settings: Settings) -> LinkIssuer:
    if settings.links.issuer == "template":
        return TemplateLinkIssuer(settings.links.url_template)
    return TokenLinkIssuer(settings.links.base_url, settings.links.ttl_minutes)


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
        )
    return SmtpSender(
        smtp.host,
        smtp.effective_port,
        smtp.security,
        smtp.username if smtp.auth == "password" else "",
        smtp.password,
        smtp.ca_file,
        smtp.timeout_seconds,
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
