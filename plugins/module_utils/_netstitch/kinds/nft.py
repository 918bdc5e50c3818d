"""Kind: netstitch's nftables ruleset for one host (pure): the desired tables, and the diff against the current ones.

netstitch owns exactly two tables and never reads or writes any other: ``inet netstitch`` (forwarding policy, NAT,
published ports, stateful isolation) and, only where bridged traffic does not pass the inet hooks (no
br_netfilter), ``bridge netstitch`` (stateless isolation between bridge ports). Every rule carries a comment
"<purpose> #<hash of its expression>", so comparing a chain is comparing comment lists; a changed chain is rewritten
(flush + add). Sets and maps (published ports, isolated ports) change element by element. One host's whole change is
one atomic transaction.
"""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import bridge, dns, inbound, nftpub
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.nftexpr import (
    ND_TYPES, ip as _ip, isolation6, link_match as _link_match, match as _match, meta as _meta, prefix as _prefix,
    rule as _rule)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import NFT_FAMILY as FAMILY
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import NFT_TABLE as TABLE

BASE_CHAINS = {
    "forward": {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"},
    "postrouting": {"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"},
    "prerouting": {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"},
    "output": {"type": "nat", "hook": "output", "prio": -100, "policy": "accept"},
    # before routing: loopback guard (kinds.bridge: route_localnet), dns guard (kinds.dns)
    "guard": {"type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"},
}
BRIDGE_FORWARD = {"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}

PUB_MAPS = nftpub.PUB_MAPS     # the IPv4 maps (the IPv6 ones: nftpub.PUB6_MAPS)
IFNAME_SET_DEF = {"type": "ifname"}


def desired_tables(spec, addresses=None, links=None, bridge_nf=True, addresses6=None, bridge_nf6=None):
    """The desired tables for a host spec: {family: {"chains": {name: {"def", "rules"}}, "sets": {name: {"def",
    "elements"}}}}; a family is absent when netstitch needs no table of it on this host.

    ``addresses``, ``addresses6``: {(container, ifname): address} from the host's allocations of both families
    (for published ports, kinds.nftpub);
    ``links``: resolved links (client_ip, server_match = an address or a subnet, protocol, ports, network);
    ``bridge_nf``: bridged IPv4 traffic passes the inet hooks (br_netfilter), so isolation can be stateful there;
    ``bridge_nf6``: the same for bridged IPv6 (bridge-nf-call-ip6tables; None: as ``bridge_nf``). A family whose
    bridged traffic skips the inet hooks is isolated statelessly in ``bridge netstitch``.
    """
    bridge_nf6 = bridge_nf if bridge_nf6 is None else bridge_nf6
    addresses = addresses or {}
    links = links or []
    nets = {n["name"]: n for n in spec["networks"]}
    fwd_iso, fwd, nat = [], [], []
    published = {}
    for p in spec.get("publish", []):
        published.setdefault(p["network"], []).append(p)
    for n in spec["networks"]:
        iso, f, m = _network_rules(n, [ln for ln in links if ln["network"] == n["name"]], published.get(n["name"]),
                                   bridge_nf, nftpub.published6(spec, n), bridge_nf6)
        fwd_iso += iso
        fwd += f
        nat += m
    f, m = _transit_rules(spec.get("tenants") or [])
    fwd += f
    nat += m
    sets, pre = nftpub.published(spec, addresses, addresses6 or {}) if spec.get("publish") else ({}, [])
    guard = [_rule("loopback guard %s" % n["name"], [
        _match(_meta("iifname"), n["bridge"]), _match(_ip("daddr"), _prefix(bridge.LOOPBACK)), {"drop": None}])
        for n in spec["networks"] if n["name"] in bridge.loopback_networks(spec)]
    guard += [_rule(*r) for r in dns.dns_guard(spec)]
    chains = {}
    if guard:
        chains["guard"] = {"def": BASE_CHAINS["guard"], "rules": guard}
    if fwd_iso or fwd:
        chains["forward"] = {"def": BASE_CHAINS["forward"], "rules": fwd_iso + fwd}
    if nat:
        chains["postrouting"] = {"def": BASE_CHAINS["postrouting"], "rules": nat}
    if pre:
        chains["prerouting"] = {"def": BASE_CHAINS["prerouting"], "rules": pre}
        chains["output"] = {"def": BASE_CHAINS["output"], "rules": pre}
    out = {}
    if chains or sets:
        out["inet"] = {"chains": chains, "sets": sets}
    if not bridge_nf or not bridge_nf6:
        br = _bridge_table(spec, nets, links, four=not bridge_nf, six=not bridge_nf6)
        if br:
            out["bridge"] = br
    return out


def _network_rules(n, own, published, bridge_nf, published6=False, bridge_nf6=True):
    """The rules of one network: (isolation rules, forward rules, NAT rules). ``own``: its resolved links;
    ``published``: its published ports; ``published6``: one of them is on IPv6; ``bridge_nf``, ``bridge_nf6``:
    bridged traffic of that family passes these hooks (else it is isolated in the bridge table)."""
    fwd_iso, fwd, nat = [], [], []
    br, name = n["bridge"], n["name"]
    if n.get("tenant"):
        # a tenant network: bridged only here (its gateway is in the tenant's router namespace, kinds.tenant)
        return [], [_rule("in %s: within" % name, [_match(_meta("iifname"), br), _match(_meta("oifname"), br),
                                                   {"accept": None}]),
                    _rule("in %s: closed to others" % name, [_match(_meta("oifname"), br), {"drop": None}])], []
    o = n.get("overlay") or {}
    whole = o.get("subnet", n["subnet"])       # None: an IPv6-only network (no IPv4 rule matches its addresses)
    if n.get("isolated") and bridge_nf6 and n.get("subnet6"):
        fwd_iso += isolation6(n, own, published6)     # IPv6 first (each rule matches its own family only)
    if n.get("isolated") and bridge_nf and whole:
        # bridged and routed traffic alike: only linked connections start inside an isolated network
        into = [_match(_meta("iifname"), br), _match(_ip("daddr"), _prefix(whole))]
        fwd_iso.append(_rule("iso %s: replies" % name, into + [
            _match({"ct": {"key": "state"}}, ["established", "related"], op="in"), {"accept": None}]))
        fwd_iso.append(_rule("iso %s: published" % name, into + [
            _match({"ct": {"key": "status"}}, "dnat", op="in"), {"accept": None}]))
        for ln in own:
            fwd_iso.append(_rule("iso %s: link %d" % (name, ln["index"]),
                                 [_match(_meta("iifname"), br)] + _link_match(ln) + [{"accept": None}]))
        fwd_iso.append(_rule("iso %s: isolated" % name, into + [{"drop": None}]))
    elif n.get("isolated") and bridge_nf and n.get("subnet6"):
        # IPv6-only: no container has an IPv4 address, so none may be made up to reach another
        fwd_iso.append(_rule("iso %s: no IPv4" % name, [
            _match(_meta("iifname"), br), _match(_meta("nfproto"), "ipv4"), {"drop": None}]))
    # within the network (seen here when br_netfilter passes bridged traffic through the inet hooks)
    fwd.append(_rule("in %s: within" % name, [
        _match(_meta("iifname"), br), _match(_meta("oifname"), br), {"accept": None}]))
    fwd.append(_rule("in %s: replies" % name, [
        _match(_meta("oifname"), br),
        _match({"ct": {"key": "state"}}, ["established", "related"], op="in"),
        {"accept": None}]))
    if published:
        fwd.append(_rule("in %s: published" % name, [
            _match(_meta("oifname"), br), _match({"ct": {"key": "status"}}, "dnat", op="in"), {"accept": None}]))
    if o.get("type") == "routed":
        if n.get("isolated"):
            for ln in own:
                fwd.append(_rule("in %s: link %d" % (name, ln["index"]),
                                 [_match(_meta("oifname"), br)] + _link_match(ln) + [{"accept": None}]))
        else:
            # the other hosts' slices of a routed network arrive through the underlay
            fwd.append(_rule("in %s: from its other slices" % name, [
                _match(_meta("oifname"), br), _match(_ip("saddr"), _prefix(o["subnet"])), {"accept": None}]))
            if o.get("subnet6"):
                fwd.append(_rule("in %s: from its other IPv6 slices" % name, [
                    _match(_meta("oifname"), br), _match(_ip("saddr", "ip6"), _prefix(o["subnet6"])),
                    {"accept": None}]))
    fwd += inbound.rules(n)     # a routed gateway: what the outside may open by routing (kinds.inbound)
    # nothing else (another network, the uplink) opens a connection into a network
    fwd.append(_rule("in %s: closed to others" % name, [_match(_meta("oifname"), br), {"drop": None}]))
    if n["internal"]:
        fwd.append(_rule("out %s: internal" % name, [_match(_meta("iifname"), br), {"drop": None}]))
    if published and n["subnet"]:
        # hairpin: a container reaching a published port of its own network gets the host as the source,
        # so the answer comes back through the host's NAT
        nat.append(_rule("hairpin %s" % name, [
            _match(_meta("oifname"), br), _match(_ip("saddr"), _prefix(n["subnet"])),
            _match({"ct": {"key": "status"}}, "dnat", op="in"), {"masquerade": None}]))
    if published6:
        nat.append(_rule("hairpin %s (IPv6)" % name, [
            _match(_meta("oifname"), br), _match(_ip("saddr", "ip6"), _prefix(n["subnet6"])),
            _match({"ct": {"key": "status"}}, "dnat", op="in"), {"masquerade": None}]))
    if any(bridge.loopback(p) for p in published or ()):
        # on 127.0.0.1: the host's connection leaves with a loopback source (route_localnet lets it), masqueraded
        nat.append(_rule("loopback %s" % name, [
            _match(_meta("oifname"), br), _match(_ip("saddr"), _prefix(bridge.LOOPBACK)),
            _match({"ct": {"key": "status"}}, "dnat", op="in"), {"masquerade": None}]))
    for ip, sub, on in (("ip", whole, n["masquerade"]), ("ip6", o.get("subnet6", n.get("subnet6")),
                                                         n.get("masquerade6"))):
        if on and sub and not n["internal"]:    # IPv6: NAT66 only when asked (masquerade6); by default it is routed
            nat.append(_rule("masquerade %s%s" % (name, " (IPv6)" if ip == "ip6" else ""), [
                _match(_ip("saddr", ip), _prefix(sub)), _match(_ip("daddr", ip), _prefix(sub), op="!="),
                _match(_meta("oifname"), br, op="!="), {"masquerade": None}]))
    return fwd_iso, fwd, nat


def _transit_rules(tenants):
    """The host's side of the tenants' uplinks (kinds.tenant): never forwarded from one to another, nothing opened
    into one, what a router sends out masqueraded to the host's address."""
    fwd, nat = [], []
    uplinks = sorted(t["uplink"] for t in tenants)
    for t in tenants:
        up, others = t["uplink"], [u for u in uplinks if u != t["uplink"]]
        if others:
            fwd.append(_rule("tenant %s: not to other tenants" % t["name"], [
                _match(_meta("iifname"), up), _match(_meta("oifname"), {"set": others}), {"drop": None}]))
        fwd.append(_rule("tenant %s: replies" % t["name"], [
            _match(_meta("oifname"), up), _match({"ct": {"key": "state"}}, ["established", "related"], op="in"),
            {"accept": None}]))
        fwd.append(_rule("tenant %s: closed to others" % t["name"], [_match(_meta("oifname"), up), {"drop": None}]))
        transit = str(ipaddress.IPv4Interface(t["transit"]["router"]).network)
        nat.append(_rule("tenant %s: masquerade" % t["name"], [
            _match(_ip("saddr"), _prefix(transit)), _match(_meta("oifname"), up, op="!="), {"masquerade": None}]))
    return fwd, nat


def _bridge_table(spec, nets, links, four=True, six=False):
    """Stateless isolation between bridge ports, for hosts where bridged traffic of a family (``four``: IPv4,
    ``six``: IPv6 of the dual-stack networks) skips the inet hooks: linked requests pass by destination port and
    their replies by source port; for IPv6 neighbour discovery passes too (ARP needs no rule: only IPv4 meets
    the IPv4 drop)."""
    rules, sets = [], {}
    for n in spec["networks"]:
        v6 = six and bool(n.get("subnet6"))
        if not n.get("isolated") or not (four or v6):
            continue
        name = "iso_%s" % n["name"]
        members = {p["host_ifname"] for c in spec["containers"] for p in c["interfaces"] if p["network"] == n["name"]}
        o = n.get("overlay") or {}
        if o.get("device"):
            members.add(o["device"])
        sets[name] = {"def": IFNAME_SET_DEF, "elements": sorted(members)}
        port = _match(_meta("iifname"), "@" + name)
        own = [ln for ln in links if ln["network"] == n["name"]]
        if v6:
            rules.append(_rule("iso %s: neighbour discovery" % n["name"], [
                port, _match({"payload": {"protocol": "icmpv6", "field": "type"}}, {"set": ND_TYPES}),
                {"accept": None}]))
            for ln in own:
                if ln.get("client_ip6") and ln.get("server_match6"):
                    for reply in (False, True):
                        what = "iso %s: link %d%s (IPv6)" % (n["name"], ln["index"], " replies" if reply else "")
                        rules.append(_rule(what, [port] + _link_match(ln, reply=reply, family="ip6") +
                                           [{"accept": None}]))
            rules.append(_rule("iso %s: isolated (IPv6)" % n["name"], [
                port, _match(_meta("oifname"), "@" + name),
                _match({"payload": {"protocol": "ether", "field": "type"}}, "ip6"), {"drop": None}]))
        if not four:
            continue
        for ln in (ln for ln in own if ln["client_ip"]):       # (an IPv6-only link has no IPv4 side)
            rules.append(_rule("iso %s: link %d" % (n["name"], ln["index"]),
                               [port] + _link_match(ln) + [{"accept": None}]))
            rules.append(_rule("iso %s: link %d replies" % (n["name"], ln["index"]),
                               [port] + _link_match(ln, reply=True) + [{"accept": None}]))
        rules.append(_rule("iso %s: isolated" % n["name"], [
            port, _match(_meta("oifname"), "@" + name), _match({"payload": {"protocol": "ether", "field": "type"}}, "ip"),
            {"drop": None}]))
    if not rules:
        return None
    return {"chains": {"forward": {"def": BRIDGE_FORWARD, "rules": rules}}, "sets": sets}


# -- current state -------------------------------------------------------------------------------------------------
def _elem_key(e):
    """A set/map element of a listing in canonical form: a string, or ((key...), (value...))."""
    def flat(x):
        if isinstance(x, dict) and "concat" in x:
            return tuple(x["concat"])
        return (x,)
    if isinstance(e, list):
        return (flat(e[0]), flat(e[1]))
    if isinstance(e, dict) and "elem" in e:
        return _elem_key(e["elem"]["val"])
    return e


def _canon_def(d):
    out = {}
    for k in ("type", "map"):
        if k in d:
            v = d[k]
            if isinstance(v, str) and " . " in v:
                v = v.split(" . ")
            out[k] = v
    return out


def current_tables(listings):
    """Normalise {family: JSON of `list table <family> netstitch` or None} to the desired_tables shape, with rules
    as comment lists."""
    out = {}
    for family, listing in listings.items():
        if listing is None:
            continue
        chains, sets = {}, {}
        for item in listing.get("nftables", []):
            if "chain" in item:
                c = item["chain"]
                chains[c["name"]] = {"def": {k: c[k] for k in ("type", "hook", "prio", "policy") if k in c},
                                     "comments": []}
            elif "rule" in item:
                r = item["rule"]
                chains.setdefault(r["chain"], {"def": {}, "comments": []})["comments"].append(r.get("comment"))
            elif "set" in item or "map" in item:
                s = item.get("set") or item.get("map")
                sets[s["name"]] = {"def": _canon_def(s), "elements": sorted(_elem_key(e) for e in s.get("elem", []))}
        out[family] = {"chains": chains, "sets": sets}
    return out


def _elem_json(e):
    if isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], tuple):
        def cat(t):
            return {"concat": list(t)} if len(t) > 1 else t[0]
        return [cat(e[0]), cat(e[1])]
    return e


def _canon_elements(elements):
    out = set()
    for e in elements:
        if isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], (list, tuple)):
            out.add((tuple(e[0]), tuple(e[1])))
        else:
            out.add(e)
    return out


