"""Objects of the planned actions that are a service rather than an interface (pure): a network's name service (a
container's resolv.conf with it), and a service container of a chain (its forwarding). See describe/objects.py."""


def name_service(ident, group, ctx):
    """A network's name service (dnsmasq on its gateway) or a container's resolv.conf."""
    a = group[-1]
    if a["op"] == "resolv_write":
        return "/etc/netns/%s/resolv.conf" % a["netns"], None, \
            ["nameserver %s" % a["content"].split()[-1]] if a["content"] else None
    have = ((ctx.current.get("dns") or {}).get("servers") or {}).get(ident)
    label = "name service of network %s" % ident

    def words(s):
        return ["on %s" % s["listen"], "names %s" % ", ".join(r[1] for r in s["records"]) or "none"] if s else None
    return label, words(have), None if a["op"] == "dns_stop" else words(a)


def chain_service(container, ctx, side):
    """A service container of a chain: whether it forwards (kinds.chain)."""
    for ns, want in (ctx.desired.get("chains") or {}).items():
        if want["container"] == container:
            label = "service %s of chain %s" % (container, ", ".join(want["chains"]))
            if side == "after":
                return label, ["forwarding on"]
            have = (ctx.current.get("netns") or {}).get(ns)
            return label, ["forwarding %s" % ("on" if have.get("ip_forward") == "1" else "off")] if have else None
    return None, None
