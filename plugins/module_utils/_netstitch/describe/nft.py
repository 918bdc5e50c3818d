"""Objects of netstitch's nftables tables (pure): rules by their purpose (the comment without its hash) and set/map
elements, as topology objects: published ports, links, isolation, masquerade/internal, forwarding policy of a
network, isolated bridge ports. See describe/__init__.py."""

import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.describe import tenant
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.describe.objects import KINDS, change

_LINK_RE = re.compile(r"^(?:iso|in) (\S+): link (\d+)(?: replies)?(?: \(IPv6\))?$")
_ISO_RE = re.compile(r"^iso (\S+): (isolated|replies|published|neighbour discovery)(?: \(IPv6\))?$")
_IN_RE = re.compile(r"^in (\S+): (.*)$")


def _link_label(ln, ctx):
    client = ln["client"]["container"]
    server = ln["server"]["container"] if ln.get("server") else "network %s" % ln["network"]
    if ln["protocol"] == "any":
        what = "any protocol"
    else:
        ports = ",".join(str(a) if a == b else "%s-%s" % (a, b) for a, b in ln["ports"]) or "any port"
        what = "%s/%s" % (ln["protocol"], ports)
    return "link %s -> %s %s" % (client, server, what)


def _rule_object(purpose, ctx):
    """(kind, id, label) of the topology object an nftables rule (by its purpose, the comment without hash)
    implements."""
    m = _LINK_RE.match(purpose)
    if m:
        ln = ctx.links_by_index.get(int(m.group(2)))
        label = _link_label(ln, ctx) if ln else "link %s (network %s)" % (m.group(2), m.group(1))
        return "link", int(m.group(2)), label
    m = _ISO_RE.match(purpose)
    if m:
        return "isolation", m.group(1), "isolation of network %s" % m.group(1)
    if purpose.startswith("masquerade "):
        net = purpose.split(" ", 1)[1]
        return "masquerade/internal", "masquerade " + net, "masquerade of network %s" % net
    if purpose.startswith("out ") and purpose.endswith(": internal"):
        net = purpose[4:-len(": internal")]
        return "masquerade/internal", "internal " + net, "network %s internal (nothing leaves it)" % net
    if purpose.startswith("dns guard "):
        net = purpose.split(" ", 2)[2]
        return "name service", "guard " + net, "name service of network %s: its containers ask only it" % net
    if purpose.startswith("loopback guard "):
        net = purpose.split(" ", 2)[2]
        return "published port", "loopback guard " + net, \
            "loopback guard of network %s (its containers never reach 127.0.0.0/8 of the host)" % net
    if purpose.startswith("loopback "):
        net = purpose.split(" ", 1)[1]
        return "published port", "loopback " + net, "loopback NAT for ports of network %s on 127.0.0.1" % net
    if purpose.startswith("hairpin "):
        net = purpose.split(" ", 1)[1]
        return "published port", "hairpin " + net, "hairpin NAT for published ports of network %s" % net
    if purpose.startswith("published on "):
        return "published port", "dnat", "DNAT of published ports (prerouting and output)"
    if purpose.startswith("inbound "):       # a routed gateway's allow list (kinds.inbound)
        net = purpose.split(" ", 1)[1].split(":", 1)[0]
        return "network policy", net, "forwarding policy of network %s (closed to other networks)" % net
    if tenant.rule_object(purpose):     # the host's side of a tenant's uplink (kinds.nft)
        return tenant.rule_object(purpose)
    m = _IN_RE.match(purpose)
    if m:
        return "network policy", m.group(1), "forwarding policy of network %s (closed to other networks)" % m.group(1)
    return "nft", purpose, "nft rule %s" % purpose


def _nft_rules(tables, current):
    """{family: {(chain, purpose): hash}} for the desired tables (rules) and the current ones (comments)."""
    out = {}
    for family, t in (tables or {}).items():
        for chain, c in t.get("chains", {}).items():
            for comment in ([r["comment"] for r in c["rules"]] if not current else c.get("comments", [])):
                purpose, _sep, h = (comment or "").rpartition(" #")
                out.setdefault(family, {})[(chain, purpose or comment)] = h
    return out


