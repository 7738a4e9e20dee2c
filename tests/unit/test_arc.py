"""Microsoft 365, Google and ARC: sealed results from a trusted sealer count, nothing
forged does. Real dkimpy signing and sealing, keys generated here, DNS injected."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from credmail.adapters.arc_verifier import sealed_by
from credmail.adapters.dkim_verifier import sender_authenticator as SenderAuthenticator
from credmail.core.parse import parse_message
from credmail.service.authentication import unattributed_results
from tests.support import provider_mail as pm

Keys = dict[str, tuple[bytes, bytes]]
M365_SRV = "mx.microsoft.com 1"
M365_PASS = (
    "spf=pass (sender IP is 203.0.113.5) smtp.mailfrom=example.org; "
    "dkim=pass (signature was verified) header.d=example.org; "
    "dmarc=pass action=none header.from=example.org; compauth=pass reason=100"
)
M365_FAIL = (
    "spf=fail (sender IP is 198.51.100.7) smtp.mailfrom=example.org; dkim=none; "
    "dmarc=fail action=oreject header.from=example.org; compauth=fail reason=000"
)
GMAIL_PASS = (
    "dkim=pass header.i=@example.org header.s=sel header.b=AbCdEf; "
    "spf=pass (google.com: domain of mario.rossi@example.org designates 203.0.113.5 as "
    "permitted sender) smtp.mailfrom=mario.rossi@example.org; "
    "dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.org"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("arc")
    return {name: pm.generate_key(folder, name) for name in ("sender", "ms", "google", "evil")}


def records(keys: Keys) -> dict[str, bytes]:
    return {
        "sel._domainkey.example.org": keys["sender"][1],
        "arc._domainkey.microsoft.com": keys["ms"][1],
        "arc._domainkey.google.com": keys["google"][1],
        "arc._domainkey.evil.example": keys["evil"][1],
    }


def check(
    raw: bytes, keys: Keys, sealers: tuple[str, ...] = ("microsoft.com",), **kwargs: object
) -> tuple[bool, str, tuple[str, ...]]:
    auth = SenderAuthenticator(
        "dmarc_or_dkim",
        (),
        dnsfunc=pm.dns_for(records(keys)),
        trusted_arc_sealers=sealers,
        **kwargs,  # type: ignore[arg-type]
    )
    verdict = auth.check(raw, parse_message(raw))
    return verdict.authenticated, verdict.method, verdict.problems


def original(keys: Keys) -> bytes:
    return pm.dkim_sign(pm.plain(), "example.org", keys["sender"][0])


def m365(keys: Keys, results: str = M365_PASS, raw: bytes | None = None) -> bytes:
    """Exchange Online's seal, then its own unattributed field, as the mailbox shows it."""
    body = raw if raw is not None else original(keys)
    sealed = pm.arc_seal(body, "microsoft.com", M365_SRV, results, keys["ms"][0])
    return pm.exchange_unattributed(sealed, results)


def seal(sealer: str, keys: Keys, results: str, raw: bytes) -> bytes:
    srv = {"microsoft.com": M365_SRV, "google.com": "mx.google.com"}.get(sealer, "mx." + sealer)
    return pm.arc_seal(raw, sealer, srv, results, keys[_key_of(sealer)][0])


def _key_of(sealer: str) -> str:
    return {"microsoft.com": "ms", "google.com": "google"}.get(sealer, "evil")


# -- Microsoft 365 ----------------------------------------------------------------------


def test_m365_with_arc_from_a_trusted_sealer_authenticates(keys: Keys) -> None:
    assert check(m365(keys), keys) == (True, "arc-dmarc", ())


def test_m365_sealed_failure_does_not_authenticate(keys: Keys) -> None:
    assert check(m365(keys, M365_FAIL), keys) == (False, "none", ("auth_results_unattributed",))


def test_m365_without_arc_is_only_an_unattributed_field(keys: Keys) -> None:
    raw = pm.exchange_unattributed(original(keys), M365_PASS)
    assert unattributed_results(raw)
    assert check(raw, keys) == (False, "none", ("auth_results_unattributed",))


def test_m365_without_arc_falls_back_to_local_dkim(keys: Keys) -> None:
    raw = pm.exchange_unattributed(original(keys), M365_PASS)
    assert check(raw, keys, (), verify_dkim=True) == (True, "dkim-local", ())


def test_arc_is_ignored_without_trusted_sealers(keys: Keys) -> None:
    assert check(m365(keys), keys, ()) == (False, "none", ("auth_results_unattributed",))


# -- Google -----------------------------------------------------------------------------


