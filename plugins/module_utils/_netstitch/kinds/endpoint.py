"""Kind: a container's interface on a network: a veth pair, the host end a port of the network's bridge, the
container end in the container's namespace with its address, default route, the route to the rest of a routed
overlay, and on shared overlays (vxlan, tinc) the local gateway pinned by a permanent neighbour entry."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act, fmt_changes, port_changes, v4
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.current import endpoint_peer
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import chain


KEY = "endpoints"


def desired(ctx):
    """{host_ifname: endpoint}. ``ctx.addresses`` maps (container, ifname) to an IPv4Address (ipam.allocate)."""
    spec, addresses = ctx.spec, ctx.addresses
    nets = {n["name"]: n for n in spec["networks"]}
    endpoints = {}
    # a container reaching its own published port through a host address comes back through its own bridge port
    hairpin = {(p["container"], p["ifname"]) for p in spec.get("publish", [])}
    steered = chain.routes(spec, addresses, ctx.peers)[0] if spec.get("chains") else {}
    for c in spec["containers"]:
        if c.get("absent"):
            continue        # a Docker container that is not running: nothing to attach (its lease is kept)
        # a Docker container's namespace: the path the engine resolved it to (/proc/PID/ns/net), else its reference
        ns = c.get("netns") or c["docker"]
        for itf in c["interfaces"]:
            if itf["network"] not in nets:
                continue    # on a macvlan network (kinds.macvlan): no veth
            e = endpoints[itf["host_ifname"]] = _endpoint(c, ns, itf, nets[itf["network"]], addresses)
            if nets[itf["network"]].get("subnet6"):
                _dual_stack(e, itf, nets[itf["network"]], ctx.addresses6[(c["name"], itf["name"])])
                # Docker disables IPv6 in a container whose networks are not IPv6 ones (--network none too)
                e["enable_ipv6"] = c["kind"] == "docker"
            if (c["name"], itf["name"]) in hairpin:
                e["hairpin"] = True
            if (c["name"], itf["name"]) in steered:
                # a service chain's routes (kinds.chain): the interface's own, as the rest of its routes
                e["routes"] = e["routes"] + [[dst, via] for dst, via, _name in steered[(c["name"], itf["name"])]]
                e["chains"] = {dst: name for dst, _via, name in steered[(c["name"], itf["name"])]}
    return endpoints


def _endpoint(c, ns, itf, n, addresses):
    """The endpoint (its IPv4 side: none on an IPv6-only network, whose address and gateway are None)."""
    has_v4 = bool(n["subnet"])
    soft = bool(itf.get("default_route_soft"))
    overlay = (n.get("overlay") or {}).get("type")
    return {
        "container": c["name"],
        "netns": ns,
        "ifname": itf["name"],
        "network": n["name"],
        "bridge": n["bridge"],
        "alias": marks.veth_alias(c["name"], itf["name"], n["name"]),
        "mtu": n["mtu"],
        "mac": itf["mac"],
        "address": "%s/%d" % (addresses[(c["name"], itf["name"])], ipaddress.IPv4Network(n["subnet"]).prefixlen)
        if has_v4 else None,
        "gateway": n["gateway"] if itf["default_route"] and has_v4 else None,
        # the implicit default route of a Docker container yields to a default route Docker gave it
        "gateway_soft": soft,
        # routed: the rest of the overlay is behind the local gateway (unless the default route says so; a default
        # route that may yield does not)
        "routes": [[n["overlay"]["subnet"], n["gateway"]]] if overlay == "routed" and
        (soft or not itf["default_route"]) else [],
        # on a shared overlay every host's bridge holds the gateway address: pin the local one
        "gateway_neigh": [n["gateway"], n["bridge_mac"]] if overlay in ("vxlan", "tinc") and has_v4 else None,
    }


def _dual_stack(e, itf, n, address6):
    """The IPv6 half of an endpoint on a dual-stack network: its address (canonical text) and, with the default
    route, the IPv6 default route via the network's gateway6."""
    e["address6"] = "%s/%d" % (address6, ipaddress.IPv6Network(n["subnet6"]).prefixlen)
    e["gateway6"] = n["gateway6"] if itf["default_route"] else None
    if (n.get("overlay") or {}).get("type") == "routed" and (itf.get("default_route_soft") or not itf["default_route"]):
        e["routes"].append([n["overlay"]["subnet6"], n["gateway6"]])     # the other hosts' IPv6 slices
    if (n.get("overlay") or {}).get("type") in ("vxlan", "tinc"):
        # every host's bridge holds the gateway6 too (and answers its neighbour solicitations): pin the local one
        e["gateway_neigh6"] = [n["gateway6"], n["bridge_mac"]]