def diff_table(family, desired, current):
    """(commands, texts) turning one of netstitch's tables from current into desired (None = absent)."""
    cmds, texts = [], []
    tbl = {"family": family, "name": TABLE}
    if not desired:
        if current is not None:
            cmds.append({"delete": {"table": tbl}})
            texts.append("remove nft table %s %s" % (family, TABLE))
        return cmds, texts
    if current is None:
        cmds.append({"add": {"table": tbl}})
        texts.append("create nft table %s %s" % (family, TABLE))
        current = {"chains": {}, "sets": {}}
    have_sets, have_chains = current.get("sets", {}), current.get("chains", {})
    for name, want in sorted(desired.get("sets", {}).items()):
        _diff_set(family, name, want, have_sets.get(name), cmds, texts)
    _diff_chains(family, desired.get("chains", {}), have_chains, cmds, texts)
    for name in sorted(set(have_sets) - set(desired.get("sets", {}))):
        kind = "map" if "map" in have_sets[name]["def"] else "set"
        cmds.append({"delete": {kind: {"family": family, "table": TABLE, "name": name}}})
        texts.append("remove nft %s %s" % (kind, name))
    return cmds, texts


def _diff_set(family, name, want, have, cmds, texts):
    """One set or map of a table: created if missing, then element by element."""
    kind = "map" if "map" in want["def"] else "set"
    obj = dict({"family": family, "table": TABLE, "name": name}, **want["def"])
    if have is not None and _canon_def(have["def"]) != want["def"]:
        raise ValueError("nft %s %s has an unexpected type; remove table %s %s to let netstitch recreate it"
                         % (kind, name, family, TABLE))
    if have is None:
        cmds.append({"add": {kind: obj}})
        texts.append("create nft %s %s" % (kind, name))
        have_el = set()
    else:
        have_el = _canon_elements(have["elements"])
    want_el = _canon_elements(want["elements"])
    el = {"family": family, "table": TABLE, "name": name}
    add, rm = sorted(want_el - have_el), sorted(have_el - want_el)
    if rm:      # first, so that a map key whose value changes is deleted before it is added again
        elems = [_elem_json(e)[0] if kind == "map" else _elem_json(e) for e in rm]
        cmds.append({"delete": {"element": dict(el, elem=elems)}})
        texts.append("remove %d element%s from nft %s %s%s"
                     % (len(rm), "" if len(rm) == 1 else "s", kind, name, _sample(rm)))
    if add:
        cmds.append({"add": {"element": dict(el, elem=[_elem_json(e) for e in add])}})
        texts.append("add %d element%s to nft %s %s%s"
                     % (len(add), "" if len(add) == 1 else "s", kind, name, _sample(add)))


