"""Sender authentication: trusted Authentication-Results and local DKIM (real dkimpy,
keys generated here, public keys served by an injected DNS lookup: no network)."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from credmail.adapters.dkim_verifier import MAX_DKIM_SECONDS, MAX_SIGNATURES
from credmail.adapters.dkim_verifier import sender_authenticator as SenderAuthenticator
from credmail.core.parse import parse_message
from credmail.service.authentication import aligned

OURS = "mx.istitutostanga.edu.it"
BASE = (
    b"From: Mario Rossi <mario.rossi@example.org>\r\n"
    b"To: segreteria@istitutostanga.edu.it\r\n"
    b"Subject: Richiesta credenziali\r\n"
    b"Message-ID: <k1@example.org>\r\n"
    b"Date: Mon, 02 Sep 2026 08:00:00 +0200\r\n\r\n"
    b"Buongiorno.\r\n"
)


def check(
    raw: bytes, trusted: tuple[str, ...] = (OURS,), **kwargs: object
) -> tuple[bool, str, tuple[str, ...]]:
    auth = SenderAuthenticator("dmarc_or_dkim", trusted, **kwargs)  # type: ignore[arg-type]
    verdict = auth.check(raw, parse_message(raw))
    return verdict.authenticated, verdict.method, verdict.problems


def with_ar(*fields: str) -> bytes:
    return b"".join(f"Authentication-Results: {f}\r\n".encode() for f in fields) + BASE


def test_dmarc_pass_from_a_trusted_server() -> None:
    assert check(with_ar(f"{OURS}; dmarc=pass header.from=example.org")) == (True, "dmarc", ())


def test_forged_results_from_a_foreign_authserv_id_are_ignored() -> None:
    raw = with_ar("mx.evil.example; dmarc=pass header.from=example.org")
    assert check(raw) == (False, "none", ())


def test_two_fields_claiming_our_authserv_id_go_to_review() -> None:
    raw = with_ar(
        f"{OURS}; dmarc=pass header.from=example.org", f"{OURS}; dmarc=fail header.from=example.org"
    )
    assert check(raw) == (False, "none", ("auth_results_conflict",))


def test_dmarc_fail() -> None:
    assert check(with_ar(f"{OURS}; dmarc=fail header.from=example.org"))[0] is False


def test_dmarc_pass_for_another_domain_does_not_count() -> None:
    assert check(with_ar(f"{OURS}; dmarc=pass header.from=evil.example"))[0] is False


def test_spf_alone_never_counts() -> None:
    assert check(with_ar(f"{OURS}; spf=pass smtp.mailfrom=example.org"))[0] is False


@pytest.mark.parametrize(
    ("signer", "ok"),
    [
        ("example.org", True),
        ("mail.example.org", True),
        ("example.org.evil.example", False),
        ("evil.example", False),
    ],
)
def test_dkim_pass_must_be_aligned(signer: str, ok: bool) -> None:
    raw = with_ar(f"{OURS}; dkim=pass header.d={signer} header.s=sel")
    assert check(raw)[0] is ok


def test_unparseable_trusted_field_goes_to_review() -> None:
    raw = with_ar(f"{OURS}; dmarc")
    assert check(raw) == (False, "none", ("auth_results_unparseable",))


def test_empty_allow_list_trusts_nothing() -> None:
    raw = with_ar(f"{OURS}; dmarc=pass header.from=example.org")
    assert check(raw, trusted=())[0] is False


def test_require_off() -> None:
    auth = SenderAuthenticator("off", ())
    assert auth.check(BASE, parse_message(BASE)).method == "off"


def test_alignment_uses_the_organizational_domain() -> None:
    assert aligned("mail.scuola.example.co.uk", "scuola.example.co.uk")
    assert not aligned("other.co.uk", "scuola.example.co.uk")


# -- local DKIM ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[bytes, bytes]]:
    """bits -> (private PEM, DNS TXT record)."""
    made = {}
    for bits in (2048, 512):
        folder = tmp_path_factory.mktemp(f"dkim{bits}")
        private = folder / "key.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(private), str(bits)], check=True, capture_output=True
        )
        der = subprocess.run(
            ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
        made[bits] = (Path(private).read_bytes(), record)
    return made


def sign(raw: bytes, domain: str, key: bytes, selector: bytes = b"sel") -> bytes:
    signature = dkim.sign(
        raw,
        selector,
        domain.encode(),
        key,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return bytes(signature) + raw


def dns_for(records: dict[str, bytes]) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name.decode().rstrip("."))

    return lookup


def local(raw: bytes, records: dict[str, bytes]) -> tuple[bool, str, tuple[str, ...]]:
    return check(raw, trusted=(), verify_dkim=True, dnsfunc=dns_for(records))


def test_valid_aligned_signature(keys: dict[int, tuple[bytes, bytes]]) -> None:
    key, record = keys[2048]
    raw = sign(BASE, "example.org", key)
    assert local(raw, {"sel._domainkey.example.org": record}) == (True, "dkim-local", ())


def test_valid_signature_from_an_unaligned_domain(keys: dict[int, tuple[bytes, bytes]]) -> None:
    key, record = keys[2048]
    raw = sign(BASE, "evil.example", key)
    assert local(raw, {"sel._domainkey.evil.example": record})[0] is False


def test_every_signature_is_tried_not_just_the_top_one(
    keys: dict[int, tuple[bytes, bytes]],
) -> None:
    key, record = keys[2048]
    raw = sign(sign(BASE, "example.org", key), "evil.example", key)  # aligned one is second
    records = {"sel._domainkey.example.org": record, "sel._domainkey.evil.example": record}
    assert local(raw, records)[0] is True


def test_tampered_body_fails(keys: dict[int, tuple[bytes, bytes]]) -> None:
    key, record = keys[2048]
    raw = sign(BASE, "example.org", key).replace(b"Buongiorno.", b"Mandate il link qui.")
    assert local(raw, {"sel._domainkey.example.org": record})[0] is False


def test_short_keys_are_refused(keys: dict[int, tuple[bytes, bytes]]) -> None:
    key, record = keys[512]
    raw = sign(BASE, "example.org", key)
    assert local(raw, {"sel._domainkey.example.org": record})[0] is False


def test_missing_key_in_dns(keys: dict[int, tuple[bytes, bytes]]) -> None:
    raw = sign(BASE, "example.org", keys[2048][0])
    assert local(raw, {})[0] is False


def test_trusted_field_wins_over_local_dkim(keys: dict[int, tuple[bytes, bytes]]) -> None:
    key, record = keys[2048]
    raw = b"Authentication-Results: " + OURS.encode() + b"; dmarc=fail header.from=example.org\r\n"
    raw += sign(BASE, "example.org", key)
    assert (
        check(raw, verify_dkim=True, dnsfunc=dns_for({"sel._domainkey.example.org": record}))[0]
        is False
    )


# -- hostile mail (issue 8.3, 8.4) ----------------------------------------------------------

ATTACKER = BASE.replace(b"Mario Rossi <mario.rossi@example.org>", b"attacker@example.org")


def test_smuggled_from_is_not_covered_by_the_signature(
    keys: dict[int, tuple[bytes, bytes]],
) -> None:
    """Signed for attacker@, a bare-CR From: victim@ that only Python's parser sees."""
    key, record = keys[2048]
    smuggled = b"X-Pad: x\rFrom: mario.rossi@example.org\rSubject: Richiesta credenziali\r\r\n"
    signed = sign(ATTACKER, "example.org", key)
    raw = signed.replace(b"From: attacker", smuggled + b"From: attacker", 1)
    assert parse_message(raw).sender == "mario.rossi@example.org"
    assert local(raw, {"sel._domainkey.example.org": record})[0] is False
    assert local(signed, {"sel._domainkey.example.org": record})[0] is True  # genuine: attacker


