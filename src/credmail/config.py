"""Settings: one TOML file, CREDMAIL_* environment overrides, *_file secrets, strict keys.

`load_settings` either returns a validated Settings or raises ConfigError with one
message naming the offending key; nothing connects before that.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from credmail.core.addresses import AddressError, is_loopback_host, normalize_address
from credmail.core.classify import (
    DEFAULT_ADULT_PHRASES,
    DEFAULT_IGNORED_SUBJECT_TAGS,
    DEFAULT_REPLY_PREFIXES,
    DEFAULT_SPAM_SUBJECT_TAGS,
    DEFAULT_STUDENT_PHRASES,
)
from credmail.core.near_miss import NearMissRules
from credmail.core.near_miss_policy import NearMissPolicy
from credmail.core.networks import trusted_networks
from credmail.database_url import check_database_url
from credmail.near_miss_rules import load_near_miss_rules

ENV_PREFIX = "CREDMAIL_"
ENV_CONFIG = "CREDMAIL_CONFIG"
PLACEHOLDER_SECRETS = {"changeme", "change-me", "password", "secret", "xxx"}

Security = Literal["tls", "starttls", "none"]


class ConfigError(Exception):
    """A configuration problem, worded for the sysadmin, naming the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Section)


def _default() -> Any:
    """An absent section: validated when the settings are loaded (naming the section in
    an error), never when this module is imported (a default such as daemon.timezone
    depends on the system)."""
    return Field(default_factory=dict, validate_default=True)


def _with_secret_files(section: S, *names: str) -> S:
    """Resolve `<name>_file` keys into their values (trailing newline stripped)."""
    found: dict[str, str] = {}
    for name in names:
        path = getattr(section, f"{name}_file")
        if path is None:
            continue
        try:
            found[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"{name}_file: cannot read {path}: {exc.strerror}") from exc
    return section.model_copy(update=found) if found else section


def _check_transport(host: str, security: str) -> None:
    if security == "none" and not is_loopback_host(host):
        raise ValueError(f"security = 'none' is allowed only toward a loopback host, not {host}")


def _check_secret(value: str | None, key: str) -> None:
    if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"{key} is a placeholder; set the real secret")


class FoldersSettings(Section):
    answered: str = "Credenziali/Evase"
    review: str = "Credenziali/Revisione"
    automated: str = "Credenziali/Scartate"
    errors: str = "Credenziali/Errori"


class MailboxSettings(Section):
    kind: Literal["imap", "maildir"] = "imap"
    auth: Literal["password", "oauth2"] = "password"
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "tls"
    ca_file: Path | None = None
    username: str = ""
    password: str | None = None
    password_file: Path | None = None
    folder: str = "INBOX"
    maildir_path: Path | None = None
    process_existing: bool = False
    use_idle: bool = True
    idle_refresh_seconds: int = Field(default=240, ge=10, le=1740)
    poll_interval_seconds: int = Field(default=60, ge=1)
    timeout_seconds: float = Field(default=60, gt=0)
    batch_size: int = Field(default=100, ge=1)
    max_message_bytes: int = Field(default=10_000_000, ge=1024)
    max_attempts: int = Field(default=3, ge=1)
    folders: FoldersSettings = _default()

    @model_validator(mode="after")
    def _validate(self) -> MailboxSettings:
        if self.kind == "maildir":
            if self.maildir_path is None:
                raise ValueError("maildir_path is required when kind = 'maildir'")
            return self
        _check_transport(self.host, self.security)
        _check_secret(self.password, "password")
        _check_targets(self.folder, self.folders)
        return self  # password_file is read only by commands that connect: with_mail_secrets

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


def _same_folder(a: str, b: str) -> bool:
    """INBOX is case-insensitive in IMAP; a trailing or doubled '/' names the same folder."""

    def norm(name: str) -> str:
        name = "/".join(part for part in name.split("/") if part)
        return (
            "INBOX" + name[5:]
            if name.upper().startswith("INBOX") and (len(name) == 5 or name[5] == "/")
            else name
        )

    return norm(a) == norm(b)