def _diff_chains(family, want_chains, have_chains, cmds, texts):
    """Chains no longer wanted go; a chain whose rules differ is rewritten (flush + add), whose hook differs is
    made anew."""
    q = "" if family == FAMILY else family + " "     # the inet table is the usual one: name the others
    for name in sorted(set(have_chains) - set(want_chains)):
        cmds += [_chain_cmd(family, "flush", name), _chain_cmd(family, "delete", name)]
        texts.append("remove nft chain %s%s" % (q, name))
    for name, want in sorted(want_chains.items()):
        have = have_chains.get(name)
        comments = [r["comment"] for r in want["rules"]]
        if have is not None and have["def"] == want["def"] and have["comments"] == comments:
            continue
        if have is None:
            cmds.append(_chain_cmd(family, "add", name, want["def"]))
            texts.append("create nft chain %s%s" % (q, name))
        elif have["def"] != want["def"]:
            cmds += [_chain_cmd(family, "flush", name), _chain_cmd(family, "delete", name),
                     _chain_cmd(family, "add", name, want["def"])]
            texts.append("recreate nft chain %s%s" % (q, name))
        else:
            cmds.append(_chain_cmd(family, "flush", name))
            texts.append("rewrite nft chain %s%s (%d rules)" % (q, name, len(want["rules"])))
        for r in want["rules"]:
            cmds.append({"add": {"rule": {"family": family, "table": TABLE, "chain": name,
                                          "expr": r["expr"], "comment": r["comment"]}}})
            texts.append("  rule: %s" % r["comment"])


def _sample(elements, n=3):
    shown = ", ".join(_elem_text(e) for e in elements[:n])
    return " (%s%s)" % (shown, ", ..." if len(elements) > n else "")


def _elem_text(e):
    if isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], tuple):
        return "%s -> %s" % (" . ".join(str(x) for x in e[0]), " . ".join(str(x) for x in e[1]))
    return str(e)


def diff_all(desired, current):
    """One transaction for every family netstitch uses (inet, bridge)."""
    cmds, texts = [], []
    for family in ("inet", "bridge"):
        c, t = diff_table(family, desired.get(family), (current or {}).get(family))
        cmds += c
        texts += t
    return cmds, texts


def _chain_cmd(family, verb, name, d=None):
    c = {"family": family, "table": TABLE, "name": name}
    if d:
        c.update(d)
    return {verb: {"chain": c}}
