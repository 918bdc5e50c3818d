"""Published ports in netstitch's inet table (pure): the maps of both families and the DNAT rules that read them,
one rule per hook and kind, never one rule per port (kinds.nft puts them in its prerouting and output chains).

IPv4: (protocol, host port) -> container address and -> container port, for every address of the host; (host
address, protocol, host port) -> the same, for one address. IPv6 the same in its own maps (``pub6_*``), only when
the host publishes anything on IPv6: a port without ``host_ip`` of a container with an IPv6 address on the network
(every address of both families, Docker's default), on ``::`` (every IPv6 address) or on one IPv6 address. Address
and port live in two maps of one key each, because this nftables release cannot take a concatenated map value
through its JSON API."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.nftexpr import (
    ip as _ip, match as _match, meta as _meta, rule as _rule)

PUB_MAPS = {
    "pub_any_addr": {"type": ["inet_proto", "inet_service"], "map": "ipv4_addr"},
    "pub_any_port": {"type": ["inet_proto", "inet_service"], "map": "inet_service"},
    "pub_one_addr": {"type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "ipv4_addr"},
    "pub_one_port": {"type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "inet_service"},
}
PUB6_MAPS = {
    "pub6_any_addr": {"type": ["inet_proto", "inet_service"], "map": "ipv6_addr"},
    "pub6_any_port": {"type": ["inet_proto", "inet_service"], "map": "inet_service"},
    "pub6_one_addr": {"type": ["ipv6_addr", "inet_proto", "inet_service"], "map": "ipv6_addr"},
    "pub6_one_port": {"type": ["ipv6_addr", "inet_proto", "inet_service"], "map": "inet_service"},
}
ANY6 = "::"     # host_ip: every IPv6 address of the host


def family(p, network):
    """The families a published port is on: a subset of (4, 6). ``network``: its network in the host spec (a
    port without host_ip is on IPv6 too when the network is dual stack: every container there has an IPv6
    address)."""
    if not p.get("host_ip"):
        if network.get("subnet6"):
            return (6,) if network.get("subnet") is None else (4, 6)   # an IPv6-only network: IPv6 alone
        return (4,)
    return (ipaddress.ip_address(p["host_ip"]).version,)


def published6(spec, network):
    """Whether a network of the host spec has a port published on IPv6."""
    return any(p["network"] == network["name"] and 6 in family(p, network) for p in spec.get("publish", []))


def published(spec, addresses, addresses6):
    """(maps, rules): the published ports' maps and the DNAT rules that read them (for the prerouting and the
    output hook alike)."""
    nets = {n["name"]: n for n in spec["networks"]}
    el = {name: set() for name in list(PUB_MAPS) + list(PUB6_MAPS)}
    six = four = False
    for p in spec["publish"]:
        for fam in family(p, nets.get(p["network"], {})):
            ip = (addresses6 if fam == 6 else addresses).get((p["container"], p["ifname"]))
            pre = "pub6" if fam == 6 else "pub"
            six = six or fam == 6
            four = four or fam == 4
            if ip is None:
                continue
            ip = str(ip).split("/", 1)[0]
            if p["host_ip"] and p["host_ip"] != ANY6:
                key, kind = (p["host_ip"], p["protocol"], p["host_port"]), "one"
            else:
                key, kind = (p["protocol"], p["host_port"]), "any"
            el["%s_%s_addr" % (pre, kind)].add((key, (ip,)))
            el["%s_%s_port" % (pre, kind)].add((key, (p["container_port"],)))
    # a host that publishes on IPv6 only (IPv6-only networks): no IPv4 maps or rules
    four = four or not six
    maps = dict(PUB_MAPS if four else {}, **(PUB6_MAPS if six else {}))
    sets = {name: {"def": d, "elements": sorted(el[name])} for name, d in maps.items()}
    return sets, (_rules("ip", "pub") if four else []) + (_rules("ip6", "pub6") if six else [])


def _rules(fam, pre):
    th = {"payload": {"protocol": "th", "field": "dport"}}
    key_any = {"concat": [_meta("l4proto"), th]}
    key_one = {"concat": [_ip("daddr", fam), _meta("l4proto"), th]}

    def dnat(key, kind):
        return {"dnat": {"family": fam, "addr": {"map": {"key": key, "data": "@%s_%s_addr" % (pre, kind)}},
                         "port": {"map": {"key": key, "data": "@%s_%s_port" % (pre, kind)}}}}
    local = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
    if fam == "ip":
        return [_rule("published on every host address", [local, dnat(key_any, "any")]),
                _rule("published on one host address", [dnat(key_one, "one")])]
    # IPv6 has no route_localnet: a packet from ::1 never leaves through a bridge, so ::1 is not one of the
    # addresses (the host's connection to it is refused at once rather than lost)
    every = [_match(_meta("nfproto"), "ipv6"), local, _match(_ip("daddr", fam), "::1", op="!="), dnat(key_any, "any")]
    return [_rule("published on every host address (IPv6)", every),
            _rule("published on one host address (IPv6)", [dnat(key_one, "one")])]