def _check_targets(watched: str, folders: FoldersSettings) -> None:
    """A target equal to the watched folder would move each message back in, forever."""
    for key, target in folders.model_dump().items():
        if _same_folder(target, watched):
            raise ValueError(
                f"folders.{key} = {target!r} is the watched folder; "
                "each outcome needs a folder other than mailbox.folder"
            )


class SmtpSettings(Section):
    auth: Literal["password", "oauth2", "none"] = "password"
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "starttls"
    ca_file: Path | None = None
    username: str = ""
    password: str | None = None
    password_file: Path | None = None
    from_address: str  # the school's sender address: no default
    from_name: str = "Segreteria"
    timeout_seconds: float = Field(default=30, gt=0)
    keep_alive_seconds: float = Field(default=60, ge=0)  # 0: a new connection per drain
    retry_base_seconds: float = Field(default=30, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    max_attempts: int = Field(default=50, ge=1)
    outbox_dir: Path | None = None
    max_per_second: float | None = Field(default=None, gt=0)
    max_per_minute: int | None = Field(default=None, ge=1)
    max_per_day: int | None = Field(default=None, ge=1)
    quota_pause_seconds: float = Field(default=86_400, gt=0)
    rate_limit_pause_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _validate(self) -> SmtpSettings:
        try:
            normalize_address(self.from_address)
        except AddressError as exc:
            raise ValueError(f"from_address: {exc}") from exc
        if self.outbox_dir is None:
            _check_transport(self.host, self.security)
        _check_secret(self.password, "password")
        return self  # password_file is read only by commands that connect: with_mail_secrets

    @property
    def effective_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "none": 25}[self.security]


class DatabaseSettings(Section):
    url: str = "sqlite:///credmail.db"
    url_file: Path | None = None
    # PostgreSQL only: the school's own schema in a database shared by many schools
    # (tables, and the migrations' version table, live there; search_path per transaction).
    schema_: str = Field(default="", alias="schema")
    # Connections kept open by this instance; 0 = none kept (connect per use).
    pool_size: int = Field(default=5, ge=0, le=100)
    # false behind PgBouncer in transaction mode (server-side prepared statements break there).
    prepared_statements: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _validate(self) -> DatabaseSettings:
        resolved = _with_secret_files(self, "url")
        check_database_url(resolved.url)
        if resolved.schema_:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", resolved.schema_):
                raise ValueError(
                    "schema must be a lower-case PostgreSQL name (letters, digits, _), "
                    f"not {resolved.schema_!r}"
                )
            if resolved.url.startswith("sqlite"):
                raise ValueError(
                    "schema is for PostgreSQL only; SQLite keeps one school per file: "
                    "remove [database] schema or use a postgresql:// url"
                )
        return resolved


class LinksSettings(Section):
    issuer: Literal["token", "template"] = "token"
    base_url: str = ""  # the school's register: no default; required with issuer = "token"
    ttl_minutes: int = Field(default=60, ge=1)
    max_ttl_minutes: int = Field(default=1440, ge=1)
    url_template: str = ""
    # What spending a link on the reset page does (credmail web): a verified task for the
    # secretariat (registers without an API, such as ClasseViva), an LDAP password, a webhook.
    backend: Literal["worklist", "ldap", "webhook"] = "worklist"
    # worklist: the page and the task tell the family within how many working days.
    worklist_days: int = Field(default=2, ge=1, le=30)

    @model_validator(mode="after")
    def _validate(self) -> LinksSettings:
        if self.ttl_minutes > self.max_ttl_minutes:
            raise ValueError(f"ttl_minutes may be at most max_ttl_minutes ({self.max_ttl_minutes})")
        if self.issuer == "token" and not self.base_url:
            raise ValueError("base_url is required when issuer = 'token' (the school's register)")
        if self.issuer == "token" and not self.base_url.startswith("https://"):
            raise ValueError("base_url must start with https://")
        if self.issuer == "template" and "{username}" not in self.url_template:
            raise ValueError("url_template must contain {username} when issuer = 'template'")
        return self


