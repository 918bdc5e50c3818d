"""A readable summary of what netstitch manages on a host (pure), from the desired or the current state: the
module's --diff (before/after) and ``info``."""

from typing import Any, Dict, Optional

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks


def view(desired: Optional[Dict[str, Any]] = None, current: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The summary of a desired state (planner.desired_state) or, without one, of a current state."""
    if desired is not None:
        return _of_desired(desired)
    return _of_current(current)


def _of_desired(desired):
    out = {"bridges": {}, "endpoints": {}}
    for name, b in desired["bridges"].items():
        out["bridges"][name] = {"network": b["network"], "mtu": b["mtu"], "addresses": b["addresses"]}
        if b.get("addresses6"):
            out["bridges"][name]["addresses6"] = b["addresses6"]
    for hname, e in desired["endpoints"].items():
        ep = out["endpoints"]["%s/%s" % (e["container"], e["ifname"])] = {
            "network": e["network"], "host_ifname": hname, "address": e["address"], "mtu": e["mtu"],
            "mac": e["mac"], "default_route": e["gateway"]}
        if e.get("address6"):
            ep.update(address6=e["address6"], default_route6=e["gateway6"])
    for key, m in sorted(desired.get("macvlans", {}).items()):
        out["endpoints"][key] = {"network": m["network"], "macvlan_parent": m["parent"], "address": m["address"],
                                 "mtu": m["mtu"], "mac": m["mac"], "default_route": m["gateway"]}
    out["namespaces"] = desired["netns"]
    for ns, t in sorted((desired.get("tenants") or {}).items()):     # only where there are some (kinds.tenant)
        out.setdefault("tenants", {})[t["tenant"]] = {
            "namespace": ns, "gateways": {leg["network"]: leg["address"] for leg in t["legs"].values()},
            "uplink": t["uplink"]["address"]}
    chains = _chains(desired)
    if chains:      # only where there are some (kinds.chain): views of other hosts stay as they were
        out["chains"] = chains
    if desired.get("attachments"):      # only where there are some: views of other hosts stay as they were
        out["attached"] = {name: {"network": a["network"], "bridge": a["bridge"]}
                           for name, a in sorted(desired["attachments"].items())}
    return out


def _chains(desired):
    """{chain: {"services": [this host's services, which forward], "routes": ["container/ifname: dst via next hop"]}}"""
    out = {}
    for _ns, want in sorted((desired.get("chains") or {}).items()):
        for name in want["chains"]:
            out.setdefault(name, {"services": [], "routes": []})["services"].append(want["container"])
    for e in desired["endpoints"].values():
        for dst, name in sorted((e.get("chains") or {}).items()):
            via = [gw for d, gw in e["routes"] if d == dst][0]
            out.setdefault(name, {"services": [], "routes": []})["routes"].append(
                "%s/%s: %s via %s" % (e["container"], e["ifname"], dst, via))
    for c in out.values():
        c["services"].sort()
        c["routes"].sort()
    return out


def _of_current(current):
    out = {"bridges": {}, "endpoints": {}}
    # container ends by (index of the host end, own index): one pass, not a scan of every namespace per veth
    peers = {}
    for ns, nstate in (current.get("netns") or {}).items():
        for pname, peer in (nstate or {}).get("links", {}).items():
            peers.setdefault((peer.get("peer_index"), peer["index"]), (pname, peer, nstate, ns))
    for name, l in sorted(current["links"].items()):
        if not marks.owned(l):
            continue
        # a link not yet named (creation mark only) says nothing more about itself
        words = marks.alias_text(l).split() if l.get("alias") else []
        if l["kind"] == "bridge":
            out["bridges"][name] = {"network": words[1] if len(words) > 1 else None, "mtu": l["mtu"],
                                    "addresses": [a for a in l["addresses"] if ":" not in a]}
            if l.get("addresses6"):
                out["bridges"][name]["addresses6"] = l["addresses6"]
        elif l["kind"] == "veth" and words[:1] == ["tenant"]:     # a tenant router's leg or uplink (kinds.tenant)
            _tenant(out, l, words, peers)
        elif l["kind"] == "veth" and len(words) >= 3:
            out["endpoints"]["%s/%s" % tuple(words[1].partition("/")[::2])] = _endpoint(name, l, words, peers)
    out["namespaces"] = sorted(set(current.get("owned_netns", [])) & set(current.get("named_netns", [])))
    # the interfaces netstitch enslaved (kinds.attach), while they are still on the bridge it put them on
    attached = {name: {"bridge": rec["bridge"]} for name, rec in sorted((current.get("attached") or {}).items())
                if (current["links"].get(name) or {}).get("master") == rec["bridge"]}
    if attached:
        out["attached"] = attached
    return out


def _endpoint(name, l, words, peers):
    ep = {"network": words[2], "host_ifname": name, "mtu": l["mtu"]}
    pname, peer, nstate, _ns = peers.get((l["index"], l.get("peer_index")), (None, None, None, None))
    if peer is not None:
        route = nstate.get("default_route") or {}
        ep.update({"address": ([a for a in peer["addresses"] if ":" not in a] or [None])[0],
                   "mtu": peer["mtu"], "mac": peer["mac"],
                   "default_route": route.get("gateway") if route.get("dev") == pname else None})
        if peer.get("addresses6"):
            route6 = nstate.get("default_route6") or {}
            ep.update(address6=peer["addresses6"][0],
                      default_route6=route6.get("gateway") if route6.get("dev") == pname else None)
    return ep


def _tenant(out, l, words, peers):
    """A tenant router's veth, by its router end: its namespace, and the gateway (leg) or transit (uplink) there."""
    _pname, peer, _nstate, ns = peers.get((l["index"], l.get("peer_index")), (None, None, None, None))
    t = out.setdefault("tenants", {}).setdefault(words[1], {"namespace": ns, "gateways": {}, "uplink": None})
    address = ([a for a in peer["addresses"] if ":" not in a] or [None])[0] if peer else None
    if len(words) > 3:
        t["gateways"][words[3]] = address
    else:
        t["uplink"] = address
    t["namespace"] = t["namespace"] or ns


def endpoints(desired):
    """The endpoints of a desired state as the apply module returns them (a macvlan interface has no host end:
    ``host_ifname`` None, ``macvlan_parent`` its host interface)."""
    out = [dict({"container": e["container"], "interface": e["ifname"], "network": e["network"],
                 "address": e["address"], "mac": e["mac"], "host_ifname": h, "netns": e["netns"]},
                **({"address6": e["address6"]} if e.get("address6") else {}))
           for h, e in desired["endpoints"].items()]
    out += [{"container": m["container"], "interface": m["ifname"], "network": m["network"], "address": m["address"],
             "mac": m["mac"], "host_ifname": None, "netns": m["netns"], "macvlan_parent": m["parent"]}
            for m in desired.get("macvlans", {}).values()]
    return sorted(out, key=lambda e: (e["container"], e["interface"]))
