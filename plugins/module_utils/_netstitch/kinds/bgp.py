"""Kind: the BGP speaker that announces a host's routed gateway networks (networks.N.inbound.announce, issue 16
item 1): one BIRD 2 daemon per host (Debian's bird2), in the host's network namespace, with its configuration, control
socket and pid file under <state_dir>/bird/<host>/ (drivers/bird.py). netstitch owns exactly that daemon and its
files. It exports the connected route of each announced network's bridge (the network's part on this host: its
subnet, or its slice of a routed overlay) to every neighbor, next hop self, and imports nothing: the host's routing
table is never changed by it.

current["bgp"]: {"config": text or None, "running": bool} (drivers/bird.py).
"""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act

KEY = None


def render(spec):
    """The BIRD configuration for a host spec, or None when the host announces nothing."""
    bgp = spec.get("bgp")
    if not bgp or not bgp.get("announce"):
        return None
    prefixes = ", ".join(a["prefix"] for a in bgp["announce"])
    lines = ["# netstitch: BGP announcements of host %s (kinds.bgp); rewritten by every apply" % spec["host"],
             "router id %s;" % bgp["router_id"],
             "protocol device {", "}",
             "protocol direct netstitch_nets {", "  ipv4;",
             "  interface %s;" % ", ".join('"%s"' % a["bridge"] for a in bgp["announce"]), "}"]
    for i, n in enumerate(bgp["neighbors"]):
        lines += ["protocol bgp peer%d {" % (i + 1),
                  "  local %s as %d;" % (bgp["router_id"], bgp["asn"]),
                  "  neighbor %s as %d;" % (n["address"], n["asn"]),
                  "  ipv4 {", "    import none;",
                  "    export where net ~ [ %s ];" % prefixes,
                  "    next hop self;", "  };", "}"]
    return "".join("%s\n" % line for line in lines)


def diff(desired_state, current, out, ctx):
    want = render(ctx.spec)
    have = current.get("bgp") or {}
    if want is not None and (have.get("config") != want or not have.get("running")):
        nets = ", ".join(a["network"] for a in ctx.spec["bgp"]["announce"])
        out.add("files", act("bgp_write", "%s BGP announcements of %s (BIRD)" % (
            "start" if not have.get("running") else "reconfigure", nets), config=want,
            announce=[a["prefix"] for a in ctx.spec["bgp"]["announce"]]))
    elif want is None and (have.get("config") is not None or have.get("running")):
        out.add("files", act("bgp_stop", "stop BGP announcements (BIRD)"))
