"""Local DKIM verification with dkimpy: the signers' public keys are looked up in DNS.

Behind the `DkimVerifier` port, so that the service layer does no DNS I/O itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from email.headerregistry import Address

import structlog

from credmail.adapters.arc_verifier import ArcVerifier
from credmail.core.addresses import AddressError, normalize_address
from credmail.core.mail_policy import POLICY
from credmail.service.authentication import SenderAuthenticator, aligned

DnsLookup = Callable[..., bytes | None]
MIN_KEY_BITS = 1024
MAX_SIGNATURES = 5  # checked from the top: the receiving side's own signatures come first
MAX_DKIM_SECONDS = 15.0  # for all signatures of one message together


class LocalDkimVerifier:
    """Implements `DkimVerifier`; `dnsfunc` replaces the resolver (tests serve keys)."""

    def __init__(self, dns_timeout: float = 5, dnsfunc: DnsLookup | None = None) -> None:
        self.dns_timeout = dns_timeout
        self.dnsfunc = dnsfunc
        self.log = structlog.get_logger("credmail.auth")

    def verify(self, raw: bytes, sender: str) -> bool:
        """A valid, aligned signature that covers exactly the From credmail parsed.

        The message is parsed once; only signatures aligned with the From domain are
        tried (no other could count), at most MAX_SIGNATURES of them from the top, in
        MAX_DKIM_SECONDS all together (DNS included).
        """
        import dkim  # only schools that verify DKIM themselves pay for loading it

        message = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        head = message.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        try:
            candidates = _aligned_signatures(dkim.rfc822_parse(head)[0], sender)
            if not candidates:
                return False  # the body is never read
            verifier = dkim.DKIM(message, minkey=MIN_KEY_BITS, timeout=self.dns_timeout)
        except dkim.DKIMException as exc:
            self.log.info("auth.dkim_unparseable", error_type=type(exc).__name__)
            return False
        deadline = time.monotonic() + MAX_DKIM_SECONDS
        for index in candidates[:MAX_SIGNATURES]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.log.info("auth.dkim_budget_spent", index=index, signatures=len(candidates))
                break
            verifier.timeout = min(self.dns_timeout, remaining)
            try:
                kwargs = {"dnsfunc": self.dnsfunc} if self.dnsfunc else {}
                valid = verifier.verify(idx=index, **kwargs)
            except dkim.DKIMException as exc:
                self.log.info("auth.dkim_invalid", index=index, error_type=type(exc).__name__)
                continue
            if valid and _signed_from(verifier.headers) == sender:
                return True
        return False


def _aligned_signatures(headers: Sequence[tuple[bytes, bytes]], sender: str) -> list[int]:
    """Indexes (top first) of the DKIM-Signature fields whose d= is aligned with From."""
    from dkim.util import InvalidTagValueList, parse_tag_value

    from_domain = sender.rpartition("@")[2]
    found = []
    signatures = [value for name, value in headers if name.lower() == b"dkim-signature"]
    for index, value in enumerate(signatures):
        try:
            domain = parse_tag_value(value).get(b"d", b"").decode("ascii", "replace")
        except (InvalidTagValueList, UnicodeError):
            continue
        if domain and aligned(domain.strip(), from_domain):
            found.append(index)
    return found


def _signed_from(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The one From address among the fields dkimpy verified, as credmail's lookup key."""
    values = [value for name, value in headers if name.strip().lower() == b"from"]
    if len(values) != 1:
        return None
    text = values[0].decode("utf-8", "replace").strip()
    try:
        field = POLICY.header_factory("From", text)
        addresses: tuple[Address, ...] = tuple(getattr(field, "addresses", ()))
        if len(addresses) != 1:
            return None
        return normalize_address(addresses[0].addr_spec)
    except (AddressError, ValueError, IndexError):
        return None


def sender_authenticator(
    require: str,
    trusted_authserv_ids: Sequence[str],
    verify_dkim: bool = False,
    dns_timeout: float = 5,
    dnsfunc: DnsLookup | None = None,
    trusted_arc_sealers: Sequence[str] = (),
) -> SenderAuthenticator:
    """The authenticator as configured: ARC only with trusted sealers, local DKIM only when
    the school verifies it itself."""
    dkim = LocalDkimVerifier(dns_timeout, dnsfunc) if verify_dkim else None
    arc = ArcVerifier(trusted_arc_sealers, dns_timeout, dnsfunc) if trusted_arc_sealers else None
    return SenderAuthenticator(require, trusted_authserv_ids, dkim, arc)
