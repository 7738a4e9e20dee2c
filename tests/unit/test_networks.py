"""Client keys and trusted proxy ranges (credmail.core.networks): an IPv6 client is one
network, an IPv4-mapped address is its IPv4 address, and no proxy range may be so wide
that the internet could write its own X-Forwarded-For."""

from __future__ import annotations

import pytest

from credmail.core.networks import limit_key, parse_address, trusted_networks


def test_ipv4_clients_are_keyed_on_their_address() -> None:
    assert limit_key("198.51.100.7") == "198.51.100.7"
    assert limit_key("198.51.100.7") != limit_key("198.51.100.8")


def test_an_ipv4_mapped_address_is_its_ipv4_address() -> None:
    assert limit_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert str(parse_address("::ffff:198.51.100.7")) == "198.51.100.7"


def test_ipv6_clients_are_keyed_on_their_64_by_default() -> None:
    one, other = limit_key("2001:db8:1:2::1"), limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert one == other == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != one  # the next /64 is another client


def test_the_ipv6_prefix_is_configurable() -> None:
    assert limit_key("2001:db8:1:2::1", 56) == limit_key("2001:db8:1:ff::1", 56)
    assert limit_key("2001:db8:1:2::1", 128) == "2001:db8:1:2::1"


def test_something_that_is_no_address_is_its_own_key() -> None:
    assert limit_key("testclient") == "testclient"


@pytest.mark.parametrize(
    "value",
    ["0.0.0.0/0", "::/0", "10.0.0.0/7", "128.0.0.0/1", "::ffff:0.0.0.0/96", "fd00::/8"],
)
def test_catch_all_and_too_wide_ranges_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is wider than"):
        trusted_networks([value])


def test_proxies_private_networks_and_a_site_prefix_are_accepted() -> None:
    networks = trusted_networks(["127.0.0.1", "10.0.0.0/8", "fd12:3456:789a::/48", "::1"])
    assert [str(n) for n in networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "fd12:3456:789a::/48",
        "::1/128",
    ]
    assert str(trusted_networks(["::ffff:10.1.2.0/120"])[0]) == "10.1.2.0/24"
