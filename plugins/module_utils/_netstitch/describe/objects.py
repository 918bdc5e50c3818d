"""Objects of the planned actions (pure): every action op maps to one object of a kind (bridge, endpoint, vxlan,
fdb, route, tinc, namespace, sysctl, hosts file, DOCKER-USER, Docker network), described on each side (before: the
current state, after: the desired state) in topology words. See describe/__init__.py."""

import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.describe import services, tenant
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import ALIAS_PREFIX

# kinds in the order they are shown (roughly the order a host is built in)
KINDS = ("sysctl", "namespace", "bridge", "vxlan", "fdb", "route", "tinc", "endpoint", "chain", "macvlan",
         "attachment", "tenant", "hosts file", "bgp", "name service",
         "published port", "link", "isolation", "masquerade/internal", "network policy", "DOCKER-USER",
         "Docker network", "nft", "state", "other")


class Context(object):
    """What describing needs besides the actions: the desired and current host state (plan's shapes), the spec of
    this run and the one applied last (for links that are gone), and the addresses of containers by name."""

    def __init__(self, desired, current, spec=None, previous=None, addresses=None, leases=None):
        self.desired = desired
        self.current = current
        self.spec = spec or {}
        self.previous = previous or {}
        self.names = {}         # container address -> container name
        for (cont, _ifname), ip in sorted((addresses or {}).items()):
            self.names.setdefault(_host_part(ip), cont)
        for net in (leases or {}).values():
            for key, ip in net.items():
                self.names.setdefault(ip, key.partition("/")[0])
        for s in (self.spec, self.previous):
            for c in s.get("containers", []):
                for itf in c.get("interfaces", []):
                    if itf.get("ip"):
                        self.names.setdefault(itf["ip"], c["name"])
        for e in desired.get("endpoints", {}).values():
            if e.get("address"):
                self.names.setdefault(_host_part(e["address"]), e["container"])
        # (netns, ifname) -> host end of netstitch's veth, from the desired state, then the kernel
        self.host_end = {(e["netns"], e["ifname"]): h for h, e in desired.get("endpoints", {}).items()}
        self.macvlan_of = {(m["netns"], m["ifname"]): key for key, m in desired.get("macvlans", {}).items()}
        self.peers = {}
        for ns, nstate in (current.get("netns") or {}).items():
            for pname, peer in ((nstate or {}).get("links") or {}).items():
                self.peers[(peer.get("peer_index"), peer["index"])] = (ns, pname, peer, nstate)
        links = current.get("links") or {}
        for h, l in links.items():
            if l.get("kind") == "veth":
                hit = self.peers.get((l["index"], l.get("peer_index")))
                if hit:
                    self.host_end.setdefault((hit[0], hit[1]), h)
        self.links_by_index = {}
        for s in (self.previous, self.spec):
            for ln in s.get("links", []):
                self.links_by_index[ln["index"]] = ln

    def name_of(self, ip):
        ip = _host_part(ip)
        return self.names.get(ip, ip)


def _host_part(cidr):
    """The address of "a.b.c.d/len" (or of an address object)."""
    return str(cidr).partition("/")[0]


# -- objects of the planned actions -------------------------------------------------------------------------------
def _alias_words(link):
    alias = (link or {}).get("alias") or ""
    return alias[len(ALIAS_PREFIX):].split() if alias.startswith(ALIAS_PREFIX) else []