def diff(desired_state, current, out, ctx):
    """``ctx.lingering``: host ends of the veths of Docker containers that are not running (the kernel removes them
    with the container's namespace a moment after it stops): neither pruned nor touched meanwhile."""
    links = current.get("links", {})
    known_ns = set(current.get("named_netns", [])) | set(desired_state["netns"])
    for hname, want in sorted(desired_state["endpoints"].items()):
        _one(hname, want, desired_state, current, links, known_ns, out)
    tenants = {n for t in desired_state.get("tenants", {}).values() for n in list(t["legs"]) + [t["uplink"]["name"]]}
    for name, link in sorted(links.items()):
        if marks.owned(link) and link.get("kind") == "veth" and name not in desired_state["endpoints"] \
                and name not in ctx.lingering and not marks.plugin_made(link) and name not in tenants:    # the Docker plugin's: never planned
            out.add("prune", act("link_del", "remove veth %s (%s)" % (name, marks.alias_text(link)), ns=None,
                                 name=name))


def _one(hname, want, desired_state, current, links, known_ns, out):
    host = desired_state["host"]
    have = links.get(hname)
    where = "containers.%s (interface %s)" % (want["container"], want["ifname"])
    ns_state = (current.get("netns") or {}).get(want["netns"])
    if want["netns"] not in known_ns and ns_state is None:
        out.conflict("%s: network namespace %s does not exist on host %s" % (where, want["netns"], host))
        return
    if have is not None and (not marks.owned(have) or have.get("kind") != "veth"):
        out.conflict("%s: interface %s exists on host %s and netstitch did not create it" % (where, hname, host))
        return
    peer_name, peer = endpoint_peer(current, hname, want["netns"])
    if have is not None and peer_name != want["ifname"]:
        # the pair is broken, moved or renamed: replace it
        out.add("replace", act("link_del", "replace veth %s (its container end is not %s in %s)"
                               % (hname, want["ifname"], want["netns"]), ns=None, name=hname))
        have = peer = None
    in_the_way = (ns_state or {}).get("links", {}).get(want["ifname"]) if peer is None else None
    if in_the_way is not None:
        out.conflict("%s: interface %s already exists in namespace %s and netstitch did not create it"
                     % (where, want["ifname"], want["netns"]))
        return
    if have is None:
        extra = {"hairpin": True} if want.get("hairpin") else {}
        out.add("veths", act("veth_add", "create veth %s on %s, container end %s in %s (mtu %d%s)"
                             % (hname, want["bridge"], want["ifname"], want["netns"], want["mtu"],
                                ", hairpin on" if extra else ""),
                             name=hname, master=want["bridge"], mtu=want["mtu"], alias=want["alias"],
                             peer={"netns": want["netns"], "name": want["ifname"], "mtu": want["mtu"],
                                   "mac": want["mac"]}, **extra))
        peer = {"mtu": want["mtu"], "mac": want["mac"], "up": False, "addresses": []}
    else:
        changes = port_changes(have, want["bridge"], want["mtu"], want["alias"], bool(want.get("hairpin")))
        if changes:
            out.add("veths", act("link_set", "set %s on veth %s" % (fmt_changes(changes), hname), ns=None,
                                 name=hname, changes=changes))
    flushed = _container_end(want, peer, out)
    _container_end6(want, peer, out)
    if default_route(where, want, ns_state, peer_name, flushed, desired_state, out) and \
            _default_route6(where, want, ns_state, peer_name, desired_state, out):
        _routes_and_neighbours(want, ns_state, peer_name, flushed, out)


