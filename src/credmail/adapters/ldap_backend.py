"""The `ldap` link backend: the family sets a new password in the school's own directory.

Binds as the service account from `[ldap]`, finds the person's entry with `user_filter`,
and sets the password: the Password Modify extended operation (RFC 3062) on OpenLDAP,
or a replace of `unicodePwd` (the password in double quotes, UTF-16-LE) on Active
Directory, which accepts it only over an encrypted connection.

Outcomes (service/link_backends.py): DONE when the directory accepted the password;
REJECTED with Italian problems when credmail's policy or the directory's own policy
refuses it; RETRY_LATER for everything else (outage, timeout, refused service bind,
no or several entries), so the link stays usable. Nothing connects before `spend`, and
no password reaches a log line or an outcome's detail.
"""

from __future__ import annotations

import math
import re
import ssl
import warnings
from collections.abc import Callable
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import structlog

from credmail.config import LdapSettings
from credmail.service.link_backends import BackendKind, SpendOutcome, SpendRequest, SpendResult
from credmail.service.password_policy import (
    BOTH_FIELDS,
    DIRECTORY_REFUSED,
    PasswordPolicy,
    Problem,
    load_common,
)

with warnings.catch_warnings():
    # ldap3 2.9.1 (its last release) imports pyasn1's tagMap and typeMap, aliases that warn
    # since pyasn1 0.6.1 and still work in 0.6.x (pyproject pins pyasn1 >=0.6.4,<0.7: the
    # older, silent releases have denial-of-service fixes missing). README "Dependencies".
    warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
    from ldap3 import MODIFY_REPLACE, NONE, SUBTREE, Connection, Server, Tls
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars

Mode = Literal["openldap", "active_directory"]

RESULT_SUCCESS = 0
RESULT_CONSTRAINT_VIOLATION = 19  # OpenLDAP ppolicy, AD password change: quality refused
RESULT_UNWILLING_TO_PERFORM = 53  # AD admin reset: "0000052D" means the policy refused
AD_POLICY_ERROR = "0000052D"

COMMON_PASSWORDS = 10_000  # of zxcvbn's 30,000
NO_PASSWORD_GIVEN = Problem(BOTH_FIELDS, "both_fields")
_FILTER_ATTRIBUTE = re.compile(r"\(([A-Za-z][\w-]*)=\{username\}\)")