def action_object(a, ctx):
    """(kind, id) of the object an action changes."""
    op, links = a["op"], ctx.current.get("links") or {}
    if tenant.tenant_object(a, ctx):    # a tenant's router namespace and what is in it (kinds.tenant)
        return tenant.tenant_object(a, ctx)
    if op == "sysctl_set":
        if a.get("bridge"):     # a bridge's own setting (route_localnet)
            return "bridge", a["bridge"]
        if a.get("chain"):      # a service's forwarding (kinds.chain)
            return "chain", a["container"]
        if a.get("ns") and ctx.host_end.get((a["ns"], a["name"])):     # a container interface's own (IPv6 on)
            return "endpoint", ctx.host_end[(a["ns"], a["name"])]
        return "sysctl", a["key"]
    if op in ("netns_add", "netns_del", "netns_clear"):
        return "namespace", a["netns"]
    if op == "bridge_add":
        return "bridge", a["name"]
    if op == "vxlan_add":
        return "vxlan", a["name"]
    if op in ("fdb_add", "fdb_del"):
        return "fdb", (a["dev"], a["mac"], a["dst"])
    if op in ("route_add", "route_del"):
        return "route", a["dst"]
    if op.startswith("tinc_"):
        return "tinc", a["network"]
    if op == "veth_add":
        return "endpoint", a["name"]
    if op in ("port_attach", "port_release"):
        return "attachment", a["name"]
    if op == "hosts_write":
        return "hosts file", a["netns"]
    if op == "docker_hosts_write":
        return "hosts file", ("docker", a["container"], a["docker_id"])
    if op in ("dns_write", "dns_stop"):
        return "name service", a["network"]
    if op == "resolv_write":
        return "name service", "resolv.conf of %s" % a["netns"]
    if op in ("bgp_write", "bgp_stop"):
        return "bgp", "BGP announcements (BIRD)"
    if op in ("docker_user_add", "docker_user_del"):
        return "DOCKER-USER", tuple(a["rule"])
    if op.startswith("docker_net_"):
        return "Docker network", a["name"]
    if op == "link_del_many":
        return "other", a["text"]
    ns = a.get("ns")
    name = a.get("name") or a.get("dev")
    if op == "macvlan_add" or (ns and (ns, name) in ctx.macvlan_of):
        return "macvlan", ctx.macvlan_of.get((ns, name), "%s/%s" % (ns, name))
    if ns:      # inside a container: its end of a veth, its routes and neighbours
        h = ctx.host_end.get((ns, name))
        return ("endpoint", h) if h else ("other", a["text"])
    if name is not None:
        if name in ctx.desired.get("bridges", {}):
            return "bridge", name
        if name in ctx.desired.get("endpoints", {}):
            return "endpoint", name
        if name in ctx.desired.get("vxlans", {}):
            return "vxlan", name
        for net, t in ctx.desired.get("tincs", {}).items():
            if t["device"] == name:
                return "tinc", net
        kind = (links.get(name) or {}).get("kind")
        if kind in ("bridge", "vxlan"):
            return kind, name
        if kind == "veth":
            return "endpoint", name
    return "other", a["text"]


def _words(d):
    return ["%s %s" % (k, v) for k, v in d if v not in (None, "", [], False)]


def _bridge(name, ctx, side):
    if side == "after":
        b = ctx.desired["bridges"].get(name)
        return (None, None) if b is None else ("bridge %s (network %s)" % (name, b["network"]),
                                               _bridge_words(b, b["addresses"]))
    l = (ctx.current.get("links") or {}).get(name)
    words = _alias_words(l) if l else []
    return (None, None) if l is None else ("bridge %s (network %s)" % (name, words[1] if len(words) > 1 else "?"),
                                           _bridge_words(l, [a for a in l["addresses"] if ":" not in a]))


def _bridge_words(b, addresses):
    flag = {"ipv6": b.get("ipv6_disabled") and "off", "ipv6 forwarding": b.get("forwarding6") and "on",
            "route_localnet": b.get("route_localnet") and "on"}
    return _words([("mtu", b["mtu"]), ("mac", b.get("mac")), ("address", ", ".join(addresses)),
                   ("address6", ", ".join(b.get("addresses6", [])))] + sorted(flag.items())
                  + [("state", "up" if b.get("up", True) else "down")])