class WebSettings(Section):
    """`credmail web`: the reset page (and, later, the secretariat's console)."""

    listen: str = "127.0.0.1:8080"  # host:port; behind the school's TLS reverse proxy
    public_url: str = ""  # empty: links.base_url (the address families open)
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-* we believe
    ipv6_prefix: int = Field(default=64, ge=32, le=128)  # IPv6 clients are limited per /N
    # Signs the forms' CSRF tokens: the same key in every `credmail web` of the school.
    secret_key: str | None = None
    secret_key_file: Path | None = None
    logo_file: Path | None = None  # PNG/SVG/JPEG shown in the page header
    post_per_minute: int = Field(default=10, ge=1)  # per client address
    invalid_per_hour: int = Field(default=20, ge=1)  # invalid-token pages per client address
    invalid_min_seconds: float = Field(default=0.25, ge=0, le=5)  # invalid pages take as long
    claim_seconds: int = Field(default=120, ge=10)  # an external backend's hold on a link

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        trusted_networks(value)  # a ValueError names the range: web.trusted_proxies: ...
        return value

    @field_validator("secret_key_file")
    @classmethod
    def _private(cls, path: Path | None) -> Path | None:
        if path is not None and path.exists() and path.stat().st_mode & 0o004:
            raise ValueError(f"{path} is readable by every user; chmod o-rwx it")
        return path

    @model_validator(mode="after")
    def _validate(self) -> WebSettings:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen: expected host:port, got {self.listen!r}")
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise ValueError("public_url must be an http(s) URL")
        if self.logo_file is not None and not self.logo_file.is_file():
            raise ValueError(f"logo_file: no such file {self.logo_file}")
        return _web_secret_key(self)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _web_secret_key(web: WebSettings) -> WebSettings:
    """The key from web.secret_key_file (checked: at least 32 characters)."""
    resolved = _with_secret_files(web, "secret_key")
    _check_secret(resolved.secret_key, "secret_key")
    if resolved.secret_key is not None and len(resolved.secret_key) < 32:
        raise ValueError("secret_key must be at least 32 characters (openssl rand -hex 32)")
    return resolved


class ConsoleSettings(Section):
    """The secretariat's console (`credmail web`, under /console)."""

    session_max_hours: float = Field(default=12, gt=0, le=24 * 7)  # however much it is used
    totp_key_file: Path | None = None  # Fernet key sealing the TOTP secrets (`staff totp`)


class ClassifySettings(Section):
    student_phrases: tuple[str, ...] = DEFAULT_STUDENT_PHRASES
    adult_phrases: tuple[str, ...] = DEFAULT_ADULT_PHRASES
    reply_prefixes: tuple[str, ...] = DEFAULT_REPLY_PREFIXES
    ignored_subject_tags: tuple[str, ...] = DEFAULT_IGNORED_SUBJECT_TAGS
    spam_subject_tags: tuple[str, ...] = DEFAULT_SPAM_SUBJECT_TAGS
    # Requests without the exact subject (README, "Near misses").
    near_miss: Literal["ignore", "flag", "guide"] = "flag"
    near_miss_guide_days: int = Field(default=30, ge=1, le=366)
    near_miss_keyword: str = Field(default="ForseCredenziali", pattern=r"^[A-Za-z0-9_.-]{1,60}$")
    near_miss_rules_file: Path | None = None  # replaces the shipped rules
    near_miss_vocabulary: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    near_miss_rules: tuple[dict[str, Any], ...] = ()  # before the shipped rules

    @model_validator(mode="after")
    def _validate_near_miss(self) -> ClassifySettings:
        if self.near_miss != "ignore":
            self.near_miss_rules_loaded()
        return self

    def near_miss_policy(self) -> NearMissPolicy:
        if self.near_miss == "ignore":
            return NearMissPolicy()
        return NearMissPolicy(
            self.near_miss,
            self.near_miss_rules_loaded(),
            self.near_miss_guide_days,
            self.near_miss_keyword,
        )

    def subjects_to_write(self) -> dict[str, str]:
        """The phrases the replies tell families to write (the first configured)."""
        adult = (self.adult_phrases or DEFAULT_ADULT_PHRASES)[0]
        return {
            "adult_subject": adult,
            "student_subject": (self.student_phrases or DEFAULT_STUDENT_PHRASES)[0],
        }

    def near_miss_rules_loaded(self) -> NearMissRules:
        """The rules in force (ValueError naming the problem in one line)."""
        return load_near_miss_rules(
            self.near_miss_rules_file, self.near_miss_vocabulary, self.near_miss_rules
        )