log = structlog.get_logger("credmail.links.ldap")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords: the head of the "passwords" frequency list zxcvbn
    ships (Mark Burnett's 10-million-password set, most common first)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return load_common(FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS])


def ad_password_value(password: str) -> bytes:
    """Active Directory's unicodePwd: the password in double quotes, UTF-16-LE encoded."""
    return f'"{password}"'.encode("utf-16-le")


def ad_password_changes(password: str) -> dict[str, list[tuple[str, list[bytes]]]]:
    """The modify request an administrator's reset sends (no old password needed)."""
    return {"unicodePwd": [(MODIFY_REPLACE, [ad_password_value(password)])]}


def user_search_filter(user_filter: str, username: str) -> str:
    """`user_filter` with the username escaped (RFC 4515): '*' or ')' match nothing extra."""
    return user_filter.replace("{username}", escape_filter_chars(username))


class LdapBackend:
    kind = BackendKind.LDAP
    needs_password = True

    def __init__(
        self,
        *,
        url: str,
        bind_dn: str,
        bind_password: str,
        base_dn: str,
        user_filter: str = "(uid={username})",
        mode: Mode = "openldap",
        start_tls: bool = False,
        ca_file: Path | None = None,
        connect_timeout: float = 5,
        timeout: float = 10,
        policy: PasswordPolicy | None = None,
        connection_factory: Callable[[], Connection] | None = None,
    ) -> None:
        self.url = url
        self.bind_dn = bind_dn
        self._bind_password = bind_password
        self.base_dn = base_dn
        self.user_filter = user_filter
        self.mode: Mode = mode
        self.start_tls = start_tls
        self.ca_file = ca_file
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.policy = policy or PasswordPolicy(common=common_passwords())
        self._connection_factory = connection_factory or self._connect

    def __repr__(self) -> str:
        return f"LdapBackend(url={self.url!r}, mode={self.mode!r}, base_dn={self.base_dn!r})"

    @classmethod
    def from_settings(cls, settings: LdapSettings) -> LdapBackend:
        """From the [ldap] section."""
        assert settings.bind_password is not None  # the settings read bind_password_file
        return cls(
            url=settings.url,
            bind_dn=settings.bind_dn,
            bind_password=settings.bind_password,
            base_dn=settings.base_dn,
            user_filter=settings.user_filter,
            mode=settings.mode,
            start_tls=settings.start_tls,
            ca_file=settings.ca_file,
            connect_timeout=settings.connect_timeout_seconds,
            timeout=settings.timeout_seconds,
            policy=PasswordPolicy(
                min_length=settings.password_min_length,
                min_score=settings.password_min_score,
                common=common_passwords(),
            ),
        )

    def password_problems(self, password: str, request: SpendRequest) -> list[str]:
        return self.policy.problems(
            password,
            username=request.username,
            first_name=request.first_name,
            last_name=request.last_name,
        )

    def spend(self, request: SpendRequest) -> SpendOutcome:
        password = request.new_password
        if not password:
            return SpendOutcome(SpendResult.REJECTED, (NO_PASSWORD_GIVEN,), "no password given")
        problems = self.password_problems(password, request)
        if problems:
            return SpendOutcome(SpendResult.REJECTED, tuple(problems), "credmail policy")
        try:
            outcome = self._set_password(request.username, password)
        except LDAPException as exc:  # outage, timeout, TLS failure: the link stays usable
            outcome = _retry(f"directory unavailable: {type(exc).__name__}")
        (log.info if outcome.done else log.warning)(
            "ldap.spend",
            request_id=request.request_id,
            result=outcome.result.value,
            detail=outcome.detail,
        )
        return outcome

    # -- the directory --------------------------------------------------------------------

    def _connect(self) -> Connection:
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(self.ca_file) if self.ca_file else None,
        )
        server = Server(
            self.url,
            get_info=NONE,
            tls=tls,
            connect_timeout=self.connect_timeout,
        )
        return Connection(
            server,
            user=self.bind_dn,
            password=self._bind_password,
            receive_timeout=max(1, math.ceil(self.timeout)),  # ldap3 packs it as an integer
            raise_exceptions=False,
            auto_referrals=False,
            read_only=False,
        )

    def _set_password(self, username: str, password: str) -> SpendOutcome:
        conn = self._connection_factory()
        try:
            conn.open()
            if self.start_tls and not conn.start_tls():
                return _retry(f"StartTLS refused: {_code(conn)}")
            if not conn.bind():
                return _retry(f"service account bind refused: {_code(conn)}")
            dn = self._find_entry(conn, username)
            if isinstance(dn, SpendOutcome):
                return dn
            if self.mode == "active_directory":
                conn.modify(dn, ad_password_changes(password))  # type: ignore[no-untyped-call]
            else:
                conn.extend.standard.modify_password(user=dn, new_password=password)
            return _modify_outcome(conn.result)
        finally:
            with suppress(LDAPException):  # the connection is gone already
                conn.unbind()
            if conn.socket is not None:  # ldap3 keeps the socket of a failed connect open
                with suppress(OSError):
                    conn.socket.close()

    def _find_entry(self, conn: Connection, username: str) -> str | SpendOutcome:
        """The one entry the filter finds, whose naming attribute holds the username
        exactly: LDAP matches uid and sAMAccountName in any case, credmail's usernames
        are case-sensitive (`g1001` must never set the password of `uid=G1001`)."""
        attribute = self.naming_attribute
        found = conn.search(
            self.base_dn,
            user_search_filter(self.user_filter, username),
            search_scope=SUBTREE,
            attributes=[attribute],
            size_limit=2,
        )
        code = conn.result.get("result")
        if not found and code not in (RESULT_SUCCESS, 4):  # 4: sizeLimitExceeded (two hits)
            return _retry(f"search failed: {_code(conn)}")
        entries = [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]
        if not entries:
            return _retry("no directory entry matches user_filter")
        if len(entries) > 1:
            return _retry("several directory entries match user_filter")
        if username not in _values(entries[0], attribute):
            return _retry(
                f"no directory entry matches user_filter: the entry's {attribute} is not "
                "exactly the username (it differs in case, or is missing)"
            )
        return str(entries[0]["dn"])

    @property
    def naming_attribute(self) -> str:
        """The attribute `user_filter` compares with the username (uid, sAMAccountName),
        else the mode's usual one."""
        named = _FILTER_ATTRIBUTE.search(self.user_filter)
        if named:
            return named.group(1)
        return "sAMAccountName" if self.mode == "active_directory" else "uid"


def _modify_outcome(result: dict[str, Any]) -> SpendOutcome:
    code = result.get("result")
    message = str(result.get("message") or "")
    if code == RESULT_SUCCESS:
        return SpendOutcome(SpendResult.DONE, detail="password set")
    description = f"{code} {result.get('description') or ''}".strip()
    if code == RESULT_CONSTRAINT_VIOLATION or (
        code == RESULT_UNWILLING_TO_PERFORM and AD_POLICY_ERROR in message.upper()
    ):
        return SpendOutcome(
            SpendResult.REJECTED,
            (Problem(DIRECTORY_REFUSED, "directory_refused"),),
            f"directory policy: {description}",
        )
    return _retry(f"password change refused: {description}")


def _values(entry: dict[str, Any], attribute: str) -> list[str]:
    """An entry's values of `attribute` as text, whatever case the server spells it in."""
    raw = {name.casefold(): values for name, values in (entry.get("raw_attributes") or {}).items()}
    found = raw.get(attribute.casefold()) or []
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in found]


def _code(conn: Connection) -> str:
    result = conn.result or {}
    return f"{result.get('result')} {result.get('description') or ''}".strip()


def _retry(detail: str) -> SpendOutcome:
    return SpendOutcome(SpendResult.RETRY_LATER, detail=detail)
