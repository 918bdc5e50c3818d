"""The netlink driver's view of a link (current.py shape) from a decoded link dump entry."""

import ipaddress

IFF_UP = 1


def link_view(l, names_by_index):
    master = l["master"]
    view = {
        "index": l["index"],
        "kind": l["kind"],
        "alias": l["alias"],
        "master": names_by_index.get(master) if master else None,
        "mtu": l["mtu"],
        "up": bool(l["flags"] & IFF_UP),
        "mac": l["address"],
        "peer_index": l["link"],
        "group": l["group"],
        "addresses": [],
        "addresses6": [],       # global IPv6 addresses (the kernel's link-local ones are not netstitch's)
    }
    if l.get("hairpin") is not None:    # a bridge port
        view["hairpin"] = l["hairpin"]
    if l["kind"] == "vxlan":
        view["vxlan"] = dict(l["vxlan"], local=canon(l["vxlan"]["local"])) if l["vxlan"] else None
        view["fdb"] = []
    return view


def canon(ip):
    """An address as the host spec has it: IPv6 in canonical text (RFC 5952), IPv4 as it is."""
    return str(ipaddress.IPv6Address(ip)) if ip and ":" in ip else ip