class RepliesSettings(Section):
    templates_dir: Path | None = None
    school_name: str  # signs every reply: no default
    signature: str = "La Segreteria"
    acknowledge_unknown: bool = False
    contact: str = (
        "Per informazioni può rispondere a questo messaggio, che sarà letto dalla "
        "segreteria, oppure rivolgersi allo sportello negli orari di apertura."
    )


class AuthSettings(Section):
    require: Literal["dmarc_or_dkim", "off"] = "dmarc_or_dkim"
    trusted_authserv_ids: tuple[str, ...] = ()
    trusted_arc_sealers: tuple[str, ...] = ()
    verify_dkim: bool = False
    dns_timeout_seconds: float = Field(default=5, gt=0)
    review_encoded_display_names: bool | None = None  # deprecated and ignored (README)


class LimitsSettings(Section):
    account_links_per_15_minutes: int = Field(default=1, ge=1)
    address_links_per_day: int = Field(default=3, ge=1)
    sender_replies_per_day: int = Field(default=5, ge=1)
    global_replies_per_hour: int = Field(default=300, ge=1)
    acknowledgements_per_hour: int = Field(default=20, ge=1)


class DirectorySettings(Section):
    max_prune_share: float = Field(default=0.2, ge=0, le=1)
    # Saved column mappings for the register's exports (`directory mapping init`), NAME.toml.
    mappings_dir: Path = Path("~/.config/credmail/mappings")
    # One imported file at most: bytes (refused before parsing) and rows (counted while they
    # stream). The largest schools have about 2,000 pupils and 3,500 guardians.
    max_import_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_import_rows: int = Field(default=20_000, ge=10)


class ReviewSettings(Section):
    staff: tuple[str, ...] = ()
    max_pending_raw_bytes: int = Field(default=100_000_000, ge=0)


class PrivacySettings(Section):
    log_key: str | None = None
    log_key_file: Path | None = None
    retention_days: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _validate(self) -> PrivacySettings:
        return _with_secret_files(self, "log_key")


class DaemonSettings(Section):
    timezone: str = "Europe/Rome"
    outbox_interval_seconds: int = Field(default=30, ge=1)
    housekeeping_interval_minutes: int = Field(default=60, ge=1)
    stale_after_seconds: int = Field(default=900, ge=10)
    outbox_stale_after_seconds: int = Field(default=3600, ge=10)
    # SIGTERM to exit, whatever the servers do; keep it under the grace period
    # (terminationGracePeriodSeconds, systemd's TimeoutStopSec)
    shutdown_seconds: int = Field(default=10, ge=2)
    # How a decision made elsewhere (console, CLI) wakes the outbox (adapters/db/nudge.py):
    # auto = listen on PostgreSQL (poll behind PgBouncer, i.e. prepared_statements = false),
    # socket on SQLite; poll = a cheap indexed check every nudge_poll_seconds; off = only
    # the outbox_interval_seconds tick.
    nudge: Literal["auto", "listen", "socket", "poll", "off"] = "auto"
    nudge_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _validate(self) -> DaemonSettings:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            if not available_timezones():
                raise ValueError(
                    f"timezone: no time zone database to look {self.timezone!r} up in; "
                    "install the tzdata package (a dependency of credmail) in its environment"
                ) from None
            raise ValueError(
                f"timezone: unknown time zone {self.timezone!r} (e.g. 'Europe/Rome')"
            ) from None
        return self


