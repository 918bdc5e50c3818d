"""Kind: a container interface on a macvlan network (networks.N.macvlan; pipework's --direct-phys): a macvlan link
(bridge mode) of the host interface ``parent``, made directly in the container's namespace with its own MAC and an
address of the physical segment, and the default route through the segment's router when it carries it. No bridge,
no veth, no NAT, no firewall rule: the container is a station of the segment.

The link carries netstitch's marks in the container's namespace (the creation group, then the alias
``netstitch macvlan <container>/<ifname> <network>``); an owned macvlan no longer wanted in a namespace the run reads
is removed. The host cannot reach its own macvlan containers through ``parent`` (macvlan passes no traffic between
a parent and its children).
"""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act, fmt_changes, v4
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import endpoint


KEY = "macvlans"


def networks(spec):
    return {n["name"]: n for n in spec.get("macvlan_networks", ())}


def left_behind(previous, spec):
    """Named namespaces of the last applied spec's containers that had a macvlan interface and are not in this spec:
    read too, so that a macvlan netstitch made there goes when its container leaves the topology (a veth goes with
    its host end; a macvlan lives only in the container's namespace)."""
    if not previous:
        return []
    nets = {n["name"] for n in previous.get("macvlan_networks", ())}
    now = {c.get("netns") for c in spec.get("containers", ())}
    return sorted({c["netns"] for c in previous.get("containers", ()) if c.get("kind", "netns") == "netns"
                   and c.get("netns") and c["netns"] not in now and any(i["network"] in nets for i in c["interfaces"])})


def desired(ctx):
    """{"<container>/<ifname>": interface}. ``ctx.addresses``: (container, ifname) -> IPv4Address (ipam)."""
    nets = networks(ctx.spec)
    out = {}
    if not nets:
        return out
    for c in ctx.spec["containers"]:
        if c.get("absent"):
            continue
        ns = c.get("netns") or c["docker"]
        for itf in c["interfaces"]:
            n = nets.get(itf["network"])
            if n is None:
                continue
            plen = ipaddress.IPv4Network(n["subnet"]).prefixlen
            out["%s/%s" % (c["name"], itf["name"])] = {
                "container": c["name"], "netns": ns, "ifname": itf["name"], "network": n["name"],
                "parent": n["parent"], "alias": marks.macvlan_alias(c["name"], itf["name"], n["name"]),
                "mtu": n["mtu"], "mac": itf["mac"],
                "address": "%s/%d" % (ctx.addresses[(c["name"], itf["name"])], plen),
                "gateway": n["gateway"] if itf["default_route"] and n["gateway"] else None,
                "gateway_soft": bool(itf.get("default_route_soft")),
            }
    return out


def diff(desired_state, current, out, ctx):
    links = current.get("links", {})
    want_all = desired_state.get(KEY, {})
    known_ns = set(current.get("named_netns", [])) | set(desired_state["netns"])
    for key, want in sorted(want_all.items()):
        _one(want, desired_state, current, links, known_ns, out)
    wanted = {(w["netns"], w["ifname"]) for w in want_all.values()}
    going = set(current.get("owned_netns") or ()) - set(desired_state["netns"])     # kinds.netns removes them
    for ns, nstate in sorted((current.get("netns") or {}).items()):
        if ns in going:
            continue
        for name, link in sorted(((nstate or {}).get("links") or {}).items()):
            if link.get("kind") == "macvlan" and marks.owned(link) and (ns, name) not in wanted:
                out.add("prune", act("link_del", "remove macvlan %s in %s (%s)" % (name, ns, marks.alias_text(link)),
                                     ns=ns, name=name))


def _one(want, desired_state, current, links, known_ns, out):
    host, ns, ifn = desired_state["host"], want["netns"], want["ifname"]
    where = "containers.%s (interface %s)" % (want["container"], ifn)
    ns_state = (current.get("netns") or {}).get(ns)
    if ns not in known_ns and ns_state is None:
        out.conflict("%s: network namespace %s does not exist on host %s" % (where, ns, host))
        return
    parent = links.get(want["parent"])
    if parent is None:
        out.conflict("networks.%s.macvlan.parent: there is no interface %s on host %s (for %s)"
                     % (want["network"], want["parent"], host, where))
        return
    have = ((ns_state or {}).get("links") or {}).get(ifn)
    if have is not None and not marks.owned(have):
        out.conflict("%s: interface %s already exists in namespace %s and netstitch did not create it"
                     % (where, ifn, ns))
        return
    if have is not None and have.get("kind") == "veth":
        have = None     # netstitch's veth of an earlier network: kinds.endpoint removes its pair (phase prune)
    elif have is not None and (have.get("kind") != "macvlan" or have.get("peer_index") != parent["index"]):
        out.add("replace", act("link_del", "replace %s in %s (not a macvlan of %s)" % (ifn, ns, want["parent"]),
                               ns=ns, name=ifn))
        have = None
    made = have is None
    if made:
        out.add("veths", act("macvlan_add", "create macvlan %s in %s on %s (network %s, mtu %d)"
                             % (ifn, ns, want["parent"], want["network"], want["mtu"]), ns=ns, name=ifn,
                             parent=want["parent"], mtu=want["mtu"], mac=want["mac"], alias=want["alias"]))
        have = {"mtu": want["mtu"], "mac": want["mac"], "up": False, "addresses": [], "alias": want["alias"]}
    changes = {k: want[k] for k in ("mtu", "mac", "alias") if have.get(k) != want[k]}
    if not have["up"]:
        changes["up"] = True
    if changes:
        out.add("containers", act("link_set", "set %s on %s in %s" % (fmt_changes(changes), ifn, ns), ns=ns, name=ifn,
                                  changes=changes))
    for a in v4(have["addresses"]):
        if a != want["address"]:
            out.add("containers", act("addr_del", "remove address %s from %s in %s" % (a, ifn, ns), ns=ns, name=ifn,
                                      address=a))
    if want["address"] not in have["addresses"]:
        out.add("containers", act("addr_add", "add address %s to %s in %s" % (want["address"], ifn, ns), ns=ns,
                                  name=ifn, address=want["address"]))
    # a new link: a route through the old one of that name (replaced, or a veth that goes) went with it
    flushed = made or (bool(v4(have["addresses"])) and want["address"] not in have["addresses"])
    endpoint.default_route(where, want, ns_state, None if made else ifn, flushed, desired_state, out)
