"""Is the From domain proven? Trusted Authentication-Results first, local DKIM as a fallback.

Authenticated means dmarc=pass for the From domain, or a passing DKIM signature whose
domain is aligned with it (same domain or same organizational domain). SPF never counts.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable, Iterable, Sequence
from email.headerregistry import Address
from email.message import Message
from email.parser import BytesHeaderParser

import authres
import structlog
from publicsuffixlist import PublicSuffixList

from credmail.core.addresses import AddressError, normalize_address
from credmail.core.parse import MAX_HEADER_BYTES, header_block
from credmail.core.values import InboundMail, SenderAuth
from credmail.service.arc import ArcVerifier, unattributed_results

DnsLookup = Callable[..., bytes | None]
MIN_KEY_BITS = 1024
MAX_SIGNATURES = 5  # checked from the top: the receiving side's own signatures come first
MAX_DKIM_SECONDS = 15.0  # for all signatures of one message together

_PSL = PublicSuffixList()


def organizational_domain(domain: str) -> str:
    domain = domain.lower().rstrip(".")
    return _PSL.privatesuffix(domain) or domain


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489): equal organizational domains."""
    return organizational_domain(signing_domain) == organizational_domain(from_domain)


class SenderAuthenticator:
    def __init__(
        self,
        require: str,
        trusted_authserv_ids: Sequence[str],
        verify_dkim: bool = False,
        dns_timeout: float = 5,
        dnsfunc: DnsLookup | None = None,
        trusted_arc_sealers: Sequence[str] = (),
    ) -> None:
        self.arc = ArcVerifier(trusted_arc_sealers, dns_timeout, dnsfunc)
        self.require = require
        self.trusted = {authserv.lower() for authserv in trusted_authserv_ids}
        self.verify_dkim = verify_dkim
        self.dns_timeout = dns_timeout
        self.dnsfunc = dnsfunc
        self.log = structlog.get_logger("credmail.auth")

    def check(self, raw: bytes, mail: InboundMail) -> SenderAuth:
        if self.require == "off":
            return SenderAuth(True, "off")
        if mail.sender is None:
            return SenderAuth(False)
        from_domain = mail.sender.rpartition("@")[2]
        fields, problems = self._trusted_fields(raw)
        if problems:
            return SenderAuth(False, problems=problems)
        if len(fields) > 1:
            return SenderAuth(False, problems=("auth_results_conflict",))
        if fields:
            method = _method(fields[0], from_domain)
            return SenderAuth(method is not None, method or "none")
        sealed = self.arc.trusted_results(raw)
        method = _method(sealed, from_domain) if sealed is not None else None
        if method is not None:
            return SenderAuth(True, f"arc-{method}")
        if self.verify_dkim and self._local_dkim(raw, mail.sender):
            return SenderAuth(True, "dkim-local")
        unattributed = ("auth_results_unattributed",) if unattributed_results(raw) else ()
        return SenderAuth(False, problems=unattributed)

    def _trusted_fields(
        self, raw: bytes
    ) -> tuple[list[authres.AuthenticationResultsHeader], tuple[str, ...]]:
        head = header_block(raw)[:MAX_HEADER_BYTES]  # the body is never parsed here
        msg: Message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
        fields = []
        for value in msg.get_all("Authentication-Results") or []:
            text = " ".join(str(value).split())
            if text.split(";", 1)[0].strip().lower() not in self.trusted:
                continue
            try:
                fields.append(authres.AuthenticationResultsHeader.parse_value(text))
            except authres.AuthResError:
                return [], ("auth_results_unparseable",)
        return fields, ()

    def _local_dkim(self, raw: bytes, sender: str) -> bool:
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
        field = email.policy.default.header_factory("From", text)
        addresses: tuple[Address, ...] = tuple(getattr(field, "addresses", ()))
        if len(addresses) != 1:
            return None
        return normalize_address(addresses[0].addr_spec)
    except (AddressError, ValueError, IndexError):
        return None


def _method(field: authres.AuthenticationResultsHeader, from_domain: str) -> str | None:
    for result in field.results:
        passed = result.method == "dmarc" and result.result == "pass"
        if passed and _prop(result.properties, "header", "from") == from_domain:
            return "dmarc"
    for result in field.results:
        if result.method == "dkim" and result.result == "pass":
            signer = _prop(result.properties, "header", "d")
            if signer is None:
                identity = _prop(result.properties, "header", "i") or ""
                signer = identity.rpartition("@")[2] or None
            if signer and aligned(signer, from_domain):
                return "dkim"
    return None


def _prop(
    properties: Iterable[authres.AuthenticationResultProperty], kind: str, name: str
) -> str | None:
    for prop in properties:
        if prop.type == kind and prop.name == name:
            return str(prop.value).lower().rstrip(".")
    return None