def _endpoint(hname, ctx, side):
    if side == "after":
        e = ctx.desired["endpoints"].get(hname)
        if e is None:
            return None, None
        route, route6 = ["default via %s" % g if g else None for g in (e["gateway"], e.get("gateway6"))]
        return "endpoint %s/%s (network %s)" % (e["container"], e["ifname"], e["network"]), _words([
            ("address", e["address"]), ("address6", e.get("address6")), ("mac", e["mac"]), ("mtu", e["mtu"]),
            ("host end", hname), ("bridge", e["bridge"]), ("route", route), ("route6", route6),
            ("routes", ", ".join("%s via %s" % tuple(r) for r in e.get("routes", []))),
            ("pinned gateway", ", ".join(" at ".join(e[k]) for k in ("gateway_neigh", "gateway_neigh6") if e.get(k))),
            ("hairpin", "on" if e.get("hairpin") else None), ("state", "up")])
    l = (ctx.current.get("links") or {}).get(hname)
    if l is None:
        return None, None
    words = _alias_words(l)
    label = "endpoint %s (network %s)" % (words[1] if len(words) > 1 else hname, words[2] if len(words) > 2 else "?")
    hit = ctx.peers.get((l["index"], l.get("peer_index")))
    attrs = [("host end", hname), ("bridge", l.get("master"))]
    if hit is None:
        return label, _words(attrs) + ["container end missing"]
    ns, pname, peer, nstate = hit
    route = (nstate or {}).get("default_route") or {}
    route6 = (nstate or {}).get("default_route6") or {}
    routes = [r for r in (nstate or {}).get("routes", []) if r["dev"] == pname]
    pins = [n for n in (nstate or {}).get("neighbours", []) if n["dev"] == pname]
    return label, _words([
        ("address", ", ".join(a for a in peer["addresses"] if ":" not in a)),
        ("address6", ", ".join(peer.get("addresses6", []))), ("mac", peer.get("mac")),
        ("mtu", peer["mtu"])] + attrs + [
        ("route", "default via %s" % route["gateway"] if route.get("dev") == pname else None),
        ("route6", "default via %s" % route6["gateway"] if route6.get("dev") == pname else None),
        ("routes", ", ".join("%s via %s" % (r["dst"], r["gateway"]) for r in routes)),
        ("pinned gateway", ", ".join("%s at %s" % (n["ip"], n["mac"]) for n in pins)),
        ("hairpin", "on" if l.get("hairpin") else None),
        ("state", "up" if peer["up"] and l["up"] else "down")])


def _vxlan(name, ctx, side):
    if side == "after":
        v = ctx.desired.get("vxlans", {}).get(name)
        if v is None:
            return None, None
        ident, master, mtu, net = v, v["master"], v["mtu"], v["network"]
        up, fdb = "up", len(v["fdb"])
    else:
        l = (ctx.current.get("links") or {}).get(name)
        if l is None:
            return None, None
        ident = l.get("vxlan") or {}
        words = _alias_words(l)
        master, mtu, net = l.get("master"), l["mtu"], words[1] if len(words) > 1 else "?"
        up, fdb = "up" if l["up"] else "down", len(l.get("fdb") or ())
    return "vxlan %s (network %s)" % (name, net), _words([
        ("vni", ident.get("vni")), ("local", ident.get("local")), ("port", ident.get("port")),
        ("learning", "on" if ident.get("learning") else "off"), ("bridge", master), ("mtu", mtu), ("state", up),
        ("fdb entries", fdb)])


def _macvlan(key, ctx, side):
    """A container interface on a macvlan network (kinds.macvlan), by "<container>/<ifname>"."""
    m = ctx.desired.get("macvlans", {}).get(key)
    if side == "after":
        return (None, None) if m is None else ("macvlan %s (network %s)" % (key, m["network"]), _words([
            ("address", m["address"]), ("mac", m["mac"]), ("mtu", m["mtu"]), ("parent", m["parent"]),
            ("route", "default via %s" % m["gateway"] if m["gateway"] else None), ("state", "up")]))
    if m is None:
        return None, None
    nstate = (ctx.current.get("netns") or {}).get(m["netns"]) or {}
    l = (nstate.get("links") or {}).get(m["ifname"])
    if l is None or l.get("kind") != "macvlan":
        return None, None
    route = nstate.get("default_route") or {}
    return "macvlan %s (network %s)" % (key, m["network"]), _words([
        ("address", ", ".join(a for a in l["addresses"] if ":" not in a)), ("mac", l.get("mac")), ("mtu", l["mtu"]),
        ("parent", m["parent"]), ("route", "default via %s" % route["gateway"] if route.get("dev") == m["ifname"]
                                  else None), ("state", "up" if l["up"] else "down")])


