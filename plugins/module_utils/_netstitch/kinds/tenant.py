"""Kind: a tenant's router namespace on a host (issue 16, item 3), as OpenStack Neutron's router namespaces.

The tenant's bridges stay in the host namespace, without an address (so networks of different tenants may share a
subnet: the host never routes to them). The router namespace ``nsrt-<tenant>`` holds:
- a leg per tenant network here: a veth whose host end is a port of the network's bridge and whose router end (named
  after the bridge, with the MAC the host spec gives the gateway) holds the network's gateway address;
- an uplink: a veth to the host namespace with the tenant's transit /30 (host side first address, router second),
  and the router's default route via the host side when one of its networks may leave;
- IPv4 forwarding on (net.ipv4.ip_forward of that namespace only);
- its own nft table ``inet netstitch`` (kinds.tenant_nft): forwarding between its networks only for `connect` pairs
  (replies pass), out of the uplink only from networks that are not internal, masqueraded there; nothing in.

The namespace is recorded in the state file before it is made (kinds.netns, as a container's), and removing it takes
everything in it. The host's own table (kinds.nft) masquerades the transit address and never forwards between two
transit links."""

import hashlib
import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act, fmt_changes, port_changes, v4
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.current import endpoint_peer
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import endpoint, tenant_nft

KEY = "tenants"
UPLINK = "uplink"                       # the uplink's name inside the router namespace
FORWARD_KEY = "net/ipv4/ip_forward"     # the router namespace's own forwarding switch


def tenants(spec):
    return spec.get("tenants") or []


def namespaces(spec):
    """The router namespaces of a spec."""
    return sorted(t["netns"] for t in tenants(spec))


def host_ifnames(spec):
    """The host ends of every tenant veth of a spec (legs and uplinks)."""
    nets = {n["name"]: n for n in spec.get("networks", [])}
    out = set()
    for t in tenants(spec):
        out.add(t["uplink"])
        out.update(nets[n]["tenant"]["leg"] for n in t["networks"] if n in nets)
    return out


def _mac(*parts):
    d = hashlib.sha1("/".join(("mac",) + parts).encode("utf-8")).hexdigest()
    return ":".join(["%02x" % ((int(d[0:2], 16) & 0xFC) | 0x02)] + [d[i:i + 2] for i in range(2, 12, 2)])


def desired(ctx):
    """{netns: router} for the tenants with a network on this host."""
    nets = {n["name"]: n for n in ctx.spec["networks"]}
    out = {}
    for t in tenants(ctx.spec):
        mine = [nets[n] for n in t["networks"] if n in nets]
        legs = {}
        for n in mine:
            legs[n["tenant"]["leg"]] = {
                "network": n["name"], "bridge": n["bridge"], "netns": t["netns"], "ifname": n["bridge"],
                "mtu": n["mtu"], "mac": n["bridge_mac"], "alias": marks.tenant_alias(t["name"], n["name"]),
                "address": "%s/%d" % (n["gateway"], ipaddress.IPv4Network(n["subnet"]).prefixlen)}
        outbound = any(not n["internal"] for n in mine)
        out[t["netns"]] = {
            "tenant": t["name"], "legs": legs,
            "uplink": {"name": t["uplink"], "netns": t["netns"], "ifname": UPLINK,
                       "mtu": max(n["mtu"] for n in mine), "mac": _mac("tenant-uplink", t["name"]),
                       "alias": marks.tenant_alias(t["name"]), "host_address": t["transit"]["host"],
                       "address": t["transit"]["router"]},
            "gateway": t["transit"]["host"].partition("/")[0] if outbound else None,
            "table": tenant_nft.table(t, mine, UPLINK),
        }
    return out