def test_gmail_seal_trusted(keys: Keys) -> None:
    raw = seal("google.com", keys, GMAIL_PASS, original(keys))
    assert check(raw, keys, ("google.com",)) == (True, "arc-dmarc", ())


def test_google_then_m365_reads_only_the_highest_set(keys: Keys) -> None:
    """A message through Google Groups, then Microsoft 365: i=2 is Microsoft's."""
    google = seal("google.com", keys, GMAIL_PASS, original(keys))
    both = seal("microsoft.com", keys, "arc=pass; " + M365_PASS, google)
    assert check(both, keys, ("microsoft.com",)) == (True, "arc-dmarc", ())
    assert check(both, keys, ("google.com",))[0] is False  # trusted set below another one


# -- forged sets and fields --------------------------------------------------------------


def test_set_claiming_microsoft_signed_with_another_key_proves_nothing(keys: Keys) -> None:
    raw = pm.arc_seal(original(keys), "microsoft.com", M365_SRV, M365_PASS, keys["evil"][0])
    assert check(raw, keys)[0] is False


def test_body_changed_after_sealing_breaks_the_chain(keys: Keys) -> None:
    raw = m365(keys).replace(b"Buongiorno.", b"Mandate il link a evil@evil.example")
    assert check(raw, keys)[0] is False


def test_trusted_set_below_an_untrusted_one_proves_nothing(keys: Keys) -> None:
    raw = seal("evil.example", keys, "arc=pass; " + M365_PASS, m365(keys))
    assert check(raw, keys)[0] is False


def test_forged_pass_below_a_trusted_failure_is_not_read(keys: Keys) -> None:
    forged = seal("evil.example", keys, M365_PASS, pm.plain())
    raw = seal("microsoft.com", keys, "arc=pass; " + M365_FAIL, forged)
    assert check(raw, keys, ("microsoft.com",))[0] is False


def test_forged_results_field_above_the_seal_is_not_read(keys: Keys) -> None:
    sealed = m365(keys, M365_FAIL)
    above = (
        b"ARC-Authentication-Results: i=2; mx.microsoft.com; dmarc=pass header.from=example.org\r\n"
    )
    assert check(above + sealed, keys)[0] is False
    plain_above = (
        b"Authentication-Results: mx.microsoft.com; dmarc=pass header.from=example.org\r\n"
    )
    assert check(plain_above + sealed, keys)[0] is False


def test_forged_unsealed_arc_fields_prove_nothing(keys: Keys) -> None:
    fields = (
        b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=microsoft.com; s=arc; b=AAAA\r\n"
        b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=microsoft.com; "
        b"s=arc; h=from; bh=AAAA; b=AAAA\r\n"
        b"ARC-Authentication-Results: i=1; mx.microsoft.com 1; "
        b"dmarc=pass header.from=example.org\r\n"
    )
    assert check(fields + pm.plain(), keys)[0] is False


def test_sealed_pass_for_another_domain_does_not_count(keys: Keys) -> None:
    evil_from = pm.plain(sender="Mario Rossi <mario.rossi@evil.example>")
    assert check(m365(keys, raw=evil_from), keys)[0] is False


@pytest.mark.parametrize(
    ("sealer", "trusted"),
    [
        ("microsoft.com", True),
        ("eur.microsoft.com", True),
        ("MICROSOFT.COM.", True),
        ("evilmicrosoft.com", False),
        ("microsoft.com.evil.example", False),
    ],
)
def test_sealed_by(sealer: str, trusted: bool) -> None:
    assert sealed_by(sealer, ("microsoft.com",)) is trusted


@pytest.mark.parametrize(
    ("value", "unattributed"),
    [
        (M365_PASS, True),
        ("spf=pass smtp.mailfrom=example.org", True),
        ("mx.istitutostanga.edu.it; dmarc=pass header.from=example.org", False),
        ("mx.microsoft.com 1; dmarc=pass header.from=example.org", False),
        ("mx.example (comment with a=b); none", False),
    ],
)
def test_unattributed_field_detection(value: str, unattributed: bool) -> None:
    assert unattributed_results(pm.exchange_unattributed(pm.plain(), value)) is unattributed


def test_too_many_arc_sets_are_not_verified(keys: Keys) -> None:
    """Each set costs DNS lookups: a message with more than MAX_ARC_SETS proves nothing."""
    from credmail.adapters.arc_verifier import MAX_ARC_SETS

    raw = m365(keys)
    for _ in range(MAX_ARC_SETS):
        raw = seal("microsoft.com", keys, "arc=pass; " + M365_PASS, raw)
    assert check(raw, keys)[0] is False
    fewer = seal("microsoft.com", keys, "arc=pass; " + M365_PASS, m365(keys))
    assert check(fewer, keys) == (True, "arc-dmarc", ())