def _attachment(name, ctx, side):
    """An existing interface on a network's bridge (kinds.attach): only its master is netstitch's."""
    if side == "after":
        w = ctx.desired.get("attachments", {}).get(name)
        return (None, None) if w is None else ("attached interface %s" % name, _words([
            ("network", w["network"]), ("bridge", w["bridge"])]))
    l = (ctx.current.get("links") or {}).get(name)
    if l is None:
        return None, None
    return "attached interface %s" % name, _words([("bridge", l.get("master") or "none")])


def _route(dst, ctx, side):
    if side == "after":
        r = ctx.desired.get("routes", {}).get(dst)
        return (None, None) if r is None else ("route %s" % dst, _words([
            ("via", r["via"]), ("host", r["host"]), ("network", r["network"])]))
    r = (ctx.current.get("routes") or {}).get(dst)
    return (None, None) if r is None else ("route %s" % dst, _words([("via", r["via"])]))


def _tinc(net, ctx, side):
    if side == "after":
        t = ctx.desired.get("tincs", {}).get(net)
        if t is None:
            return None, None
        peers = sorted(node_name(p["host"]) for p in t["peers"] if p.get("pubkey"))
        return "tinc network %s" % net, _words([
            ("device", t["device"]), ("port", t["port"]), ("local", t["local"]), ("bridge", t["master"]),
            ("mtu", t["mtu"]), ("peers", ", ".join(peers) or "none yet"), ("key", "present"), ("daemon", "running")])
    t = (ctx.current.get("tinc") or {}).get(net)
    if t is None:
        return None, None
    files = t.get("files") or {}
    conf = files.get("tinc.conf") or ""
    me = next((l.split("=", 1)[1].strip() for l in conf.splitlines() if l.startswith("Name")), None)
    peers = sorted(k[len("hosts/"):] for k in files if k.startswith("hosts/") and k != "hosts/%s" % me)
    opts = dict(l.split(" = ", 1) for l in conf.splitlines() if " = " in l)
    tap = (ctx.current.get("links") or {}).get(opts.get("Interface")) or {}
    return "tinc network %s" % net, _words([
        ("device", opts.get("Interface")), ("port", opts.get("Port")), ("local", opts.get("BindToAddress")),
        ("bridge", tap.get("master")), ("mtu", tap.get("mtu")),
        ("peers", ", ".join(peers) or "none yet"),
        ("key", "present" if t.get("has_key") and t.get("pubkey") else "missing"),
        ("daemon", "running" if t.get("pid") else "stopped")])


