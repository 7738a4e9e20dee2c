"""Is the From domain proven? Trusted Authentication-Results first, local DKIM as a fallback.

Authenticated means dmarc=pass for the From domain, or a passing DKIM signature whose
domain is aligned with it (same domain or same organizational domain). SPF never counts.
"""

from __future__ import annotations

import email
import email.policy
import functools
from collections.abc import Iterable, Sequence
from email.message import Message
from email.parser import BytesHeaderParser

import authres
from publicsuffixlist import PublicSuffixList

from credmail.core.parse import MAX_HEADER_BYTES, header_block
from credmail.core.values import InboundMail, SenderAuth
from credmail.service.ports import ArcResults, DkimVerifier


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """Loaded on first use: 25 ms that most runs (dmarc=pass from a trusted server) skip."""
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    domain = domain.lower().rstrip(".")
    return _public_suffixes().privatesuffix(domain) or domain


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489): equal organizational domains."""
    if signing_domain.lower().rstrip(".") == from_domain.lower().rstrip("."):
        return True
    return organizational_domain(signing_domain) == organizational_domain(from_domain)


class SenderAuthenticator:
    """`dkim` verifies signatures locally (an adapter: it looks keys up in DNS); None: off."""

    def __init__(
        self,
        require: str,
        trusted_authserv_ids: Sequence[str],
        dkim: DkimVerifier | None = None,
        arc: ArcResults | None = None,
    ) -> None:
        self.require = require
        self.trusted = {authserv.lower() for authserv in trusted_authserv_ids}
        self.dkim = dkim
        self.arc = arc

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
        sealed = self.arc.trusted_results(raw) if self.arc is not None else None
        method = _method(sealed, from_domain) if sealed is not None else None
        if method is not None:
            return SenderAuth(True, f"arc-{method}")
        if self.dkim is not None and self.dkim.verify(raw, mail.sender):
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


def unattributed_results(raw: bytes) -> bool:
    """An Authentication-Results field whose first element is a result, not an authserv-id
    (what Exchange Online writes): `spf=pass (...) smtp.mailfrom=...; dkim=pass ...`.
    Anyone can write one, so it is only reported (`auth_results_unattributed`)."""
    head = header_block(raw)[:MAX_HEADER_BYTES]
    fields = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    for value in fields.get_all("Authentication-Results") or []:
        first = " ".join(str(value).split()).split(";", 1)[0]
        if "=" in first.split("(", 1)[0]:
            return True
    return False
