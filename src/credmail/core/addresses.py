"""Address normalization: the one key used to compare a sender with the directory."""

from __future__ import annotations


class AddressError(ValueError):
    """An address that cannot be normalized."""


def normalize_address(address: str) -> str:
    """Return the lookup key: ASCII local part lowercased, domain lowercased in IDNA form.

    +tags and dots are kept; a non-ASCII local part is kept as it is (callers send it
    to review). Raises AddressError for anything that is not local@domain.
    """
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain:
        raise AddressError(f"not an address: {address!r}")
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise AddressError(f"bad domain in {address!r}") from exc
    if local.isascii():
        local = local.lower()
    return f"{local}@{ascii_domain}"


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


def is_confusable_domain(ascii_domain: str) -> bool:
    """True when a label mixes scripts, or uses a script with Latin look-alikes.

    Takes the IDNA (xn--) form produced by normalize_address.
    """
    try:
        domain = ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:
        return True
    for label in domain.split("."):
        scripts = _scripts(label)
        if len(scripts) > 1 or scripts & _LATIN_LOOKALIKE_SCRIPTS:
            return True
    return False
