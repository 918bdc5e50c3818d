"""Kind: routed overlays (flannel host-gw): no encapsulation; each host owns its slice and routes the other hosts'
slices via their underlay addresses (routes marked with marks.ROUTE_PROTO). The containers' route to the whole
overlay subnet is part of their endpoint (kinds.endpoint).

IPv6 slices (a network with subnet6) go via the peer's IPv6 underlay address, or over an IPv4 underlay via the peer's
IPv6 link-local address on this host's underlay interface (Linux routes IPv6 via no IPv4 next hop): each host reports
the link-local address of its underlay interface in its prepare facts (``underlay_link_local``), and
``merge_peer_link_locals`` puts them into the spec before the run, as tinc's keys."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act


KEY = "routes"
LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")


def link_local(via):
    return ":" in via and ipaddress.IPv6Address(via) in LINK_LOCAL


def merge_peer_link_locals(spec, peers):
    """Fill in the IPv6 next hops that are the peers' link-local addresses (``via`` None in the spec) from their
    prepare facts; return warnings for peers without one (down, or prepare not run): their IPv6 slices are left out
    until a run has them."""
    warnings = []
    for n in spec["networks"]:
        for r in (n.get("overlay") or {}).get("routes6", []):
            if r["via"] is None:
                r["via"] = ((peers or {}).get(r["host"]) or {}).get("underlay_link_local")
                if not r["via"]:
                    warnings.append("network %s: no IPv6 link-local address of peer %s's underlay interface (its "
                                    "prepare facts did not reach this run); its IPv6 slice %s is left out until a "
                                    "run has it" % (n["name"], r["host"], r["dst"]))
    return warnings


def uplink(links, local):
    """The name of the host interface that holds the underlay address ``local``, or None."""
    want = ipaddress.ip_address(local)
    for name, l in sorted(links.items()):
        for a in l.get("addresses", []) + l.get("addresses6", []):
            if ipaddress.ip_interface(a).ip == want:
                return name
    return None


def desired(ctx):
    spec = ctx.spec
    routes = {}
    for n in spec["networks"]:
        o = n.get("overlay")
        if o and o["type"] == "routed":
            for r in o["routes"] + [r for r in o.get("routes6", []) if r["via"]]:
                routes[r["dst"]] = {"via": r["via"], "network": n["name"], "host": r["host"]}
                if link_local(r["via"]):
                    routes[r["dst"]]["local"] = o["local"]      # on the interface of this underlay address
    return routes


def diff(desired_state, current, out, ctx):
    have_routes = current.get("routes", {})
    wanted = desired_state.get("routes", {})
    for dst, want in sorted(wanted.items()):
        have = have_routes.get(dst, {})
        dev = None
        if "local" in want:
            dev = uplink(current.get("links", {}), want["local"])
            if dev is None:
                out.conflict("networks.%s: no interface of host %s holds its underlay address %s, the way to peer "
                             "%s's IPv6 link-local address" % (want["network"], desired_state["host"], want["local"],
                                                               want["host"]))
                continue
        if have.get("via") != want["via"] or have.get("dev") != dev:
            extra = {"dev": dev} if dev else {}
            out.add("overlays", act("route_add", "route %s via %s%s (host %s, network %s)" % (
                dst, want["via"], " dev %s" % dev if dev else "", want["host"], want["network"]), dst=dst,
                via=want["via"], replace=dst in have_routes, **extra))
    for dst, have in sorted(have_routes.items()):
        if dst not in wanted:
            extra = {"dev": have["dev"]} if have.get("dev") else {}
            out.add("overlays", act("route_del", "remove route %s via %s" % (dst, have["via"]), dst=dst,
                                    via=have["via"], **extra))