def test_only_the_first_signatures_are_checked() -> None:
    asked: list[bytes] = []

    def silent(name: bytes, timeout: float = 5) -> bytes | None:
        asked.append(name)
        return None

    sig = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s%d; h=from; bh=YWJj; b=YWJj\r\n"
    raw = b"".join(sig % n for n in range(500)) + BASE
    assert check(raw, trusted=(), verify_dkim=True, dnsfunc=silent)[0] is False
    assert 1 <= len(asked) <= MAX_SIGNATURES


def test_signature_checks_share_one_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("credmail.adapters.dkim_verifier.time.monotonic", lambda: clock[0])

    def slow(name: bytes, timeout: float = 5) -> bytes | None:
        clock[0] += MAX_DKIM_SECONDS / 2 + 0.1  # a nameserver that answers only at the timeout
        return None

    sig = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s%d; h=from; bh=YWJj; b=YWJj\r\n"
    raw = b"".join(sig % n for n in range(MAX_SIGNATURES)) + BASE
    check(raw, trusted=(), verify_dkim=True, dnsfunc=slow)
    assert clock[0] <= MAX_DKIM_SECONDS + MAX_DKIM_SECONDS / 2 + 0.1  # two lookups, not five


def test_unaligned_signatures_cost_no_lookup() -> None:
    asked: list[bytes] = []

    def silent(name: bytes, timeout: float = 5) -> bytes | None:
        asked.append(name)
        return None

    sig = b"DKIM-Signature: v=1; a=rsa-sha256; d=evil%d.example; s=s; h=from; bh=YWJj; b=YWJj\r\n"
    raw = b"".join(sig % n for n in range(500)) + BASE
    assert check(raw, trusted=(), verify_dkim=True, dnsfunc=silent)[0] is False
    assert asked == []
