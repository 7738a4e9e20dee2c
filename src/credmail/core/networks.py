"""Client addresses on the web: the proxy ranges a deployment may trust, and the key a
client's address is limited and locked out under.

An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, what a dual-stack socket reports for an
IPv4 peer) is the IPv4 address everywhere here. An IPv6 client is keyed on its network
(a /64 by default): one home or phone gets a whole /64 and picks any address in it, so a
key on the full address would never hold it back.

A trusted range wider than MAX_PREFIX allows is refused. 10.0.0.0/8, the widest private
IPv4 block, holds any cluster's pod network or VPC; anything wider takes in public
addresses, whose clients could then write their own X-Forwarded-For and choose their limit
key. An IPv6 site gets a /48 (RFC 4193 for private ULA prefixes, the RIRs for public
ones) and a provider at most a /32, so nothing wider than a /32 names a set of proxies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_PREFIX = {4: 8, 6: 32}  # the widest trusted range: /8 (IPv4), /32 (IPv6)
DEFAULT_IPV6_PREFIX = 64
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_address(value: str) -> Address | None:
    """The address in `value` (IPv4-mapped IPv6 as IPv4), or None for anything else."""
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(value: str) -> Network:
    """A network as written (host bits ignored); `::ffff:a.b.c.d/n` as the IPv4 network it
    maps. Raises ValueError for anything that is not one."""
    network = ipaddress.ip_network(value.strip(), strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # inside ::ffff:0:0/96
        return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The proxy ranges to believe, each checked: a ValueError names the first bad one."""
    networks = []
    for value in values:
        try:
            network = parse_network(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
        widest = MAX_PREFIX[network.version]
        if network.prefixlen < widest:
            raise ValueError(
                f"{value!r} is wider than /{widest}: every client in it could choose its own "
                "address with X-Forwarded-For; list the proxies' own addresses or network"
            )
        networks.append(network)
    return tuple(networks)


def is_trusted(address: Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def limit_key(address: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The key a client's limits and lockouts count under: its IPv4 address, its IPv6
    network (`2001:db8:1:2::/64`), or the text itself when it is no address."""
    parsed = parse_address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv4Address) or ipv6_prefix >= 128:
        return str(parsed)
    return str(ipaddress.IPv6Network(f"{parsed}/{ipv6_prefix}", strict=False))