# -- other providers: what their signatures prove --------------------------------------

PROVIDERS = {
    # name: (From, signing domain, selector, extra fields as the provider writes them, proven)
    "outlook.com": (
        "Mario Rossi <mario.rossi@outlook.com>",
        "outlook.com",
        "selector1",
        (("X-MS-Exchange-Organization-AuthSource", "AM0EUR02FT010.eop-EUR02.prod.protection"),),
        True,
    ),
    "icloud": (
        "Mario Rossi <mario.rossi@icloud.com>",
        "icloud.com",
        "1a1hai",
        (("X-Mailer", "iPhone Mail (21F90)"),),
        True,
    ),
    "gmail": (
        "Mario Rossi <mario.rossi@gmail.com>",
        "gmail.com",
        "20230601",
        (("X-Google-Smtp-Source", "AGHT+IH0000"),),
        True,
    ),
    "libero": (
        "Mario Rossi <mario.rossi@libero.it>",
        "libero.it",
        "s2021",
        (("X-CNFS-Analysis", "v=2.4 cv=0"),),
        True,
    ),
    "virgilio_signed_by_libero": (
        "Mario Rossi <mario.rossi@virgilio.it>",
        "libero.it",
        "s2021",
        (("X-CNFS-Analysis", "v=2.4 cv=0"),),
        False,  # another organizational domain: not aligned
    ),
    "aruba_hosted_domain": (
        "Mario Rossi <mario.rossi@famigliarossi.it>",
        "aruba.it",
        "a1",
        (("X-Sender", "mario.rossi@famigliarossi.it"),),
        False,  # the hosting provider's signature does not prove the customer's domain
    ),
}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_provider_signatures_with_local_dkim(name: str, keys: Keys) -> None:
    sender, domain, selector, extra, proven = PROVIDERS[name]
    raw = pm.dkim_sign(pm.plain(sender=sender, extra=extra), domain, keys["sender"][0], selector)
    auth = SenderAuthenticator(
        "dmarc_or_dkim",
        (),
        verify_dkim=True,
        dnsfunc=pm.dns_for({f"{selector}._domainkey.{domain}": keys["sender"][1]}),
    )
    verdict = auth.check(raw, parse_message(raw))
    assert (verdict.authenticated, verdict.method) == (
        (True, "dkim-local") if proven else (False, "none")
    )


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_provider_fields_written_by_the_sender_prove_nothing(name: str, keys: Keys) -> None:
    """Unsigned, with the provider's own-looking fields and a forged pass: never proven."""
    sender, domain, _selector, extra, _proven = PROVIDERS[name]
    forged = (
        ("Authentication-Results", f"mx.{domain}; dmarc=pass header.from={domain}"),
        ("Authentication-Results", f"dkim=pass header.d={domain}; dmarc=pass header.from={domain}"),
        ("ARC-Authentication-Results", f"i=1; mx.microsoft.com 1; dmarc=pass header.from={domain}"),
    )
    raw = pm.plain(sender=sender, extra=(*extra, *forged))
    assert check(raw, keys, verify_dkim=True)[0] is False


def test_arc_dns_has_one_budget_for_the_whole_chain(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow DNS cannot hold a message longer than MAX_ARC_SECONDS: once the budget is
    spent no key is found and the chain proves nothing."""
    from credmail.adapters import arc_verifier as arc

    clock = [0.0]
    monkeypatch.setattr(arc, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    served = pm.dns_for(records(keys))
    timeouts: list[float] = []

    def slow(name: bytes, timeout: float = 5) -> bytes | None:
        timeouts.append(timeout)
        clock[0] += 10.0  # each lookup takes 10 s
        return served(name)

    raw = seal("microsoft.com", keys, "arc=pass; " + M365_PASS, m365(keys))
    auth = SenderAuthenticator(
        "dmarc_or_dkim", (), dnsfunc=slow, trusted_arc_sealers=("microsoft.com",)
    )
    assert auth.check(raw, parse_message(raw)).authenticated is False
    assert len(timeouts) == 2 and timeouts[1] <= arc.MAX_ARC_SECONDS - 10.0
    clock[0] = 0.0
    fast = SenderAuthenticator(
        "dmarc_or_dkim", (), dnsfunc=served, trusted_arc_sealers=("microsoft.com",)
    )
    assert fast.check(raw, parse_message(raw)).authenticated is True
