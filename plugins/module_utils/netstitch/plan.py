"""The per-host planner (pure): desired state + current state -> ordered actions.

Nothing here touches a host. ``desired_state`` resolves a host spec (from compile) with the allocated addresses;
``plan`` compares it with the current state (from the netlink driver) and returns the actions that make the host
match, plus conflicts (objects in the way that netstitch does not own). Only objects netstitch marked as its own
(see model.ALIAS_PREFIX) are ever changed or removed.
"""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import state as st
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.model import ALIAS_PREFIX

SYSCTL_FORWARD = "net.ipv4.ip_forward"
SYSCTL_BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"   # read only: whether bridged traffic passes the inet hooks


ROUTE_PROTO = 159      # rtm_protocol of the routes netstitch adds (routed overlays): its ownership mark
ZERO_MAC = "00:00:00:00:00:00"


def bridge_alias(network):
    return "%sbridge %s" % (ALIAS_PREFIX, network)


def vxlan_alias(network):
    return "%svxlan %s" % (ALIAS_PREFIX, network)


def tap_alias(network):
    return "%stap %s" % (ALIAS_PREFIX, network)


def veth_alias(container, ifname, network):
    return "%sveth %s/%s %s" % (ALIAS_PREFIX, container, ifname, network)


def desired_state(spec, addresses):
    """Resolve a host spec into the desired state of the host. ``addresses`` maps (container, ifname) to an
    IPv4Address (from ipam.allocate)."""
    nets = {n["name"]: n for n in spec["networks"]}
    bridges = {}
    for n in spec["networks"]:
        subnet = ipaddress.IPv4Network(n["subnet"])
        bridges[n["bridge"]] = {
            "network": n["name"],
            "alias": bridge_alias(n["name"]),
            "mtu": n["mtu"],
            "mac": n["bridge_mac"],
            "addresses": ["%s/%d" % (n["gateway"], subnet.prefixlen)],
        }
    vxlans, routes, tincs = {}, {}, {}
    for n in spec["networks"]:
        o = n.get("overlay")
        if not o:
            continue
        if o["type"] == "vxlan":
            fdb = set()
            for p in o["peers"]:
                fdb.add((ZERO_MAC, p["underlay"]))
                fdb.update((mac, p["underlay"]) for mac in p["macs"])
            vxlans[o["device"]] = {
                "network": n["name"], "alias": vxlan_alias(n["name"]), "vni": o["vni"], "port": o["port"],
                "local": o["local"], "learning": o["learning"], "mtu": n["mtu"], "master": n["bridge"],
                "fdb": sorted(fdb)}
        elif o["type"] == "tinc":
            tincs[n["name"]] = {
                "network": n["name"], "device": o["device"], "port": o["port"], "local": o["local"],
                "peers": [{"host": p["host"], "underlay": p["underlay"], "pubkey": p.get("pubkey")} for p in o["peers"]],
                "master": n["bridge"], "mtu": n["mtu"], "alias": tap_alias(n["name"])}
        elif o["type"] == "routed":
            for r in o["routes"]:
                routes[r["dst"]] = {"via": r["via"], "network": n["name"], "host": r["host"]}
    endpoints = {}
    netns = []
    for c in spec["containers"]:
        # a Docker container's namespace: the path the engine resolved it to (/proc/PID/ns/net), else its reference
        ns = c.get("netns") or c["docker"]
        if c["kind"] == "netns":
            netns.append(ns)
        if c.get("absent"):
            continue        # a Docker container that is not running: nothing to attach (its lease is kept)
        for itf in c["interfaces"]:
            n = nets[itf["network"]]
            plen = ipaddress.IPv4Network(n["subnet"]).prefixlen
            soft = bool(itf.get("default_route_soft"))
            endpoints[itf["host_ifname"]] = {
                "container": c["name"],
                "netns": ns,
                "ifname": itf["name"],
                "network": n["name"],
                "bridge": n["bridge"],
                "alias": veth_alias(c["name"], itf["name"], n["name"]),
                "mtu": n["mtu"],
                "mac": itf["mac"],
                "address": "%s/%d" % (addresses[(c["name"], itf["name"])], plen),
                "gateway": n["gateway"] if itf["default_route"] else None,
                # the implicit default route of a Docker container yields to a default route Docker gave it
                "gateway_soft": soft,
                # routed: the rest of the overlay is behind the local gateway (unless the default route says so;
                # a default route that may yield does not)
                "routes": [[n["overlay"]["subnet"], n["gateway"]]] if (n.get("overlay") or {}).get("type") ==
                "routed" and (soft or not itf["default_route"]) else [],
                # on a shared overlay every host's bridge holds the gateway address: pin the local one
                "gateway_neigh": [n["gateway"], n["bridge_mac"]] if (n.get("overlay") or {}).get("type") in
                ("vxlan", "tinc") else None,
            }
    forward = any(not n["internal"] for n in spec["networks"])
    return {
        "host": spec["host"],
        "bridges": bridges,
        "endpoints": endpoints,
        "netns": sorted(set(netns)),
        "vxlans": vxlans,
        "routes": routes,
        "tincs": tincs,
        "sysctl": {SYSCTL_FORWARD: "1"} if forward else {},
    }


