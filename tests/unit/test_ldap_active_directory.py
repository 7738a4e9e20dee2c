"""Active Directory mode without an AD: the unicodePwd encoding, the modify request's
shape (through ldap3's own MOCK_SYNC strategy), and the mapping of AD's answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from ldap3 import MOCK_SYNC, MODIFY_REPLACE, Connection, Server

from credmail.adapters.ldap_backend import (
    LdapBackend,
    _modify_outcome,
    ad_password_changes,
    ad_password_value,
    user_search_filter,
)
from credmail.service.link_backends import SpendRequest, SpendResult
from credmail.service.password_policy import DIRECTORY_REFUSED, PasswordPolicy

SERVICE = "CN=credmail,OU=Servizi,DC=scuola,DC=local"
USER = "CN=Mario Rossi,OU=Genitori,DC=scuola,DC=local"
NEW = "lampone-ventoso-Quaderno-42"


def test_unicode_pwd_is_the_quoted_password_in_utf16le() -> None:
    assert ad_password_value("Àb1") == b'"\x00\xc0\x00b\x001\x00"\x00'
    assert ad_password_value(NEW) == f'"{NEW}"'.encode("utf-16-le")
    assert ad_password_value(NEW).decode("utf-16-le") == f'"{NEW}"'


def test_the_modify_request_replaces_unicode_pwd_only() -> None:
    assert ad_password_changes(NEW) == {"unicodePwd": [(MODIFY_REPLACE, [ad_password_value(NEW)])]}


def test_the_username_is_escaped_in_the_filter() -> None:
    assert user_search_filter("(sAMAccountName={username})", "m*)(x") == (
        r"(sAMAccountName=m\2a\29\28x)"
    )


class Recording(Connection):
    """ldap3's in-memory server, remembering the operations the backend sent."""

    sent: list[tuple[str, Any]]

    def modify(self, dn: str, changes: Any, controls: Any = None) -> Any:
        self.sent.append(("modify", (dn, changes)))
        return super().modify(dn, changes, controls)  # type: ignore[no-untyped-call]  # ldap3


def mock_ad() -> Recording:
    conn = Recording(
        Server("dc.scuola.local"),
        user=SERVICE,
        password="service-pw",
        client_strategy=MOCK_SYNC,
        raise_exceptions=False,
    )
    conn.sent = []
    conn.strategy.add_entry(SERVICE, {"objectClass": ["user"], "userPassword": "service-pw"})
    conn.strategy.add_entry(USER, {"objectClass": ["user"], "sAMAccountName": "mrossi"})
    return conn


def ad_backend(conn: Connection) -> LdapBackend:
    return LdapBackend(
        url="ldaps://dc.scuola.local",
        bind_dn=SERVICE,
        bind_password="service-pw",
        base_dn="DC=scuola,DC=local",
        user_filter="(sAMAccountName={username})",
        mode="active_directory",
        policy=PasswordPolicy(),
        connection_factory=lambda: conn,
    )


def request(password: str = NEW) -> SpendRequest:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    return SpendRequest(
        "sel", "mrossi", "reset", "parent", "Mario", "Rossi", None, now, now, password
    )


def test_active_directory_mode_sets_unicode_pwd_on_the_found_entry() -> None:
    conn = mock_ad()

    outcome = ad_backend(conn).spend(request())

    assert outcome.result is SpendResult.DONE
    assert conn.sent == [("modify", (USER, ad_password_changes(NEW)))]
    assert conn.strategy.entries[USER]["unicodePwd"] == [ad_password_value(NEW)]


def test_a_refused_service_bind_is_retry_later_and_sends_nothing() -> None:
    conn = mock_ad()
    conn.password = "wrong"
    outcome = ad_backend(conn).spend(request())
    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail is not None and outcome.detail.startswith("service account bind refused")
    assert conn.sent == []


def test_ad_answers_map_to_outcomes() -> None:
    """An admin reset refused by AD's policy is 53 with 0000052D; 19 on a user change."""
    policy_53 = {
        "result": 53,
        "description": "unwillingToPerform",
        "message": "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)",
    }
    no_tls_53 = {
        "result": 53,
        "description": "unwillingToPerform",
        "message": "00000001: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)",
    }
    policy_19 = {"result": 19, "description": "constraintViolation", "message": "0000052D: ..."}
    access_50 = {"result": 50, "description": "insufficientAccessRights", "message": ""}

    assert _modify_outcome(policy_53).result is SpendResult.REJECTED
    assert _modify_outcome(policy_53).problems == (DIRECTORY_REFUSED,)
    assert _modify_outcome(policy_19).result is SpendResult.REJECTED
    assert _modify_outcome(no_tls_53).result is SpendResult.RETRY_LATER
    assert _modify_outcome(access_50).result is SpendResult.RETRY_LATER
    assert _modify_outcome({"result": 0}).done


def test_an_account_name_that_differs_only_in_case_is_refused_and_nothing_sent() -> None:
    """AD matches sAMAccountName in any case (as ldap3's mock does): `MROSSI` is not
    credmail's `mrossi`."""
    conn = mock_ad()
    outcome = ad_backend(conn).spend(replace(request(), username="MROSSI"))
    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail is not None and "sAMAccountName is not exactly" in outcome.detail
    assert conn.sent == [] and "unicodePwd" not in conn.strategy.entries[USER]


@pytest.mark.parametrize(
    ("user_filter", "mode", "attribute"),
    [
        ("(uid={username})", "openldap", "uid"),
        ("(&(objectClass=inetOrgPerson)(uid={username}))", "openldap", "uid"),
        ("(sAMAccountName={username})", "active_directory", "sAMAccountName"),
        ("(&(objectClass=user)(employeeID={username}))", "active_directory", "employeeID"),
        ("(|(uid={username})(mail={username}@x))", "openldap", "uid"),
        ("(mail={username}@scuola.it)", "active_directory", "sAMAccountName"),
    ],
)
def test_the_attribute_that_must_equal_the_username(
    user_filter: str, mode: Any, attribute: str
) -> None:
    backend = LdapBackend(
        url="ldaps://dc", bind_dn="x", bind_password="y", base_dn="z", user_filter=user_filter,
        mode=mode, policy=PasswordPolicy(),
    )  # fmt: skip
    assert backend.naming_attribute == attribute