def diff(desired_state, current, out, ctx):
    host = desired_state["host"]
    links = current.get("links", {})
    for ns, want in sorted((desired_state.get("tenants") or {}).items()):
        ns_state = (current.get("netns") or {}).get(ns)
        where = "tenants.%s" % want["tenant"]
        for hname, leg in sorted(want["legs"].items()):
            _veth(where + " (network %s)" % leg["network"], hname, leg, leg["bridge"], current, links, ns_state,
                  host, out)
        up = want["uplink"]
        if _veth(where + " (uplink)", up["name"], up, None, current, links, ns_state, host, out):
            have = links.get(up["name"]) or {"addresses": []}
            for a in v4(have.get("addresses", [])):
                if a != up["host_address"]:
                    out.add("veths", act("addr_del", "remove address %s from %s" % (a, up["name"]), ns=None,
                                         name=up["name"], address=a))
            if up["host_address"] not in have.get("addresses", []):
                out.add("veths", act("addr_add", "add address %s to %s (tenant %s's uplink)" % (
                    up["host_address"], up["name"], want["tenant"]), ns=None, name=up["name"],
                    address=up["host_address"]))
        _default_route(ns, want, ns_state, out)
        if ((current.get("tenant_sysctl") or {}).get(ns) or {}).get(FORWARD_KEY) != "1":
            out.add("containers", act("sysctl_set", "set net.ipv4.ip_forward = 1 in %s" % ns, ns=ns,
                                      key=FORWARD_KEY, value="1", tenant=want["tenant"]))
        cmds, texts = tenant_nft.diff(want["table"], ((current.get("tenant_nft") or {}).get(ns)))
        if cmds:
            out.add("containers", act("tenant_nft", "nft in %s: %s" % (ns, "; ".join(texts)), ns=ns,
                                      tenant=want["tenant"], commands=cmds, texts=texts))


def _veth(where, hname, want, master, current, links, ns_state, host, out):
    """One veth between the host namespace and the router namespace: made, or set right; its router end's link
    settings and address. Returns False on a conflict."""
    have = links.get(hname)
    ns = want["netns"]
    if have is not None and (not marks.owned(have) or have.get("kind") != "veth"):
        out.conflict("%s: interface %s exists on host %s and netstitch did not create it" % (where, hname, host))
        return False
    peer_name, peer = endpoint_peer(current, hname, ns)
    if have is not None and peer_name != want["ifname"]:
        out.add("replace", act("link_del", "replace veth %s (its router end is not %s in %s)"
                               % (hname, want["ifname"], ns), ns=None, name=hname))
        have = peer = None
    if peer is None and ((ns_state or {}).get("links") or {}).get(want["ifname"]) is not None:
        out.conflict("%s: interface %s already exists in namespace %s and netstitch did not create it"
                     % (where, want["ifname"], ns))
        return False
    if have is None:
        out.add("veths", act("veth_add", "create veth %s%s, router end %s in %s (mtu %d)" % (
            hname, " on %s" % master if master else "", want["ifname"], ns, want["mtu"]),
            name=hname, master=master, mtu=want["mtu"], alias=want["alias"],
            peer={"netns": ns, "name": want["ifname"], "mtu": want["mtu"], "mac": want["mac"]}))
        peer = {"mtu": want["mtu"], "mac": want["mac"], "up": False, "addresses": []}
    else:
        changes = port_changes(have, master, want["mtu"], want["alias"])
        if changes:
            out.add("veths", act("link_set", "set %s on veth %s" % (fmt_changes(changes), hname), ns=None,
                                 name=hname, changes=changes))
    endpoint._container_end(want, peer, out)
    return True


def _default_route(ns, want, ns_state, out):
    route = (ns_state or {}).get("default_route")
    gw = want["gateway"]
    if gw and route != {"gateway": gw, "dev": UPLINK}:
        out.add("containers", act("route_replace", "route default via %s dev %s in %s" % (gw, UPLINK, ns), ns=ns,
                                  dev=UPLINK, gateway=gw))
    elif not gw and route is not None:
        out.add("containers", act("route_del_default", "remove default route via %s dev %s in %s" % (
            route["gateway"], route["dev"], ns), ns=ns, dev=route["dev"], gateway=route["gateway"]))