def _container_end(want, peer, out):
    """Link settings and address of the container end; returns whether its old addresses all go (the kernel then
    drops the routes through it)."""
    ns, ifn = want["netns"], want["ifname"]
    changes = {}
    if peer["mtu"] != want["mtu"]:
        changes["mtu"] = want["mtu"]
    if peer.get("mac") != want["mac"]:
        changes["mac"] = want["mac"]
    if not peer["up"]:
        changes["up"] = True
    if changes:
        out.add("containers", act("link_set", "set %s on %s in %s" % (fmt_changes(changes), ifn, ns), ns=ns, name=ifn,
                                  changes=changes))
    for a in v4(peer["addresses"]):
        if a != want["address"]:
            out.add("containers", act("addr_del", "remove address %s from %s in %s" % (a, ifn, ns), ns=ns, name=ifn,
                                      address=a))
    if want["address"] and want["address"] not in peer["addresses"]:
        out.add("containers", act("addr_add", "add address %s to %s in %s" % (want["address"], ifn, ns), ns=ns,
                                  name=ifn, address=want["address"]))
    return bool(v4(peer["addresses"])) and want["address"] not in peer["addresses"]


def _container_end6(want, peer, out):
    """The container end's global IPv6 address (the kernel's link-local one is not read): the one wanted, no
    other."""
    ns, ifn = want["netns"], want["ifname"]
    have = peer.get("addresses6", [])
    for a in sorted(have):
        if a != want.get("address6"):
            out.add("containers", act("addr_del", "remove address %s from %s in %s" % (a, ifn, ns), ns=ns, name=ifn,
                                      address=a))
    if want.get("address6") and want["address6"] not in have:
        if want.get("enable_ipv6"):
            out.add("containers", act("sysctl_set", "enable IPv6 on %s in %s" % (ifn, ns), ns=ns, name=ifn,
                                      key="net/ipv6/conf/%s/disable_ipv6" % ifn, value="0"))
        out.add("containers", act("addr_add", "add address %s to %s in %s" % (want["address6"], ifn, ns), ns=ns,
                                  name=ifn, address=want["address6"]))


def _default_route6(where, want, ns_state, peer_name, desired_state, out):
    """The namespace's IPv6 default route: via the gateway6 of the interface carrying the default route. On a
    dual-stack network a foreign one was already refused with the IPv4 default route (one interface carries both);
    on an IPv6-only network it is refused here. Returns False on a conflict."""
    ns, ifn = want["netns"], want["ifname"]
    route = (ns_state or {}).get("default_route6")
    if want.get("gateway6"):
        if want.get("gateway_soft") and route is not None and route.get("dev") != ifn:
            return True     # the implicit default of a Docker container yields to Docker's own IPv6 default route
        if not want["gateway"] and route is not None and route.get("dev") not in _ours(ns, ns_state, desired_state):
            out.conflict("%s: namespace %s already has an IPv6 default route via %s that netstitch did not create; "
                         "set default_route: false" % (where, ns, route.get("dev")))
            return False
        if route != {"gateway": want["gateway6"], "dev": ifn}:
            out.add("containers", act("route_replace", "route default via %s dev %s in %s"
                                      % (want["gateway6"], ifn, ns), ns=ns, dev=ifn, gateway=want["gateway6"]))
    elif route is not None and route.get("dev") == ifn and peer_name:
        out.add("containers", act("route_del_default", "remove default route via %s dev %s in %s" % (
            route["gateway"], ifn, ns), ns=ns, dev=ifn, gateway=route["gateway"]))
    return True


