"""Tenants' router namespaces (kinds.tenant) as topology objects (pure): every action on a router namespace, its
veths (legs on the tenant's networks, uplink), its forwarding switch and its own nft table is one object, "tenant T
(router namespace <prefix>T)", described on each side; the host table's rules for a tenant's uplink too."""

import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import ALIAS_PREFIX

_RULE_RE = re.compile(r"^tenant (\S+): ")


def tenant_object(a, ctx):
    """("tenant", tenant name) when action ``a`` changes a tenant's router, else None."""
    if a.get("tenant"):
        return "tenant", a["tenant"]
    by_ns = {ns: t["tenant"] for ns, t in (ctx.desired.get("tenants") or {}).items()}
    if a.get("ns") in by_ns:
        return "tenant", by_ns[a["ns"]]
    name = a.get("name")
    for t in (ctx.desired.get("tenants") or {}).values():
        if name in t["legs"] or name == t["uplink"]["name"]:
            return "tenant", t["tenant"]
    alias = ((ctx.current.get("links") or {}).get(name) or {}).get("alias") or ""
    if a.get("ns") is None and alias.startswith(ALIAS_PREFIX + "tenant "):
        return "tenant", alias.split()[2]
    return None


def rule_object(purpose):
    """(kind, id, label) of a host table rule for a tenant's uplink (kinds.nft), or None."""
    m = _RULE_RE.match(purpose)
    return ("tenant", "host " + m.group(1), "tenant %s: the host side of its uplink" % m.group(1)) if m else None


def sides(name, group, ctx):
    """(label, before words or None, after words or None) of a tenant's router."""
    ns = next((t["netns"] for s in (ctx.spec, ctx.previous) for t in s.get("tenants") or () if t["name"] == name),
              name)
    label = "tenant %s (router namespace %s)" % (name, ns)
    want = (ctx.desired.get("tenants") or {}).get(ns)
    after = None
    if want is not None:
        up = want["uplink"]
        after = ["gateway %s on %s" % (leg["address"], leg["network"]) for _h, leg in sorted(want["legs"].items())]
        after += ["uplink %s (host side %s on %s)" % (up["address"], up["host_address"], up["name"]),
                  "route default via %s" % want["gateway"] if want["gateway"] else "no way out (internal)",
                  "forwarding on", "nft %d rules" % sum(len(c["rules"]) for c in want["table"]["chains"].values())]
    have = (ctx.current.get("netns") or {}).get(ns)
    before = None
    if have is not None:
        before = sorted("address %s on %s" % (a, n) for n, l in (have.get("links") or {}).items()
                        for a in l.get("addresses", []))
        route = have.get("default_route")
        if route:
            before.append("route default via %s" % route["gateway"])
        fwd = ((ctx.current.get("tenant_sysctl") or {}).get(ns) or {}).get("net/ipv4/ip_forward")
        before.append("forwarding %s" % ("on" if fwd == "1" else "off"))
        table = (ctx.current.get("tenant_nft") or {}).get(ns)
        before.append("nft %d rules" % sum(len(c["comments"]) for c in table["chains"].values()) if table
                      else "no nft table")
    return label, before, after