class CampaignSettings(Section):
    """The September mailing: links valid for days (not bound by links.max_ttl_minutes,
    which caps the links answering requests), its own daily cap, its batches."""

    link_ttl_days: int = Field(default=14, ge=1, le=90)
    daily_cap: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=20, ge=1, le=500)
    tick_seconds: float = Field(default=15, gt=0)
    send_to_pec: bool = False  # PEC boxes often refuse ordinary mail: skipped, with a warning


class SchoolSettings(Section):
    front_desk_hours: str = ""  # e.g. "lunedì-venerdì 8:00-10:00" (campaign mail)
    # Days the secretariat is closed (no digest): "2026-12-24" or "2026-12-23..2027-01-06".
    closed_days: tuple[str, ...] = ()

    @field_validator("closed_days")
    @classmethod
    def _days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            first, _, last = entry.partition("..")
            try:
                start, end = date.fromisoformat(first), date.fromisoformat(last or first)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)"
                ) from None
            if end < start:
                raise ValueError(f"{entry!r} ends before it starts")
        return value

    def closed_on(self, day: date) -> bool:
        for entry in self.closed_days:
            first, _, last = entry.partition("..")
            if date.fromisoformat(first) <= day <= date.fromisoformat(last or first):
                return True
        return False


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    for address in value:
        try:
            normalize_address(address)
        except AddressError as exc:
            raise ValueError(f"{address!r}: {exc}") from None
    return value


