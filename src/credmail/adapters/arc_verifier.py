"""ARC (RFC 8617): results a trusted intermediary sealed (dkimpy, with DNS lookups).

Microsoft 365 and Google seal what they verified at their edge in an ARC set. When the
whole chain validates (dkimpy, DNS within the configured timeout) and the highest
instance is sealed by a trusted sealer, that instance's ARC-Authentication-Results are
trusted like the school's own Authentication-Results. A failing chain, a set above the
trusted one by an untrusted sealer, or a trusted set below an untrusted one proves
nothing: only the highest instance is read, and only when the chain passes.

Exchange Online's `Authentication-Results` without an authserv-id is reported by
service/authentication.py (`auth_results_unattributed`), never read.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Callable, Sequence
from email.message import Message
from email.parser import BytesHeaderParser

import authres
import structlog

from credmail.core.parse import MAX_HEADER_BYTES, header_block

DnsLookup = Callable[..., bytes | None]
MIN_KEY_BITS = 1024
MAX_ARC_SETS = 10  # each set costs DNS lookups; real chains have one to three
MAX_ARC_SECONDS = 15.0  # DNS for the whole chain of one message together
_INSTANCE = re.compile(r"^\s*i\s*=\s*\d+\s*;", re.I)


def _headers(raw: bytes) -> Message:
    head = header_block(raw)[:MAX_HEADER_BYTES]  # the body is never parsed here
    return BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)


def sealed_by(sealer: str, trusted: Sequence[str]) -> bool:
    """The sealing domain is a trusted one or a subdomain of it."""
    sealer = sealer.lower().rstrip(".")
    return any(sealer == domain or sealer.endswith("." + domain) for domain in trusted)


class ArcVerifier:
    """The trusted ARC-Authentication-Results of a message, or None."""

    def __init__(
        self, trusted_sealers: Sequence[str], dns_timeout: float, dnsfunc: DnsLookup | None = None
    ) -> None:
        self.trusted = tuple(domain.lower().rstrip(".") for domain in trusted_sealers)
        self.dns_timeout = dns_timeout
        self.dnsfunc = dnsfunc
        self.log = structlog.get_logger("credmail.auth")

    def trusted_results(self, raw: bytes) -> authres.AuthenticationResultsHeader | None:
        seals = len(_headers(raw).get_all("ARC-Seal") or [])
        if not self.trusted or not seals:
            return None
        if seals > MAX_ARC_SETS:
            self.log.info("auth.arc_too_many_sets", sets=seals)
            return None
        import dkim  # only schools that trust ARC sealers pay for loading it
        from dkim.dnsplug import get_txt

        message = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        lookup = _budgeted(self.dnsfunc or get_txt, time.monotonic() + MAX_ARC_SECONDS)
        try:
            verifier = dkim.ARC(message, minkey=MIN_KEY_BITS, timeout=self.dns_timeout)
            chain, results, _ = verifier.verify(dnsfunc=lookup)
        except dkim.DKIMException as exc:
            self.log.info("auth.arc_invalid", error_type=type(exc).__name__)
            return None
        if chain != dkim.CV_Pass or not results:
            self.log.info("auth.arc_chain_failed", instances=len(results))
            return None
        top = results[0]  # dkimpy lists the instances from the highest down
        sealer = top["as-domain"].decode("ascii", "replace")
        if not sealed_by(sealer, self.trusted):
            self.log.info("auth.arc_untrusted_sealer", instance=top["instance"])
            return None
        return _parse_aar(top["aar-value"])


def _budgeted(lookup: DnsLookup, deadline: float) -> DnsLookup:
    """The lookup, each call cut to what is left of the budget; nothing once it is spent
    (a key not found: the chain fails)."""

    def budgeted(name: bytes, timeout: float = 5) -> bytes | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        return lookup(name, timeout=min(timeout, remaining))

    return budgeted


def _parse_aar(value: bytes) -> authres.AuthenticationResultsHeader | None:
    """`i=N; authserv-id [version]; results...` read as an Authentication-Results value."""
    text = " ".join(value.decode("utf-8", "replace").split())
    try:
        return authres.AuthenticationResultsHeader.parse_value(_INSTANCE.sub("", text, 1).strip())
    except authres.AuthResError:
        return None
