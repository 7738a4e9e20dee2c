"""Settings: one TOML file, CREDMAIL_* environment overrides, *_file secrets, strict keys.

`load_settings` either returns a validated Settings or raises ConfigError with one
message naming the offending key; nothing connects before that.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from credmail.core.addresses import AddressError, is_loopback_host, normalize_address
from credmail.core.classify import (
    DEFAULT_ADULT_PHRASES,
    DEFAULT_IGNORED_SUBJECT_TAGS,
    DEFAULT_REPLY_PREFIXES,
    DEFAULT_SPAM_SUBJECT_TAGS,
    DEFAULT_STUDENT_PHRASES,
)

ENV_PREFIX = "CREDMAIL_"
ENV_CONFIG = "CREDMAIL_CONFIG"
PLACEHOLDER_SECRETS = {"changeme", "change-me", "password", "secret", "xxx"}

Security = Literal["tls", "starttls", "none"]


class ConfigError(Exception):
    """A configuration problem, worded for the sysadmin, naming the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Section)


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
    folders: FoldersSettings = FoldersSettings()

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
        return "INBOX" + name[5:] if name.upper().startswith("INBOX") and (
            len(name) == 5 or name[5] == "/"
        ) else name

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
    retry_base_seconds: float = Field(default=30, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    max_attempts: int = Field(default=50, ge=1)
    outbox_dir: Path | None = None

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

    @model_validator(mode="after")
    def _validate(self) -> DatabaseSettings:
        return _with_secret_files(self, "url")


class LinksSettings(Section):
    issuer: Literal["token", "template"] = "token"
    base_url: str = ""  # the school's register: no default; required with issuer = "token"
    ttl_minutes: int = Field(default=60, ge=1)
    max_ttl_minutes: int = Field(default=1440, ge=1)
    url_template: str = ""

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


class ClassifySettings(Section):
    student_phrases: tuple[str, ...] = DEFAULT_STUDENT_PHRASES
    adult_phrases: tuple[str, ...] = DEFAULT_ADULT_PHRASES
    reply_prefixes: tuple[str, ...] = DEFAULT_REPLY_PREFIXES
    ignored_subject_tags: tuple[str, ...] = DEFAULT_IGNORED_SUBJECT_TAGS
    spam_subject_tags: tuple[str, ...] = DEFAULT_SPAM_SUBJECT_TAGS


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

    @model_validator(mode="after")
    def _validate(self) -> DaemonSettings:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone: unknown time zone {self.timezone!r} (e.g. 'Europe/Rome'; "
                "the system needs tzdata)"
            ) from None
        return self


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


IDENTITY_SECTIONS = ("smtp", "links", "replies")


class Settings(Section):
    mailbox: MailboxSettings = MailboxSettings()
    smtp: SmtpSettings
    database: DatabaseSettings = DatabaseSettings()
    links: LinksSettings
    classify: ClassifySettings = ClassifySettings()
    replies: RepliesSettings
    auth: AuthSettings = AuthSettings()
    limits: LimitsSettings = LimitsSettings()
    review: ReviewSettings = ReviewSettings()
    directory: DirectorySettings = DirectorySettings()
    privacy: PrivacySettings = PrivacySettings()
    daemon: DaemonSettings = DaemonSettings()
    logging: LoggingSettings = LoggingSettings()

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
