"""One address key for the whole product (UTS 46 without transitional mapping, A-labels):
the key of an inbound sender equals the key stored at import for the same address in
every spelling; two different addresses never share a key; security requirement 4
(ASCII domain lowercased, ASCII local part case-insensitive, no +tag or dot stripped, a
non-ASCII local part to review)."""

from __future__ import annotations

import pytest

from credmail.core.addresses import (
    AddressError,
    address_key,
    display_domain,
    is_confusable_domain,
    normalize_address,
    wire_address,
)
from credmail.core.parse import parse_message
from credmail.service.directory_csv import addr_spec_problem
from tests.support.requests import request

SHARP_S = "a@xn--strae-oqa.de"
SAME_ADDRESS = {
    SHARP_S: [
        "a@straße.de",
        "a@xn--strae-oqa.de",
        "A@Straße.DE",
        "a@XN--STRAE-OQA.DE",
        "a@Xn--StRaE-oQa.de",
        "a@straße.de.",
        "a@xn--strae-oqa.de.",
        "a@straße．de",  # a fullwidth full stop is a dot (UTS 46 mapping)
        " a@straße.de ",
    ],
    "x@xn--mnchen-3ya.de": ["x@münchen.de", "X@MÜNCHEN.DE", "x@xn--mnchen-3ya.de"],
    "x@xn--nxasmm1c.gr": ["x@βόλος.gr", "x@xn--nxasmm1c.gr"],  # final sigma kept
    "x@xn--11b2ezcw70k.com": ["x@क्\u200dष.com"],  # ZWJ after a virama is kept (CONTEXTJ)
    "mario.rossi+scuola@example.org": ["Mario.Rossi+Scuola@Example.ORG"],
    "x@[192.0.2.1]": ["x@[192.0.2.1]"],  # an ASCII label that is no A-label: lowercased only
}
DIFFERENT = [
    ("a@straße.de", "a@strasse.de"),  # IDNA 2003 (transitional) merged these two
    ("x@βόλος.gr", "x@βόλοσ.gr"),  # final sigma
    ("x@क्\u200dष.com", "x@क्ष.com"),  # zero width joiner
    ("mario.rossi@example.org", "mariorossi@example.org"),  # no dot stripping
    ("mario+a@example.org", "mario@example.org"),  # no +tag stripping
    ("È@example.org", "è@example.org"),  # a non-ASCII local part is kept as written
]


@pytest.mark.parametrize("key", sorted(SAME_ADDRESS))
def test_every_spelling_of_one_address_has_one_key(key: str) -> None:
    for spelling in SAME_ADDRESS[key]:
        assert normalize_address(spelling) == key, spelling
        assert normalize_address(key) == key  # a key is its own key


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_addresses_keep_different_keys(one: str, other: str) -> None:
    assert normalize_address(one) != normalize_address(other)


@pytest.mark.parametrize(
    "address",
    [
        "x@a\u200db.com",  # a ZWJ in a Latin label (IDNA 2003 dropped it)
        "x@☃.net",  # a symbol (valid in IDNA 2003, not in IDNA 2008)
        "x@xn--n3h.net",  # the same as an A-label
        "x@xn--zz.com",  # not Punycode
        "x@a..b",
        "x@",
        "@example.org",
        "not an address",
    ],
)
def test_an_address_without_a_key(address: str) -> None:
    with pytest.raises(AddressError):
        normalize_address(address)
    assert address_key(address) is None


def inbound(sender: str) -> bytes:
    """A request whose From field carries `sender` as it is (raw UTF-8 when not ASCII, as
    an SMTPUTF8 mail does)."""
    raw = request("placeholder@example.org", "Richiesta credenziali")
    return raw.replace(b"placeholder@example.org", sender.encode())


@pytest.mark.parametrize("key", sorted(SAME_ADDRESS))
def test_an_inbound_sender_gets_the_key_the_directory_stored(key: str) -> None:
    for spelling in SAME_ADDRESS[key]:
        if "[" in spelling or spelling != spelling.strip():
            continue  # not an address a From field carries as it is
        sender = parse_message(inbound(spelling.rstrip("."))).sender
        assert sender == normalize_address(spelling) == key, spelling


def test_a_non_ascii_local_part_goes_to_review() -> None:
    mail = parse_message(inbound("màrio@example.org"))
    assert mail.sender == "màrio@example.org"
    assert "non_ascii_local_part" in mail.from_problems


def test_the_directory_accepts_what_has_a_key() -> None:
    assert addr_spec_problem("a@straße.de") is None
    assert addr_spec_problem("a@xn--strae-oqa.de") is None
    assert addr_spec_problem("x@☃.net") == "bad domain"


def test_the_wire_form_keeps_the_local_part_and_writes_a_labels() -> None:
    assert wire_address("Mario.Rossi@Straße.de") == "Mario.Rossi@xn--strae-oqa.de"
    assert wire_address("mario@example.org") == "mario@example.org"
    assert wire_address("not an address") == "not an address"


def test_a_domain_is_shown_with_u_labels() -> None:
    assert display_domain("xn--strae-oqa.de") == "straße.de"
    assert display_domain("mail.xn--mnchen-3ya.de") == "mail.münchen.de"
    assert display_domain("example.org") == "example.org"
    assert display_domain("xn--zz.com") == "xn--zz.com"  # not valid: shown as it is


@pytest.mark.parametrize(
    ("domain", "confusable"),
    [
        ("xn--strae-oqa.de", False),
        ("example.org", False),
        ("xn--pple-43d.com", True),  # Cyrillic а in "аpple"
        ("xn--80ak6aa92e.com", True),  # all Cyrillic "аррӏе"
        ("xn--zz.com", True),  # an A-label that is not valid
    ],
)
def test_confusable_domains_are_judged_on_their_u_labels(domain: str, confusable: bool) -> None:
    assert is_confusable_domain(domain) is confusable