def _act(op, text, **kw):
    kw["op"] = op
    kw["text"] = text
    return kw


def _v4(addrs):
    return sorted(a for a in addrs if ":" not in a)


def plan(desired, current):
    """Return (actions, conflicts). Conflicts are strings; when there are any, nothing may be applied."""
    conflicts = []
    links = current.get("links", {})
    pre, bridges_a, veth_del, veth_a, ctr_a, post = [], [], [], [], [], []

    # sysctls (only ever raised: netstitch never lowers a forwarding switch someone else needs)
    for key, value in sorted(desired["sysctl"].items()):
        if current.get("sysctl", {}).get(key) != value:
            pre.append(_act("sysctl_set", "set %s = %s" % (key, value), key=key, value=value))

    # namespaces of netns containers
    existing_ns = set(current.get("named_netns", []))
    for ns in desired["netns"]:
        if ns not in existing_ns:
            pre.append(_act("netns_add", "create network namespace %s" % ns, netns=ns))

    # bridges
    for name, want in sorted(desired["bridges"].items()):
        have = links.get(name)
        if have is None:
            bridges_a.append(_act("bridge_add", "create bridge %s (network %s, mtu %d)" % (name, want["network"], want["mtu"]),
                                  name=name, mtu=want["mtu"], mac=want["mac"], alias=want["alias"]))
            have = {"addresses": [], "up": False}
        elif not st.owned(have) or have.get("kind") != "bridge":
            conflicts.append("networks.%s.bridge: interface %s exists on host %s and netstitch did not create it%s"
                             % (want["network"], name, desired["host"],
                                "" if have.get("kind") == "bridge" else " (it is a %s)" % (have.get("kind") or "device")))
            continue
        else:
            changes = {}
            if have["mtu"] != want["mtu"]:
                changes["mtu"] = want["mtu"]
            if have.get("mac") != want["mac"]:
                changes["mac"] = want["mac"]
            if have.get("alias") != want["alias"]:
                changes["alias"] = want["alias"]
            if changes:
                bridges_a.append(_act("link_set", "set %s on bridge %s" % (_fmt(changes), name),
                                      ns=None, name=name, changes=changes))
        for a in _v4(have["addresses"]):
            if a not in want["addresses"]:
                bridges_a.append(_act("addr_del", "remove address %s from bridge %s" % (a, name), ns=None, name=name, address=a))
        for a in want["addresses"]:
            if a not in have["addresses"]:
                bridges_a.append(_act("addr_add", "add address %s to bridge %s" % (a, name), ns=None, name=name, address=a))
        if not have["up"]:
            bridges_a.append(_act("link_set", "bring bridge %s up" % name, ns=None, name=name, changes={"up": True}))

    # overlay devices (after their bridges) and their static forwarding entries
    ovl = []
    for name, want in sorted(desired.get("vxlans", {}).items()):
        have = links.get(name)
        if have is not None and (not st.owned(have) or have.get("kind") != "vxlan"):
            conflicts.append("networks.%s.overlay.device: interface %s exists on host %s and netstitch did not "
                             "create it" % (want["network"], name, desired["host"]))
            continue
        ident = {k: want[k] for k in ("vni", "port", "local", "learning")}
        if have is not None and have.get("vxlan") != ident:
            veth_del.append(_act("link_del", "replace vxlan %s (%s)" % (name, _fmt(ident)), ns=None, name=name))
            have = None
        if have is None:
            ovl.append(_act("vxlan_add", "create vxlan %s (vni %d, local %s, port %d) on %s" % (
                name, want["vni"], want["local"], want["port"], want["master"]), name=name, alias=want["alias"],
                mtu=want["mtu"], master=want["master"], **ident))
            have_fdb = set()
        else:
            changes = _link_changes(have, want["master"], want["mtu"], want["alias"])
            if changes:
                ovl.append(_act("link_set", "set %s on vxlan %s" % (_fmt(changes), name), ns=None, name=name,
                                changes=changes))
            have_fdb = set(tuple(e) for e in have.get("fdb", []))
        want_fdb = set(tuple(e) for e in want["fdb"])
        for mac, dst in sorted(have_fdb - want_fdb):
            ovl.append(_act("fdb_del", "remove fdb %s dst %s from %s" % (mac, dst, name), dev=name, mac=mac, dst=dst))
        for mac, dst in sorted(want_fdb - have_fdb):
            ovl.append(_act("fdb_add", "add fdb %s dst %s to %s" % (mac, dst, name), dev=name, mac=mac, dst=dst))
    have_routes = current.get("routes", {})
    for dst, want in sorted(desired.get("routes", {}).items()):
        if have_routes.get(dst, {}).get("via") != want["via"]:
            ovl.append(_act("route_add", "route %s via %s (host %s, network %s)" % (dst, want["via"], want["host"],
                                                                                 want["network"]),
                            dst=dst, via=want["via"], replace=dst in have_routes))
    for dst, have in sorted(have_routes.items()):
        if dst not in desired.get("routes", {}):
            ovl.append(_act("route_del", "remove route %s via %s" % (dst, have["via"]), dst=dst, via=have["via"]))
    ovl += _plan_tinc(desired, current, links, conflicts)
    bridges_a += ovl

    # endpoints
    for hname, want in sorted(desired["endpoints"].items()):
        have = links.get(hname)
        where = "containers.%s (interface %s)" % (want["container"], want["ifname"])
        ns_state = (current.get("netns") or {}).get(want["netns"])
        ns_known = want["netns"] in existing_ns or want["netns"] in desired["netns"]
        if not ns_known and ns_state is None:
            conflicts.append("%s: network namespace %s does not exist on host %s" % (where, want["netns"], desired["host"]))
            continue
        if have is not None and (not st.owned(have) or have.get("kind") != "veth"):
            conflicts.append("%s: interface %s exists on host %s and netstitch did not create it"
                             % (where, hname, desired["host"]))
            continue
        peer_name, peer = st.endpoint_peer(current, hname, want["netns"])
        if have is not None and peer_name != want["ifname"]:
            # the pair is broken, moved or renamed: replace it
            veth_del.append(_act("link_del", "replace veth %s (its container end is not %s in %s)"
                                 % (hname, want["ifname"], want["netns"]), ns=None, name=hname))
            have = peer = None
        in_the_way = (ns_state or {}).get("links", {}).get(want["ifname"]) if peer is None else None
        if in_the_way is not None:
            conflicts.append("%s: interface %s already exists in namespace %s and netstitch did not create it"
                             % (where, want["ifname"], want["netns"]))
            continue
        if have is None:
            veth_a.append(_act("veth_add", "create veth %s on %s, container end %s in %s (mtu %d)"
                               % (hname, want["bridge"], want["ifname"], want["netns"], want["mtu"]),
                               name=hname, master=want["bridge"], mtu=want["mtu"], alias=want["alias"],
                               peer={"netns": want["netns"], "name": want["ifname"], "mtu": want["mtu"], "mac": want["mac"]}))
            peer = {"mtu": want["mtu"], "mac": want["mac"], "up": False, "addresses": []}
        else:
            changes = _link_changes(have, want["bridge"], want["mtu"], want["alias"])
            if changes:
                veth_a.append(_act("link_set", "set %s on veth %s" % (_fmt(changes), hname), ns=None, name=hname, changes=changes))
        ns, ifn = want["netns"], want["ifname"]
        changes = {}
        if peer["mtu"] != want["mtu"]:
            changes["mtu"] = want["mtu"]
        if peer.get("mac") != want["mac"]:
            changes["mac"] = want["mac"]
        if not peer["up"]:
            changes["up"] = True
        if changes:
            ctr_a.append(_act("link_set", "set %s on %s in %s" % (_fmt(changes), ifn, ns), ns=ns, name=ifn, changes=changes))
        for a in _v4(peer["addresses"]):
            if a != want["address"]:
                ctr_a.append(_act("addr_del", "remove address %s from %s in %s" % (a, ifn, ns), ns=ns, name=ifn, address=a))
        if want["address"] not in peer["addresses"]:
            ctr_a.append(_act("addr_add", "add address %s to %s in %s" % (want["address"], ifn, ns), ns=ns, name=ifn,
                              address=want["address"]))
        # the namespace's default route, also before its veth exists: a foreign one must be seen at the first attach
        route = (ns_state or {}).get("default_route")
        # removing every address of an interface makes the kernel drop the routes through it: plan them anew
        flushed = bool(_v4(peer["addresses"])) and want["address"] not in peer["addresses"]
        if flushed and route is not None and route.get("dev") == ifn:
            route = None
        if want["gateway"]:
            foreign = route is not None and route.get("dev") != ifn and \
                route.get("dev") not in _our_ifnames(desired, ns)
            if foreign and not want.get("gateway_soft"):
                conflicts.append("%s: namespace %s already has a default route via %s that netstitch did not create; "
                                 "set default_route: false" % (where, ns, route.get("dev")))
                continue
            if not foreign and route != {"gateway": want["gateway"], "dev": ifn}:
                ctr_a.append(_act("route_replace", "route default via %s dev %s in %s" % (want["gateway"], ifn, ns),
                                  ns=ns, dev=ifn, gateway=want["gateway"]))
        elif route is not None and route.get("dev") == ifn and peer_name:
            ctr_a.append(_act("route_del_default", "remove default route via %s dev %s in %s" % (route["gateway"], ifn, ns),
                              ns=ns, dev=ifn, gateway=route["gateway"]))
        have_routes = {(r["dst"], r["gateway"]) for r in (ns_state or {}).get("routes", []) if r["dev"] == ifn} \
            if peer_name and not flushed else set()
        want_routes = set(tuple(r) for r in want.get("routes", []))
        for dst, gw in sorted(have_routes - want_routes):
            ctr_a.append(_act("route_del_ns", "remove route %s via %s dev %s in %s" % (dst, gw, ifn, ns),
                              ns=ns, dev=ifn, dst=dst, gateway=gw))
        for dst, gw in sorted(want_routes - have_routes):
            ctr_a.append(_act("route_add_ns", "route %s via %s dev %s in %s" % (dst, gw, ifn, ns),
                              ns=ns, dev=ifn, dst=dst, gateway=gw))
        neighs = (ns_state or {}).get("neighbours", []) if peer_name else []
        pinned = {n["ip"]: n["mac"] for n in neighs if n["dev"] == ifn}
        if want.get("gateway_neigh"):
            gw, mac = want["gateway_neigh"]
            if pinned.get(gw) != mac:
                ctr_a.append(_act("neigh_replace", "pin gateway %s at %s on %s in %s" % (gw, mac, ifn, ns),
                                  ns=ns, dev=ifn, ip=gw, mac=mac))
        for ip in sorted(pinned):
            if not want.get("gateway_neigh") or ip != want["gateway_neigh"][0]:
                ctr_a.append(_act("neigh_del", "unpin %s on %s in %s" % (ip, ifn, ns), ns=ns, dev=ifn, ip=ip))

    for net in sorted(set(current.get("tinc") or {}) - set(desired.get("tincs", {}))):
        post.append(_act("tinc_stop", "stop tinc for network %s and remove its configuration" % net, network=net))

    # prune: owned links that are no longer desired (veths first: they free bridge ports)
    for name, link in sorted(links.items()):
        if not st.owned(link):
            continue
        if link.get("kind") == "veth" and name not in desired["endpoints"]:
            veth_del.append(_act("link_del", "remove veth %s (%s)" % (name, link["alias"][len(ALIAS_PREFIX):]), ns=None, name=name))
        elif link.get("kind") == "vxlan" and name not in desired.get("vxlans", {}):
            veth_del.append(_act("link_del", "remove vxlan %s (%s)" % (name, link["alias"][len(ALIAS_PREFIX):]), ns=None, name=name))
        elif link.get("kind") == "bridge" and name not in desired["bridges"]:
            post.append(_act("link_del", "remove bridge %s (%s)" % (name, link["alias"][len(ALIAS_PREFIX):]), ns=None, name=name))
    dead = set(current.get("stale_netns", []))     # entries whose mount is gone: netstitch's are cleared away too
    for ns in sorted(set(current.get("owned_netns", [])) - set(desired["netns"])):
        if ns in existing_ns or ns in dead:
            post.append(_act("netns_del", "remove network namespace %s" % ns, netns=ns))
    return pre + veth_del + bridges_a + veth_a + ctr_a + post, conflicts


