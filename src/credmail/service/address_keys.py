"""The exact key of an address (IDNA 2008, UTS 46 without transitional mapping).

core/addresses.normalize_address is stdlib-only and folds domains with IDNA 2003, which
maps straße.de onto strasse.de: good enough to find candidates in the directory, not to
tell two people's addresses apart. This key is used wherever one address is chosen.
"""

from __future__ import annotations

import idna


def exact_key(address: str) -> str | None:
    """ASCII local part lowercased, domain in IDNA 2008 A-label form; None if invalid."""
    local, sep, domain = address.strip().rpartition("@")
    if not sep or not local or not domain:
        return None
    try:
        ascii_domain = idna.encode(domain.rstrip("."), uts46=True, transitional=False)
    except idna.IDNAError:
        return None
    if local.isascii():
        local = local.lower()
    return f"{local}@{ascii_domain.decode('ascii')}"
