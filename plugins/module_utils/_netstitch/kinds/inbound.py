"""Part of the nftables ruleset (kinds.nft): a routed gateway network (networks.N.inbound, issue 16 item 1). The
outside reaches the network's containers at their own addresses, by routing through the host (no DNAT, and no
masquerade of their outbound traffic), but only what an ``allow`` entry names: these accept rules come before the
network's "closed to others" drop. The routes the outside needs come with the host spec (``inbound.routes``) and are
stated by plan, apply and info (``outside_routes``)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.nftexpr import (
    ip, match, meta, ports_expr, prefix, rule)


def rules(n):
    """The forward rules of a network's allow list (none without ``inbound``)."""
    out = []
    for i, a in enumerate((n.get("inbound") or {}).get("allow", ())):
        expr = [match(meta("oifname"), n["bridge"]), match(ip("daddr"), prefix(n["subnet"]))]
        if a["from"]:
            expr.append(match(ip("saddr"), prefix(a["from"])))
        if a["protocol"] != "any":
            expr.append(match(meta("l4proto"), a["protocol"]))
            expr += ports_expr(a["ports"], "dport")
        out.append(rule("inbound %s: allow %d" % (n["name"], i), expr + [{"accept": None}]))
    return out


def outside_routes(spec):
    """[{"network", "dst", "via"}]: what the outside must route to this host for its routed gateway networks."""
    return [dict(r, network=n["name"]) for n in (spec or {}).get("networks", ())
            for r in (n.get("inbound") or {}).get("routes", ())]
