"""Kind: one Linux bridge per network on each host carrying it, with the network's gateway address (its own slice's
gateway on a routed overlay) and a MAC unique per host."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act, fmt_changes, v4
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import sysctl


KEY = "bridges"
LOOPBACK = "127.0.0.0/8"


def desired(ctx):
    spec = ctx.spec
    bridges = {}
    loopback = loopback_networks(spec)
    for n in spec["networks"]:
        bridges[n["bridge"]] = {
            "network": n["name"],
            "alias": marks.bridge_alias(n["name"]),
            "mtu": n["mtu"],
            "mac": n["bridge_mac"],
            # an IPv6-only network (no subnet): no IPv4 address on its bridge
            "addresses": ["%s/%d" % (n["gateway"], ipaddress.IPv4Network(n["subnet"]).prefixlen)]
            if n["subnet"] else [],
        }
        if n.get("tenant"):
            # the gateway is in the tenant's router namespace (kinds.tenant): the bridge has no address
            bridges[n["bridge"]].update(addresses=[], mac=n["tenant"]["bridge_mac"])
        if n.get("subnet6"):
            # dual stack: the IPv6 gateway too, added without duplicate address detection (nodad: netstitch gave
            # the address out, and a tentative address would not answer at once)
            plen6 = ipaddress.IPv6Network(n["subnet6"]).prefixlen
            bridges[n["bridge"]]["addresses6"] = ["%s/%d" % (n["gateway6"], plen6)]
            if not n["internal"]:
                # IPv6 forwarding of what the containers send, on this bridge only (never the host-wide switch)
                bridges[n["bridge"]]["forwarding6"] = True
        if n["name"] in loopback:
            # a port published on 127.0.0.1: the host's own connection to it is routed out of this bridge with a
            # loopback source, which the kernel allows only with route_localnet on the bridge (kinds.nft guards it)
            bridges[n["bridge"]]["route_localnet"] = True
    return bridges


def loopback(p):
    """A published port on a loopback address of the host (127.0.0.0/8)."""
    return bool(p.get("host_ip")) and p["host_ip"].startswith("127.")


def loopback_networks(spec):
    """The networks with a port published on a loopback address of this host: their bridges get route_localnet,
    and kinds.nft adds the loopback masquerade and the loopback guard."""
    return {p["network"] for p in spec.get("publish", []) if loopback(p)}


def route_localnet_key(bridge):
    """The sysctl of a bridge's route_localnet, as a path under /proc/sys (a bridge name may hold a dot)."""
    return "net/ipv4/conf/%s/route_localnet" % bridge


def forwarding6_key(bridge):
    """The sysctl that forwards IPv6 received on one interface (force_forwarding, Linux 6.17 and later) while the
    host-wide switch (net.ipv6.conf.all.forwarding, which also changes how every interface takes router
    advertisements) stays as it is."""
    return "net/ipv6/conf/%s/force_forwarding" % bridge


def disable6_key(bridge):
    """The sysctl that turns IPv6 off on one interface: a host (or a container host Docker started) whose default
    has it off gives a new bridge IPv6 off too, and its gateway6 could not be added."""
    return "net/ipv6/conf/%s/disable_ipv6" % bridge


def diff(desired_state, current, out, ctx):
    """``ctx.adopt``: bridges Docker made for netstitch's Docker networks (kinds.docker_network.adoptable_bridges):
    netstitch's to manage although they carry no mark yet."""
    links = current.get("links", {})
    adopt = ctx.adopt
    for name, want in sorted(desired_state["bridges"].items()):
        have = links.get(name)
        if have is None:
            out.add("bridges", act("bridge_add", "create bridge %s (network %s, mtu %d)" % (
                name, want["network"], want["mtu"]), name=name, mtu=want["mtu"], mac=want["mac"], alias=want["alias"]))
            # whether the host's default turns IPv6 off on it is known only once it exists: said once, then read
            have = {"addresses": [], "up": False, "ipv6_disabled": bool(want.get("addresses6"))}
        elif (not marks.owned(have) and name not in adopt) or have.get("kind") != "bridge":
            out.conflict("networks.%s.bridge: interface %s exists on host %s and netstitch did not create it%s"
                         % (want["network"], name, desired_state["host"],
                            "" if have.get("kind") == "bridge" else " (it is a %s)" % (have.get("kind") or "device")))
            continue
        else:
            _changes(name, want, have, out)
        for a in v4(have["addresses"]):
            if a not in want["addresses"]:
                out.add("bridges", act("addr_del", "remove address %s from bridge %s" % (a, name), ns=None, name=name,
                                       address=a))
        for a in want["addresses"]:
            if a not in have["addresses"]:
                out.add("bridges", act("addr_add", "add address %s to bridge %s" % (a, name), ns=None, name=name,
                                       address=a))
        if want.get("addresses6") and have.get("ipv6_disabled"):
            out.add("bridges", act("sysctl_set", "enable IPv6 on bridge %s" % name, key=disable6_key(name), value="0",
                                   bridge=name))
        _addresses6(name, want.get("addresses6", []), have.get("addresses6", []), out)
        if not have["up"]:
            out.add("bridges", act("link_set", "bring bridge %s up" % name, ns=None, name=name, changes={"up": True}))
        localnet = bool(want.get("route_localnet"))
        if bool(have.get("route_localnet")) != localnet:
            out.add("bridges", act("sysctl_set", "set route_localnet = %d on bridge %s" % (localnet, name),
                                   key=route_localnet_key(name), value="1" if localnet else "0", bridge=name))
        forwarding6 = bool(want.get("forwarding6"))
        # a kernel without per-interface IPv6 forwarding (before 6.17): nothing to set (README, IPv6)
        if sysctl.forwarding6_per_interface(current) and bool(have.get("forwarding6")) != forwarding6:
            out.add("bridges", act("sysctl_set", "set IPv6 forwarding = %d on bridge %s" % (forwarding6, name),
                                   key=forwarding6_key(name), value="1" if forwarding6 else "0", bridge=name))
    for name, link in sorted(links.items()):
        if marks.owned(link) and link.get("kind") == "bridge" and name not in desired_state["bridges"]:
            out.add("post", act("link_del", "remove bridge %s (%s)" % (name, marks.alias_text(link)), ns=None,
                                name=name))


def _addresses6(name, want, have, out):
    """The bridge's global IPv6 addresses (the kernel's link-local one is not read): canonical text on both sides
    (hostspec and the driver), so a spelling never makes a change."""
    for a in sorted(have):
        if a not in want:
            out.add("bridges", act("addr_del", "remove address %s from bridge %s" % (a, name), ns=None, name=name,
                                   address=a))
    for a in want:
        if a not in have:
            out.add("bridges", act("addr_add", "add address %s to bridge %s" % (a, name), ns=None, name=name,
                                   address=a))


def _changes(name, want, have, out):
    changes = {}
    if have["mtu"] != want["mtu"]:
        changes["mtu"] = want["mtu"]
    if have.get("mac") != want["mac"]:
        changes["mac"] = want["mac"]
    if have.get("alias") != want["alias"]:
        changes["alias"] = want["alias"]
    if changes:
        out.add("bridges", act("link_set", "set %s on bridge %s" % (fmt_changes(changes), name), ns=None, name=name,
                               changes=changes))