def node_name(host):
    """tinc's name of a host (its host files are named so): letters, digits and '_'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", host)


def _namespace(ns, ctx, side):
    if side == "after":
        return ("namespace %s" % ns, []) if ns in ctx.desired.get("netns", []) else (None, None)
    return ("namespace %s" % ns, []) if ns in (ctx.current.get("named_netns") or []) else (None, None)


def _sysctl(key, ctx, side):
    if side == "after":
        v = ctx.desired.get("sysctl", {}).get(key)
    else:
        v = (ctx.current.get("sysctl") or {}).get(key)
    return ("sysctl %s" % key, ["value %s" % v]) if v is not None else (None, None)


def _hosts(ns, entries):
    if not entries:
        return None, None
    return "hosts file /etc/netns/%s/hosts" % ns, _names(entries)


def _names(entries):
    return ["%s %s" % (n, ip) for ip, n in entries] if entries else None


def _docker_user(rule):
    r = list(rule)
    comment = r[r.index("--comment") + 1] if "--comment" in r else " ".join(r)
    way = "from" if "-i" in r else "to"
    br = r[r.index("-i" if "-i" in r else "-o") + 1] if ("-i" in r or "-o" in r) else "?"
    return "DOCKER-USER accept %s bridge %s" % (way, br), ["comment '%s'" % comment]


def _docker_net(name, have):
    if not have:
        return None, None
    if have.get("ipam_driver") not in (None, "default"):     # netstitch's plugin: no bridge option, no ip_range
        return "Docker network %s" % name, _words([(k, have.get(k)) for k in ("driver", "subnet", "gateway")])
    keys = ("bridge", "subnet", "gateway", "ip_range", "subnet6", "gateway6", "ip_range6", "mtu")
    return "Docker network %s" % name, _words([(k, have.get(k)) for k in keys])


def _action_sides(kind, ident, group, ctx):
    """(label, before words or None, after words or None) of one object, from the state on each side."""
    fns = {"bridge": _bridge, "endpoint": _endpoint, "vxlan": _vxlan, "route": _route, "tinc": _tinc,
           "namespace": _namespace, "sysctl": _sysctl, "attachment": _attachment, "macvlan": _macvlan,
           "chain": services.chain_service}
    if kind in fns:
        lb, b = fns[kind](ident, ctx, "before")
        la, a = fns[kind](ident, ctx, "after")
        return la or lb, b, a
    ops = {a["op"] for a in group}
    if kind == "tenant":
        return tenant.sides(ident, group, ctx)
    if kind == "fdb":
        label = "fdb %s dst %s on %s" % (ident[1], ident[2], ident[0])
        return label, [] if "fdb_del" in ops else None, [] if "fdb_add" in ops else None
    if kind == "hosts file" and isinstance(ident, tuple):
        # a Docker container's hosts file (kinds.docker_hosts)
        label = "hosts file of Docker container %s" % ident[1]
        have = ((ctx.current.get("docker_hosts") or {}).get(ident[2]) or {}).get("entries")
        return label, _names(have), _names(group[-1]["entries"])
    if kind == "hosts file":
        lb, b = _hosts(ident, (ctx.current.get("hosts_files") or {}).get(ident))
        la, a = _hosts(ident, group[-1]["entries"])
        return la or lb or "hosts file /etc/netns/%s/hosts" % ident, b, a
    if kind == "name service":
        return services.name_service(ident, group, ctx)
    if kind == "bgp":
        a = group[-1]
        have = ctx.current.get("bgp") or {}
        before = ["running"] if have.get("running") else ([] if have.get("config") else None)
        return ident, before, None if a["op"] == "bgp_stop" else ["announces %s" % ", ".join(a["announce"])]
    if kind == "DOCKER-USER":
        label, words = _docker_user(ident)
        return label, words if "docker_user_del" in ops else None, words if "docker_user_add" in ops else None
    if kind == "Docker network":
        have = (ctx.current.get("docker_networks") or {}).get(ident)
        want = next((a.get("want") for a in group if a.get("want")), None)
        lb, b = _docker_net(ident, have)
        la, a = _docker_net(ident, want)
        if "docker_net_recreate" in ops and a == b:
            a = a + ["re-created"]
        return la or lb, b, a
    return ident if isinstance(ident, str) else str(ident), [], None


def action_changes(actions, ctx):
    groups, order = {}, []
    for a in actions:
        key = action_object(a, ctx)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(a)
    out = []
    for kind, ident in order:
        group = groups[(kind, ident)]
        if kind == "other":
            out.append(change("other", ident, None, ["pending"]))
            continue
        label, before, after = _action_sides(kind, ident, group, ctx)
        if before == after:
            # the state shown is the same on both sides (a detail the summary leaves out): say what is done
            after = (after or []) + ["pending: %s" % "; ".join(a["text"] for a in group)]
        out.append(change(kind, label, before, after))
    return out


def change(kind, name, before, after):
    return {"kind": kind, "name": name, "before": before, "after": after}
