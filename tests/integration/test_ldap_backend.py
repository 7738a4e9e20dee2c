"""The `ldap` link backend against a real slapd (Debian's), started by the test."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from credmail.adapters.ldap_backend import LdapBackend
from credmail.config import LdapSettings
from credmail.service.link_backends import SpendRequest, SpendResult
from credmail.service.password_policy import DIRECTORY_REFUSED, HAS_NAME, TOO_SHORT
from tests.support.servers import free_port
from tests.support.slapd import (
    DUPLICATE_USER,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    STRICT_USER,
    USERS,
    Slapd,
)

pytestmark = pytest.mark.integration

NEW_PASSWORD = "lampone-ventoso-Quaderno-42"


def request_for(username: str, password: str | None = NEW_PASSWORD) -> SpendRequest:
    first, last, _ = USERS.get(username, ("Anna", "Neri", ""))
    now = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    return SpendRequest(
        request_id=f"sel-{username}",
        username=username,
        purpose="reset",
        role="parent",
        first_name=first,
        last_name=last,
        address=f"{username}@famiglia.test",
        requested_at=now,
        confirmed_at=now,
        new_password=password,
    )


def backend_for(url: str, **overrides: object) -> LdapBackend:
    values: dict[str, object] = {
        "url": url,
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "base_dn": PEOPLE.split(",", 1)[1],
        "user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
        "connect_timeout_seconds": 2,
        "timeout_seconds": 5,
    } | overrides
    return LdapBackend.from_settings(LdapSettings.model_validate(values))


def old_password(username: str) -> str:
    return USERS[username][2]


def test_spend_sets_the_password_new_binds_and_old_fails(slapd: Slapd) -> None:
    assert slapd.can_bind("mrossi", old_password("mrossi"))

    outcome = backend_for(slapd.url).spend(request_for("mrossi"))

    assert outcome.result is SpendResult.DONE, outcome.detail
    assert slapd.can_bind("mrossi", NEW_PASSWORD)
    assert not slapd.can_bind("mrossi", old_password("mrossi"))
    assert slapd.can_bind("gverdi", old_password("gverdi"))  # nobody else touched


def test_policy_refusal_leaves_the_old_password_working(slapd: Slapd) -> None:
    backend = backend_for(slapd.url)

    short = backend.spend(request_for("mrossi", "Corta-1"))
    named = backend.spend(request_for("mrossi", "MarioRossi-lampone-42"))

    assert short.result is SpendResult.REJECTED
    assert TOO_SHORT.format(n=12) in short.problems
    assert named.result is SpendResult.REJECTED
    assert named.problems == (HAS_NAME,)
    assert slapd.can_bind("mrossi", old_password("mrossi"))
    assert not slapd.can_bind("mrossi", "MarioRossi-lampone-42")


def test_the_directory_own_policy_refusal_is_rejected_not_retried(slapd: Slapd) -> None:
    """slapd's ppolicy wants 30 characters for this user: constraintViolation (19)."""
    outcome = backend_for(slapd.url).spend(request_for(STRICT_USER))

    assert outcome.result is SpendResult.REJECTED
    assert outcome.problems == (DIRECTORY_REFUSED,)
    assert outcome.detail is not None and outcome.detail.startswith("directory policy: 19")
    assert slapd.can_bind(STRICT_USER, old_password(STRICT_USER))

    longer = "lampone-ventoso-Quaderno-42-e-ancora-tre"
    assert backend_for(slapd.url).spend(request_for(STRICT_USER, longer)).done
    assert slapd.can_bind(STRICT_USER, longer)


def test_directory_outage_is_retry_later_and_a_later_spend_works(slapd: Slapd) -> None:
    backend = backend_for(slapd.url)
    slapd.stop()

    outcome = backend.spend(request_for("mrossi"))

    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail is not None and "unavailable" in outcome.detail
    assert outcome.problems == ()

    slapd.start()  # same port, same data: the link was kept, the family tries again
    assert slapd.can_bind("mrossi", old_password("mrossi"))
    assert backend.spend(request_for("mrossi")).done
    assert slapd.can_bind("mrossi", NEW_PASSWORD)