class NotifySettings(Section):
    """Mail for the school's own people: the secretariat's digest of what waits, and the
    sysadmin's alerts when something needs a person (service/notify)."""

    staff: tuple[str, ...] = ()  # the digest's recipients (the secretariat's mailboxes)
    digest_at: tuple[str, ...] = ("07:45",)  # HH:MM, school time, on school days
    digest_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")  # add "sat" if open
    admin: tuple[str, ...] = ()  # the alerts' recipients (the sysadmin)
    mailbox_down_minutes: float = Field(default=15, gt=0)
    alert_repeat_hours: float = Field(default=24, gt=0)
    bounce_share: float = Field(default=0.1, gt=0, le=1)  # of a campaign's (address, student) pairs
    bounce_min_mails: int = Field(default=20, ge=1)  # sent before the share counts
    tick_seconds: float = Field(default=60, gt=0)  # how often the daemon looks

    @field_validator("staff", "admin")
    @classmethod
    def _recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _addresses(value)

    @field_validator("digest_at")
    @classmethod
    def _times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for moment in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", moment):
                raise ValueError(f'{moment!r} is not a time HH:MM (e.g. "07:45")')
        return tuple(sorted(set(value)))

    @field_validator("digest_days")
    @classmethod
    def _weekdays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for day in value:
            if day.lower() not in WEEKDAYS:
                raise ValueError(f"{day!r} is not one of {', '.join(WEEKDAYS)}")
        return tuple(day.lower() for day in value)

    @property
    def weekdays(self) -> frozenset[int]:
        """The digest's days as date.weekday() numbers (Monday 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.digest_days)


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


IDENTITY_SECTIONS = ("smtp", "links", "replies")


class OAuthSettings(Section):
    """One OAuth2 identity, shared by IMAP and SMTP (see adapters/oauth.py)."""

    provider: Literal["microsoft", "google", "generic"] | None = None
    flow: Literal["client_credentials", "service_account", "refresh_token"] = "client_credentials"
    tenant_id: str = ""
    authority_host: str = "https://login.microsoftonline.com"
    client_id: str = ""
    client_secret: str | None = None
    client_secret_file: Path | None = None
    certificate_file: Path | None = None
    certificate_thumbprint: str = ""
    service_account_file: Path | None = None
    subject: str = ""
    token_url: str = ""
    device_authorization_url: str = ""
    scopes: tuple[str, ...] = ()
    token_key_file: Path | None = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=30, gt=0)
    retry_minutes: float = Field(default=10, ge=0.01)

    @model_validator(mode="after")
    def _validate(self) -> OAuthSettings:
        if self.provider is None:
            return self
        _check_secret(self.client_secret, "client_secret")
        resolved = _with_secret_files(self, "client_secret")
        for key in _oauth_required_keys(resolved):
            if not getattr(resolved, key):
                raise ValueError(
                    f"{key} is required when provider = '{self.provider}' and flow = '{self.flow}'"
                )
        if resolved.flow == "client_credentials" and not (
            resolved.client_secret or resolved.certificate_file
        ):
            raise ValueError(
                "client_secret (or client_secret_file, or certificate_file "
                "with certificate_thumbprint) is required for client_credentials"
            )
        if resolved.certificate_file and not resolved.certificate_thumbprint:
            raise ValueError("certificate_thumbprint is required with certificate_file")
        return resolved

    @property
    def effective_scopes(self) -> tuple[str, ...]:
        if self.scopes:
            return self.scopes
        return DEFAULT_SCOPES.get((self.provider or "", self.flow), ())

    @property
    def effective_token_url(self) -> str:
        if self.token_url or self.provider != "microsoft":
            return self.token_url or GOOGLE_TOKEN_URL
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def effective_device_url(self) -> str:
        if self.device_authorization_url or self.provider != "microsoft":
            return self.device_authorization_url or GOOGLE_DEVICE_URL
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/devicecode"


GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105
GOOGLE_DEVICE_URL = "https://oauth2.googleapis.com/device/code"
DEFAULT_SCOPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("microsoft", "client_credentials"): ("https://outlook.office365.com/.default",),
    ("microsoft", "refresh_token"): (
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ),
    ("google", "service_account"): ("https://mail.google.com/",),
    ("google", "refresh_token"): ("https://mail.google.com/",),
}
_FLOWS = {
    "microsoft": ("client_credentials", "refresh_token"),
    "google": ("service_account", "refresh_token"),
    "generic": ("client_credentials", "refresh_token"),
}


def _oauth_required_keys(oauth: OAuthSettings) -> list[str]:
    """The keys a provider and flow need, in the order an error should name them."""
    provider, flow = oauth.provider or "", oauth.flow
    if flow not in _FLOWS[provider]:
        raise ValueError(
            f"flow = '{flow}' is not available with provider = '{provider}' "
            f"(use one of: {', '.join(_FLOWS[provider])})"
        )
    keys = {"microsoft": ["tenant_id"], "generic": ["token_url"]}.get(provider, [])
    if flow == "service_account":
        return ["service_account_file", "subject"]
    keys.append("client_id")
    if flow == "refresh_token":
        keys.append("token_key_file")
        if provider == "generic":
            keys += ["device_authorization_url", "scopes"]
    return keys


def _is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host = host[1 : host.index("]")] if host.startswith("[") and "]" in host else host.split(":")[0]
    return is_loopback_host(host)


class LdapSettings(Section):
    """The school's own directory: the reset page sets the password there (links.backend)."""

    url: str  # ldaps://dc.scuola.example or ldap://... with start_tls
    mode: Literal["openldap", "active_directory"] = "openldap"
    bind_dn: str  # the service account that may set users' passwords
    bind_password: str | None = None
    bind_password_file: Path | None = None
    base_dn: str
    user_filter: str = "(uid={username})"  # "(sAMAccountName={username})" for Active Directory
    start_tls: bool = False
    ca_file: Path | None = None
    connect_timeout_seconds: float = Field(default=5, gt=0)
    timeout_seconds: float = Field(default=10, gt=0)
    password_min_length: int = Field(default=12, ge=8, le=128)
    password_min_score: int = Field(default=3, ge=0, le=4)  # zxcvbn's 0..4 strength score

    @model_validator(mode="after")
    def _validate(self) -> LdapSettings:
        scheme = self.url.split("://", 1)[0].lower() if "://" in self.url else ""
        if scheme not in ("ldap", "ldaps"):
            raise ValueError(f"url must start with ldaps:// or ldap://, not {self.url!r}")
        encrypted = scheme == "ldaps" or self.start_tls
        if not encrypted and not _is_loopback_url(self.url):
            raise ValueError(
                "url: passwords travel to the directory; use ldaps:// or start_tls = true "
                "(plain ldap:// is allowed only toward a loopback host)"
            )
        if self.mode == "active_directory" and scheme != "ldaps" and not self.start_tls:
            raise ValueError("mode = 'active_directory' sets unicodePwd, which needs ldaps://")
        if "{username}" not in self.user_filter:
            raise ValueError("user_filter must contain {username}, e.g. '(uid={username})'")
        if not (self.user_filter.startswith("(") and self.user_filter.endswith(")")):
            raise ValueError("user_filter must be an LDAP filter in parentheses")
        resolved = _with_secret_files(self, "bind_password")
        _check_secret(resolved.bind_password, "bind_password")
        if not resolved.bind_password:
            raise ValueError("bind_password_file (or bind_password) is required")
        return resolved


