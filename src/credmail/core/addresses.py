"""Addresses: the one key that compares a sender with the directory, and the forms of a
domain for the wire (A-labels) and for people (U-labels).

The key is the ASCII local part lowercased (a non-ASCII one kept as written: callers send
it to review) and the domain after UTS 46 processing without transitional mapping (IDNA
2008), in A-labels: `a@Straße.DE`, `a@xn--strae-oqa.de` and `a@straße.de.` share one key,
`a@strasse.de` has another, as DNS and every IDNA 2008 mail system see them. No +tag or
dot is stripped. Every key credmail stores or compares is made here (the database keeps
them in this form since migration 0007).

The pure core uses the `idna` package for it, the one library outside the standard one
that core may import (tests/unit/test_layering.py names it): the standard library only
has IDNA 2003 (`encodings.idna`, which maps `ß` to `ss` and so merges two domains), and
its own documentation points to this package for IDNA 2008. `idna` is pure Python, does
no I/O and holds no state; a key computed in core, in a migration and in an adapter is
the same key, where a key function injected from outside let two definitions coexist.
"""

from __future__ import annotations

import idna

ACE_PREFIX = "xn--"


class AddressError(ValueError):
    """An address that cannot be normalized."""


def normalize_address(address: str) -> str:
    """The lookup key of `address` (see the module); AddressError for anything that is
    not local@domain with a domain UTS 46 accepts."""
    local, domain = _parts(address)
    if local.isascii():
        local = local.lower()
    return f"{local}@{ascii_domain(domain)}"


def address_key(address: str) -> str | None:
    """The lookup key, or None when `address` has none."""
    try:
        return normalize_address(address)
    except AddressError:
        return None


def wire_address(address: str) -> str:
    """`address` as SMTP and a To field carry it: the local part as written, the domain in
    A-labels (a U-label would otherwise be RFC 2047-encoded, which no address may be).
    Unchanged when it has no key."""
    try:
        local, domain = _parts(address)
        return f"{local}@{ascii_domain(domain)}"
    except AddressError:
        return address


def ascii_domain(domain: str) -> str:
    """The domain in lowercase A-labels, without a trailing dot (UTS 46, non-transitional).

    An ASCII label that is not an A-label is only lowercased, as UTS 46 leaves it without
    the STD3 rules: an address literal or an underscore keeps the key it always had."""
    try:
        mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"bad domain {domain!r}") from exc
    labels = mapped.removesuffix(".").split(".")
    if not all(labels):
        raise AddressError(f"empty label in {domain!r}")
    return ".".join(map(_a_label, labels))


def display_domain(domain: str) -> str:
    """The domain for people: each valid A-label as its U-label (`xn--strae-oqa.de` ->
    `straße.de`); any other label as it is."""
    return ".".join(_unicode(label) or label for label in domain.split("."))


def _parts(address: str) -> tuple[str, str]:
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain:
        raise AddressError(f"not an address: {address!r}")
    return local, domain


def _is_ace(label: str) -> bool:
    return label[:4].lower() == ACE_PREFIX


def _a_label(label: str) -> str:
    if label.isascii() and not _is_ace(label):
        return label
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(f"bad domain label {label!r}") from exc


def _unicode(label: str) -> str | None:
    """An A-label's U-label, any other label as it is; None for an A-label not valid."""
    if not _is_ace(label):
        return label
    try:
        return idna.ulabel(label)
    except (idna.IDNAError, UnicodeError):
        return None


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback literals (the only hosts that may skip TLS)."""
    import ipaddress

    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_LATIN_LOOKALIKE_SCRIPTS = {"CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE"}
_STYLED_LATIN = {"FULLWIDTH", "MATHEMATICAL"}


def _scripts(text: str) -> set[str]:
    """The scripts of the letters in `text`, by the first word of their Unicode names."""
    import unicodedata

    return {unicodedata.name(char, "UNKNOWN").split()[0] for char in text if char.isalpha()}


def mixes_confusable_scripts(text: str) -> bool:
    """Latin letters next to a look-alike script, or styled (fullwidth, math) Latin.

    A name written wholly in one script (Ferrè, Nuñez, Παπαδόπουλος) is fine.
    """
    scripts = _scripts(text)
    return bool(scripts & _STYLED_LATIN) or (
        "LATIN" in scripts and bool(scripts & _LATIN_LOOKALIKE_SCRIPTS)
    )


def is_confusable_domain(key_domain: str) -> bool:
    """True when a label mixes scripts, or uses a script with Latin look-alikes, or is an
    A-label that is not valid.

    Takes the A-label form produced by normalize_address.
    """
    for label in key_domain.split("."):
        shown = _unicode(label)
        if shown is None:
            return True
        scripts = _scripts(shown)
        if len(scripts) > 1 or scripts & _LATIN_LOOKALIKE_SCRIPTS:
            return True
    return False