def test_nothing_listening_is_retry_later() -> None:
    outcome = backend_for(f"ldap://127.0.0.1:{free_port()}").spend(request_for("mrossi"))
    assert outcome.result is SpendResult.RETRY_LATER


def test_wrong_service_password_is_retry_later(slapd: Slapd) -> None:
    outcome = backend_for(slapd.url, bind_password="not-the-service-pw").spend(
        request_for("mrossi")
    )
    assert outcome.result is SpendResult.RETRY_LATER
    assert outcome.detail is not None and "bind refused: 49" in outcome.detail
    assert slapd.can_bind("mrossi", old_password("mrossi"))


def test_unknown_or_ambiguous_user_is_retry_later_and_changes_nothing(slapd: Slapd) -> None:
    backend = backend_for(slapd.url, base_dn="dc=scuola,dc=test")

    missing = backend.spend(request_for("nessuno"))
    twice = backend.spend(request_for(DUPLICATE_USER))
    injected = backend.spend(request_for("*"))

    assert missing.result is SpendResult.RETRY_LATER
    assert missing.detail == "no directory entry matches user_filter"
    assert twice.result is SpendResult.RETRY_LATER
    assert twice.detail == "several directory entries match user_filter"
    assert injected.detail == "no directory entry matches user_filter"  # '*' is escaped
    assert slapd.can_bind(DUPLICATE_USER, old_password(DUPLICATE_USER))


def test_a_username_that_differs_only_in_case_is_refused_as_not_found(slapd: Slapd) -> None:
    """LDAP's uid matches in any case: `g1001` (another person for credmail) finds the
    entry uid=G1001, whose password must not change."""
    backend = backend_for(slapd.url)

    other = backend.spend(request_for("g1001"))

    assert other.result is SpendResult.RETRY_LATER
    assert other.detail == (
        "no directory entry matches user_filter: the entry's uid is not exactly the username "
        "(it differs in case, or is missing)"
    )
    assert slapd.can_bind("G1001", old_password("G1001"))
    assert not slapd.can_bind("G1001", NEW_PASSWORD)
    assert backend.spend(request_for("G1001")).done  # the exact uid still works
    assert slapd.can_bind("G1001", NEW_PASSWORD)


def test_no_password_in_the_logs(slapd: Slapd, capsys: pytest.CaptureFixture[str]) -> None:
    from credmail.logs import configure_logging

    configure_logging("debug", "json")
    backend = backend_for(slapd.url)
    backend.spend(request_for("mrossi", "Corta-1"))
    backend.spend(request_for("mrossi"))
    slapd.stop()
    backend.spend(request_for("gverdi"))

    captured = capsys.readouterr()
    logged = captured.out + captured.err
    assert "ldap.spend" in logged
    for secret in (NEW_PASSWORD, "Corta-1", SERVICE_PASSWORD):
        assert secret not in logged
    assert SERVICE_PASSWORD not in repr(backend)


def test_ldaps_with_the_directory_ca_sets_the_password(slapd_tls: Slapd) -> None:
    backend = backend_for(slapd_tls.ldaps_url, ca_file=str(slapd_tls.ca_file))
    assert backend.spend(request_for("mrossi")).done
    assert slapd_tls.can_bind("mrossi", NEW_PASSWORD)


def test_start_tls_with_the_directory_ca_sets_the_password(slapd_tls: Slapd) -> None:
    backend = backend_for(slapd_tls.url, start_tls=True, ca_file=str(slapd_tls.ca_file))
    assert backend.spend(request_for("gverdi")).done
    assert slapd_tls.can_bind("gverdi", NEW_PASSWORD)


def test_an_unverifiable_certificate_is_retry_later_and_changes_nothing(slapd_tls: Slapd) -> None:
    """No ca_file: the test certificate is not trusted by the system, so nothing is sent."""
    for backend in (
        backend_for(slapd_tls.ldaps_url),
        backend_for(slapd_tls.url, start_tls=True),
    ):
        outcome = backend.spend(request_for("mrossi"))
        assert outcome.result is SpendResult.RETRY_LATER, outcome.detail
    assert slapd_tls.can_bind("mrossi", old_password("mrossi"))