def _ours(ns, ns_state, desired_state):
    """The interfaces of namespace ``ns`` that are netstitch's: wanted there, or marked (one that goes, as a macvlan
    leaving its network): a default route through one of them is netstitch's to replace."""
    ours = {e["ifname"] for e in list(desired_state["endpoints"].values()) +
            list(desired_state.get("macvlans", {}).values()) if e["netns"] == ns}
    ours.update(name for name, l in ((ns_state or {}).get("links") or {}).items() if marks.owned(l))
    return ours


def default_route(where, want, ns_state, peer_name, flushed, desired_state, out):
    """The namespace's default route, also before its veth exists (a foreign one must be seen at the first attach).
    Returns False on a conflict. (kinds.macvlan uses it too: its interfaces are netstitch's as well.)"""
    ns, ifn = want["netns"], want["ifname"]
    route = (ns_state or {}).get("default_route")
    if flushed and route is not None and route.get("dev") == ifn:
        route = None
    if want["gateway"]:
        # a route through another interface of netstitch's in the namespace (wanted, or a marked one that goes: a
        # macvlan leaving its network) is netstitch's to replace
        foreign = route is not None and route.get("dev") != ifn and route.get("dev") not in _ours(ns, ns_state,
                                                                                                  desired_state)
        if foreign and not want.get("gateway_soft"):
            out.conflict("%s: namespace %s already has a default route via %s that netstitch did not create; "
                         "set default_route: false" % (where, ns, route.get("dev")))
            return False
        if not foreign and route != {"gateway": want["gateway"], "dev": ifn}:
            out.add("containers", act("route_replace", "route default via %s dev %s in %s" % (want["gateway"], ifn, ns),
                                      ns=ns, dev=ifn, gateway=want["gateway"]))
    elif route is not None and route.get("dev") == ifn and peer_name:
        out.add("containers", act("route_del_default", "remove default route via %s dev %s in %s" % (
            route["gateway"], ifn, ns), ns=ns, dev=ifn, gateway=route["gateway"]))
    return True


def _routes_and_neighbours(want, ns_state, peer_name, flushed, out):
    ns, ifn = want["netns"], want["ifname"]
    have_routes = {(r["dst"], r["gateway"]) for r in (ns_state or {}).get("routes", []) if r["dev"] == ifn} \
        if peer_name and not flushed else set()
    want_routes = set(tuple(r) for r in want.get("routes", []))
    for dst, gw in sorted(have_routes - want_routes):
        out.add("containers", act("route_del_ns", "remove route %s via %s dev %s in %s" % (dst, gw, ifn, ns),
                                  ns=ns, dev=ifn, dst=dst, gateway=gw))
    steered = want.get("chains") or {}
    for dst, gw in sorted(want_routes - have_routes):
        extra = {"chain": steered[dst]} if dst in steered else {}
        out.add("containers", act("route_add_ns", "route %s via %s dev %s in %s%s" % (
            dst, gw, ifn, ns, " (chain %s)" % steered[dst] if extra else ""), ns=ns, dev=ifn, dst=dst, gateway=gw,
            **extra))
    # the kernel drops an interface's IPv4 neighbour entries (permanent ones too) with its last IPv4 address: flushed
    # ones are gone (its IPv6 ones stay)
    neighs = [n for n in (ns_state or {}).get("neighbours", []) if n["dev"] == ifn] if peer_name else []
    pinned = {n["ip"]: n["mac"] for n in neighs if not flushed or ":" in n["ip"]}
    wanted = dict(p for p in (want.get("gateway_neigh"), want.get("gateway_neigh6")) if p)
    for gw, mac in sorted(wanted.items()):
        if pinned.get(gw) != mac:
            out.add("containers", act("neigh_replace", "pin gateway %s at %s on %s in %s" % (gw, mac, ifn, ns),
                                      ns=ns, dev=ifn, ip=gw, mac=mac))
    for ip in sorted(pinned):
        if ip not in wanted:
            out.add("containers", act("neigh_del", "unpin %s on %s in %s" % (ip, ifn, ns), ns=ns, dev=ifn, ip=ip))