class WebhookSettings(Section):
    """The school's own system: a signed POST when a family confirms a link (links.backend)."""

    url: str
    secret: str | None = None
    secret_file: Path | None = None
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0, le=30)
    ca_file: Path | None = None
    # What the family reads about what happens after confirming (mails and the page).
    next_steps: str = (
        "Dopo la conferma, la richiesta passa al sistema della scuola, che Le invierà "
        "le istruzioni all'indirizzo a cui è arrivato questo collegamento."
    )

    @model_validator(mode="after")
    def _validate(self) -> WebhookSettings:
        if not self.url.startswith("https://") and not (
            self.url.startswith("http://") and _is_loopback_url(self.url)
        ):
            raise ValueError(
                "url must start with https:// (plain http:// only toward a loopback host)"
            )
        resolved = _with_secret_files(self, "secret")
        _check_secret(resolved.secret, "secret")
        if not resolved.secret:
            raise ValueError("secret_file (or secret) is required: the HMAC key")
        if len(resolved.secret) < 32:
            raise ValueError("secret must be at least 32 characters (e.g. openssl rand -hex 32)")
        return resolved


class Settings(Section):
    mailbox: MailboxSettings = _default()
    smtp: SmtpSettings
    database: DatabaseSettings = _default()
    links: LinksSettings
    classify: ClassifySettings = _default()
    replies: RepliesSettings
    auth: AuthSettings = _default()
    limits: LimitsSettings = _default()
    review: ReviewSettings = _default()
    directory: DirectorySettings = _default()
    privacy: PrivacySettings = _default()
    daemon: DaemonSettings = _default()
    campaign: CampaignSettings = _default()
    school: SchoolSettings = _default()
    notify: NotifySettings = _default()
    logging: LoggingSettings = _default()
    oauth: OAuthSettings = _default()
    ldap: LdapSettings | None = None
    webhook: WebhookSettings | None = None
    web: WebSettings = _default()
    console: ConsoleSettings = _default()

    @property
    def public_url(self) -> str:
        """Where families open the reset page: web.public_url, else links.base_url."""
        return (self.web.public_url or self.links.base_url).rstrip("/")

    @model_validator(mode="after")
    def _validate_backend(self) -> Settings:
        backend = self.links.backend
        if backend in ("ldap", "webhook") and getattr(self, backend) is None:
            raise ValueError(f"links.backend = '{backend}' needs a [{backend}] section")
        return self

    @model_validator(mode="after")
    def _validate_claim(self) -> Settings:
        """A press holds its link for web.claim_seconds: longer than the webhook may take,
        or a second press could call the school's system while the first still waits."""
        hook = self.webhook
        if self.links.backend != "webhook" or hook is None:
            return self
        backoff = sum(hook.retry_backoff_seconds * 2**n for n in range(hook.retries))
        worst = (hook.retries + 1) * hook.timeout_seconds + backoff
        if self.web.claim_seconds <= worst:
            raise ValueError(
                f"web.claim_seconds ({self.web.claim_seconds}) must be longer than the "
                "webhook's worst case, (webhook.retries + 1) x webhook.timeout_seconds plus "
                f"webhook.retry_backoff_seconds doubling ({worst:g} s)"
            )
        return self

    @model_validator(mode="after")
    def _validate_nudge(self) -> Settings:
        sqlite = self.database.url.startswith("sqlite")
        if self.daemon.nudge == "listen" and sqlite:
            raise ValueError("daemon.nudge = 'listen' is for PostgreSQL; use 'socket' or 'auto'")
        if self.daemon.nudge == "socket" and not sqlite:
            raise ValueError("daemon.nudge = 'socket' is for SQLite; use 'listen' or 'auto'")
        return self

    @model_validator(mode="after")
    def _validate_oauth(self) -> Settings:
        for key, auth in (("mailbox.auth", self.mailbox.auth), ("smtp.auth", self.smtp.auth)):
            if auth == "oauth2" and self.oauth.provider is None:
                raise ValueError(
                    f"{key} = 'oauth2' needs an [oauth] section with provider and flow"
                )
        return self

    @model_validator(mode="before")
    @classmethod
    def _identity_sections(cls, data: Any) -> Any:
        """The sections holding the school's identity have required keys: an absent
        section is validated as empty, so the error names the key, not the section."""
        if isinstance(data, dict):
            data = {name: {} for name in IDENTITY_SECTIONS} | data
        return data