def _published(sets, ctx):
    """{id: (label, words)} of published ports from the pub_* maps of the inet table."""
    el = {}
    for name, s in (sets or {}).items():
        if not name.startswith(("pub_", "pub6_")):
            continue
        six = ("6",) if name.startswith("pub6_") else ()     # the IPv6 maps (kinds.nftpub): their own objects
        for e in s.get("elements", []):
            key, val = six + tuple(e[0]), tuple(e[1])
            el.setdefault(key, {})[name.rsplit("_", 1)[1]] = val[0]
    out = {}
    for key, v in el.items():
        six, key = key[:1] == ("6",), key[1:] if key[:1] == ("6",) else key
        if len(key) == 3:
            host_ip, proto, port = key
            label = "published port %s:%s/%s" % ("[%s]" % host_ip if six else host_ip, port, proto)
        else:
            proto, port = key
            label = "published port %s%s/%s" % ("[::]:" if six else "", port, proto)
        key = ("6",) + key if six else key
        addr = v.get("addr")
        shown = "[%s]" % addr if six and addr else addr
        out[key] = ("%s -> %s:%s" % (label, _container_of(ctx, addr) if addr else "?", v.get("port", "?")),
                    ["container address %s:%s" % (shown, v.get("port", "?"))])
    return out


def _container_of(ctx, addr):
    """The container of an address a published port leads to (an IPv6 one: by the endpoints' address6)."""
    name = ctx.name_of(addr)
    for side in (ctx.desired, ctx.current) if name == addr and ":" in addr else ():
        for e in (side.get("endpoints") or {}).values():
            if str(e.get("address6") or "").partition("/")[0] == addr and e.get("container"):
                return e["container"]
    return name


def _iso_sets(sets):
    return {name[len("iso_"):]: sorted(s.get("elements", [])) for name, s in (sets or {}).items()
            if name.startswith("iso_")}


def nft_changes(desired, current, ctx):
    """Changes of netstitch's nftables tables, in topology terms: published ports (map elements), links,
    isolation, masquerade/internal, forwarding policy (rules by purpose), isolated bridge ports (bridge sets)."""
    out = []
    want_r, have_r = _nft_rules(desired, False), _nft_rules(current, True)
    objs = {}       # (kind, id) -> {"label", "before": set of (family, chain, hash), "after": ...}
    for side, rules in (("before", have_r), ("after", want_r)):
        for family, rs in rules.items():
            for (chain, purpose), h in rs.items():
                kind, ident, label = _rule_object(purpose, ctx)
                o = objs.setdefault((kind, ident), {"label": {}, "before": set(), "after": set()})
                o["label"][side] = label
                o[side].add((family, chain, purpose, h))
    for (kind, ident), o in sorted(objs.items(), key=lambda kv: (KINDS.index(kv[0][0]), str(kv[0][1]))):
        if o["before"] == o["after"]:
            continue
        lb, la = o["label"].get("before"), o["label"].get("after")
        before = [_rules_word(o["before"])] if o["before"] else None
        after = [_rules_word(o["after"])] if o["after"] else None
        if before and after and lb == la:
            after = [after[0] + ", changed"]
        if before and after and lb != la:
            # the same object described differently (a link's ports changed): show both descriptions
            out.append(change(kind, la, None, after))
            out.append(change(kind, lb, before, None))
            continue
        out.append(change(kind, la or lb, before, after))
    for family in ("inet",):
        pw = _published((desired or {}).get(family, {}).get("sets"), ctx)
        ph = _published((current or {}).get(family, {}).get("sets"), ctx)
        for key in sorted(set(pw) | set(ph), key=str):
            b, a = ph.get(key), pw.get(key)
            if b == a:
                continue
            if a and b and a[0] != b[0]:      # another target: the old one goes, the new one comes
                out.append(change("published port", b[0], b[1], None))
                b = None
            out.append(change("published port", (a or b)[0], b[1] if b else None, a[1] if a else None))
    for family in ("bridge", "inet"):
        iw = _iso_sets((desired or {}).get(family, {}).get("sets"))
        ih = _iso_sets((current or {}).get(family, {}).get("sets"))
        for net in sorted(set(iw) | set(ih)):
            b, a = ih.get(net), iw.get(net)
            if b == a:
                continue
            label = "isolated bridge ports of network %s" % net
            before = ["ports %s" % ", ".join(b)] if b is not None else None
            after = ["ports %s" % ", ".join(a)] if a is not None else None
            out.append(change("isolation", label, before, after))
    return out


def _rules_word(rules):
    chains = sorted({"%s %s" % (f, c) for f, c, _p, _h in rules})
    return "%d rule%s in %s" % (len(rules), "" if len(rules) == 1 else "s", ", ".join(chains))