def _link_changes(have, master, mtu, alias):
    """What to set on an existing port of a bridge (veth host end, overlay device) to match the plan."""
    changes = {}
    if have.get("master") != master:
        changes["master"] = master
    if have["mtu"] != mtu:
        changes["mtu"] = mtu
    if have.get("alias") != alias:
        changes["alias"] = alias
    if not have["up"]:
        changes["up"] = True
    return changes


def _plan_tinc(desired, current, links, conflicts):
    """tinc instances: key, configuration files, daemon, and its TAP port on the bridge."""
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers import tinc as tinc_files
    out = []
    for net, want in sorted(desired.get("tincs", {}).items()):
        have = (current.get("tinc") or {}).get(net) or {}
        tap = links.get(want["device"])
        if tap is not None and not st.owned(tap) and not have.get("pid"):
            conflicts.append("networks.%s.overlay.device: interface %s exists on host %s and netstitch did not "
                             "create it" % (net, want["device"], desired["host"]))
            continue
        render = {"host": desired["host"], "network": {"device": want["device"]}, "port": want["port"],
                  "local": want["local"], "peers": want["peers"]}
        wrote = False
        if not have.get("pubkey") or not have.get("has_key"):
            out.append(_act("tinc_keygen", "generate the tinc key pair of network %s" % net, network=net))
            out.append(_act("tinc_write", "write tinc configuration of network %s" % net, network=net, render=render))
            wrote = True
        else:
            files = tinc_files.render(pubkey=have["pubkey"], **render)
            if files != have.get("files"):
                changed = sorted(k for k in set(files) | set(have.get("files") or {})
                                 if files.get(k) != (have.get("files") or {}).get(k))
                out.append(_act("tinc_write", "write tinc configuration of network %s (%s)" % (net, ", ".join(changed)),
                                network=net, render=render))
                wrote = True
        if not have.get("pid") or tap is None:
            out.append(_act("tinc_start", "start tinc for network %s (%s on %s, mtu %d)" % (
                net, want["device"], want["master"], want["mtu"]), network=net, device=want["device"],
                changes={"master": want["master"], "mtu": want["mtu"], "alias": want["alias"], "up": True},
                restart=bool(have.get("pid"))))
            continue
        if wrote:
            out.append(_act("tinc_reload", "reload tinc for network %s" % net, network=net))
        changes = _link_changes(tap, want["master"], want["mtu"], want["alias"])
        if changes:
            out.append(_act("link_set", "set %s on tap %s" % (_fmt(changes), want["device"]), ns=None,
                            name=want["device"], changes=changes))
    return out


def _our_ifnames(desired, ns):
    return {e["ifname"] for e in desired["endpoints"].values() if e["netns"] == ns}


def _fmt(changes):
    return ", ".join("up" if k == "up" else "%s %s" % (k, v) for k, v in sorted(changes.items()))