def with_mail_secrets(settings: Settings) -> Settings:
    """Read mailbox.password_file and smtp.password_file: only commands that connect call
    this, so reviewing or listing needs no mail secret."""
    update: dict[str, Section] = {}
    for name in ("mailbox", "smtp"):
        section = getattr(settings, name)
        if name == "mailbox" and section.kind != "imap":
            continue
        try:
            update[name] = _with_secret_files(section, "password")
        except ValueError as exc:
            raise ConfigError(f"{name}.{exc}") from None
    return settings.model_copy(update=update)


def load_settings(path: Path | None, environ: dict[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply CREDMAIL_SECTION__KEY overrides, validate."""
    env = dict(os.environ if environ is None else environ)
    data = _read_toml(path) if path else {}
    _apply_env(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def config_path(cli_value: str | None, environ: dict[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    value = cli_value or env.get(ENV_CONFIG)
    return Path(value) if value else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _apply_env(data: dict[str, Any], env: dict[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG or value == "":
            continue  # an empty variable is unset, as in a shell
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if len(path) < 2:
            raise ConfigError(f"{name}: use CREDMAIL_SECTION__KEY (double underscore)")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {part} is not a section")
        node[path[-1]] = _env_value(value)


def _env_value(value: str) -> Any:
    if value.startswith("[") and value.endswith("]"):
        return tomllib.loads(f"v = {value}")["v"]
    return value


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required, no default (the school's own value)"
        lines.append(f"{key}: {message}" if key else message)
    return "; ".join(lines)
