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
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.adapters.errors import is_transient
from credmail.adapters.files import EmlFileSender
from credmail.adapters.imap import ImapSource
from credmail.adapters.maildir import MaildirSource
from credmail.adapters.smtp import SmtpSender
from credmail.config import ConfigError, Settings
from credmail.core.addresses import normalize_address
from credmail.core.classify import SubjectRules
from credmail.core.limits import Limits
from credmail.core.privacy import AddressTagger
from credmail.core.values import DecideOptions, Outcome
from credmail.service.authentication import SenderAuthenticator
from credmail.service.links import LinkIssuer, TemplateLinkIssuer, TokenLinkIssuer
from credmail.service.message import MessageProcessor
from credmail.service.outbox import OutboxDelivery, RetryPolicy
from credmail.service.outgoing import Mailer
from credmail.service.pipeline import Clock, Pipeline, Policy
from credmail.service.ports import MailSender, MailSource
from credmail.service.replies import ReplyComposer, TemplateProblem
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
    delivery = OutboxDelivery(
        uow, sender or make_sender(settings), clock, retry, mailer.finalize, is_transient
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
        source_factory or (lambda: make_source(settings)),
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
    )


def _authenticator(settings: Settings) -> SenderAuthenticator:
    auth = settings.auth
    return SenderAuthenticator(
        auth.require,
        auth.trusted_authserv_ids,
        auth.verify_dkim,
        auth.dns_timeout_seconds,
        trusted_arc_sealers=auth.trusted_arc_sealers,
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


def make_sender(settings: Settings) -> MailSender:
    smtp = settings.smtp
    if smtp.outbox_dir is not None:
        return EmlFileSender(smtp.outbox_dir)
    return SmtpSender(
        smtp.host,
        smtp.effective_port,
        smtp.security,
        smtp.username,
        smtp.password,
        smtp.ca_file,
        smtp.timeout_seconds,
    )


def make_source(settings: Settings) -> MailSource:
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
    )
