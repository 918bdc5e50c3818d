"""Expected reachability of a fabric, computed from what was asked and what was applied (pure).

    checks, skipped = expected_checks(specs, endpoints)

``specs`` is {host: spec} as compile.host_specs (and the validate module) return them; ``endpoints`` is
{host: [endpoint]} as engine.apply returns them for each host (``result["endpoints"]``). Each check says: from inside
this container's namespace, a ping to this address should (``expect: True``) or should not (``expect: False``) be
answered, and why. The probe module sends the pings.

The rules follow what netstitch builds:
- two containers on one network segment reach each other, and every container reaches its own gateway; on an
  isolated network they do not, unless a link of protocol ``any`` lets the client reach the server (or the whole
  network) -- pings are ICMP, so tcp and udp links do not count;
- nothing opens a connection into a network from elsewhere: a container does not reach an address of a network it is
  not on (the forward chain of ``inet netstitch`` drops it, or no route leads there), unless a service chain carries
  it (the container routes that network through the chain, and the other end is a service of it or routes back
  through it);
- tenants: a `connect` pair of a tenant lets its containers reach each other's network through the tenant's router;
  an address that is also on one of the source's own networks (another tenant's overlapping subnet) is not checked;
- a container whose default route leads through a non-internal network with masquerade reaches the outside; one
  without a default route (for example only on internal networks) does not;
- on a dual-stack network the same holds over IPv6: every check to a container's address or a gateway is made for
  its IPv6 address (and the gateway6) too, with the same expectation (the inet rules hold for both families); an
  IPv6 outside address is reached through a dual-stack default network with masquerade6 (routed IPv6 depends on
  routes outside netstitch: skipped).

A network's segment is one host (a host-local network: the same subnet on two hosts is two separate segments, so
containers on different hosts do not reach each other) unless its spec marks it as spanning hosts (``overlay``): then
every host's part is one segment and the cross-host pairs are expected to reach each other. Where an outcome cannot be
known (an address used on two hosts' separate segments, a network without masquerade whose return path is outside
netstitch's hands), no check is made and the pair is listed in ``skipped`` with the reason.
"""

# No default for the outside: where "outside" is differs on every deployment (the lab passes its own router), and a
# wrong guess makes a correct fabric fail. Without addresses, the way out is not checked (the probe says so).
OUTSIDE = ()
NOT_TESTED_OUTSIDE = ("outside: not tested (no outside addresses were given; pass expected.outside, in site.yml "
                      "the variable netstitch_probe_outside, to check the way out)")

KIND_ORDER = {"gateway": 0, "same-network": 1, "overlay": 2, "link": 3, "isolated": 4, "tenant": 5, "other-host": 5,
              "chain": 6, "other-network": 7, "outside": 8}


def _addr(cidr):
    return (cidr or "").split("/")[0] or None


def spans_hosts(netspec):
    """Whether a network's spec makes it one segment across hosts (an overlay, or a macvlan network's physical
    segment)."""
    return bool(netspec.get("overlay") or netspec.get("parent"))


class _Container(object):
    __slots__ = ("name", "host", "kind", "netns", "interfaces", "default_network")

    def __init__(self, name, host, kind, netns):
        self.name = name
        self.host = host
        self.kind = kind
        self.netns = netns
        self.interfaces = []        # [{"name", "network", "address", "address6" (None: IPv4 only)}]
        self.default_network = None

    def label(self):
        return "%s@%s" % (self.name, self.host)


def _containers(specs, endpoints):
    """Join the specs' containers with the applied endpoints (addresses). Returns (containers, nets, skipped)."""
    conts, nets, skipped = [], {}, []
    for host in sorted(specs):
        spec = specs[host] or {}
        for n in spec.get("networks", []) + spec.get("macvlan_networks", []):
            nets[(host, n["name"])] = n
        nets[(None, host)] = spec.get("tenants") or []     # the tenants here, with their connect pairs (kinds.tenant)
        if host not in endpoints:
            if spec.get("containers"):
                skipped.append({"from": host, "to": None,
                                "why": "no apply result for host %s: its containers are not checked" % host})
            continue
        applied = {}
        for e in endpoints[host] or []:
            applied[(e["container"], e["interface"])] = (_addr(e.get("address")), _addr(e.get("address6")))
        for c in spec.get("containers", []):
            netns = c.get("netns") if c.get("kind", "netns") == "netns" else None
            cont = _Container(c["name"], host, c.get("kind", "netns"), netns)
            for itf in c.get("interfaces", []):
                addr, addr6 = applied.get((c["name"], itf["name"]), (None, None))
                if addr is None and addr6 is None:     # (an IPv6-only network: its IPv6 address alone)
                    skipped.append({"from": cont.label(), "to": None, "why": "interface %s has no applied address"
                                                                             % itf["name"]})
                    continue
                cont.interfaces.append({"name": itf["name"], "network": itf["network"], "address": addr,
                                        "address6": addr6})
                if itf.get("default_route"):
                    cont.default_network = itf["network"]
            conts.append(cont)
    return conts, nets, skipped


def _check(src, to, to_name, kind, network, expect, why):
    return {"from_host": src.host, "from_container": src.name, "from_netns": src.netns, "from": src.label(),
            "to": to, "to_name": to_name, "kind": kind, "network": network, "expect": expect, "why": why}


def _links(specs):
    """Every link of the topology once (each host's spec carries the links that concern it)."""
    out = {}
    for spec in specs.values():
        for ln in (spec or {}).get("links") or []:
            c, s = ln.get("client") or {}, ln.get("server") or {}
            key = (c.get("container"), s.get("container"), ln.get("network"), ln.get("protocol"),
                   str(ln.get("ports")))
            out[key] = ln
    return list(out.values())


def _chains(specs):
    """The service chains' routes, {(container, destination subnet): chain}, and {chain: its services}."""
    steer, services = {}, {}
    for spec in specs.values():
        for ch in (spec or {}).get("chains") or []:
            services[ch["name"]] = set(ch["services"])
            for r in ch["routes"]:
                steer[(r["container"], r["dst"])] = ch["name"]
    return steer, services


def _chained(chains, src, dst, net, nets):
    """The chain that carries a ping from ``src`` to ``dst`` on network ``net`` (which ``src`` is not on), or None:
    ``src`` routes ``net`` through a chain, and ``dst`` is one of its services or routes back through it."""
    steer, services = chains
    name = steer.get((src.name, (nets.get((dst.host, net)) or {}).get("subnet")))
    if name is None:
        return None
    if dst.name in services[name]:
        return name
    back = {(nets.get((src.host, i["network"])) or {}).get("subnet") for i in src.interfaces}
    return name if any(steer.get((dst.name, b)) == name for b in back) else None


def _ping_link(links, src, dst, net):
    """The link that lets ``src`` ping ``dst`` on network ``net`` (ICMP passes only links of protocol any)."""
    for ln in links:
        if ln.get("protocol") != "any" or ln.get("network") != net:
            continue
        if (ln.get("client") or {}).get("container") != src.name:
            continue
        server = ln.get("server")
        if server is None or server.get("container") == dst.name:
            return ln
    return None


def _pair(src, dst, ditf, nets, segments, links=(), chains=({}, {})):
    """The check (or the skip reason) for a ping from ``src`` to ``dst``'s interface ``ditf``."""
    net = ditf["network"]
    addr = ditf["address"]
    to_name = "%s/%s" % (dst.label(), ditf["name"])
    if any(i["network"] == net for i in src.interfaces):
        netspec = nets.get((src.host, net)) or {}
        one_segment = src.host == dst.host or spans_hosts(netspec)
        if one_segment and netspec.get("isolated"):
            ln = _ping_link(links, src, dst, net)
            if ln is not None:
                return _check(src, addr, to_name, "link", net, True,
                              "network %s is isolated, but a link (protocol any) lets %s reach %s"
                              % (net, src.name, "it" if ln.get("server") is None else dst.name)), None
            return _check(src, addr, to_name, "isolated", net, False,
                          "network %s is isolated and no link of protocol any from %s allows it" % (net, src.name)), None
        if src.host == dst.host:
            return _check(src, addr, to_name, "same-network", net, True, "both on network %s" % net), None
        if spans_hosts(netspec):
            return _check(src, addr, to_name, "overlay", net, True,
                          "network %s spans hosts %s and %s" % (net, src.host, dst.host)), None
        # a host-local network: src's packet stays on its own host's segment of the network
        if addr in segments.get((src.host, net), set()):
            return None, "%s is also used on %s's own segment of network %s" % (addr, src.host, net)
        return _check(src, addr, to_name, "other-host", net, False,
                      "network %s is host-local: %s and %s are separate segments" % (net, src.host, dst.host)), None
    tenant = _tenant_pair(src, dst, net, addr, nets, segments)
    if tenant is not None:
        return (_check(src, addr, to_name, "tenant", net, True, tenant[1]), None) if tenant[0] else (None, tenant[1])
    chain = _chained(chains, src, dst, net, nets)
    if chain is not None:
        return _check(src, addr, to_name, "chain", net, True, "through the services of chain %s" % chain), None
    if src.default_network is None:
        return _check(src, addr, to_name, "other-network", net, False,
                      "not on network %s and no default route" % net), None
    return _check(src, addr, to_name, "other-network", net, False,
                  "not on network %s: netstitch drops new connections into a network from elsewhere" % net), None


def _tenant_pair(src, dst, net, addr, nets, segments):
    """(True, why) when a tenant's `connect` lets ``src`` reach ``net`` (its router routes between them on src's
    host), (False, why) when the outcome is unknown (the same address is on one of src's own networks: another
    tenant's overlapping subnet), None when the usual rules hold."""
    if any(addr in segments.get((src.host, i["network"]), ()) for i in src.interfaces):
        return False, "%s is also an address on %s's own network (another tenant's overlapping subnet)" % (
            addr, src.name)
    dnet = nets.get((src.host, net)) or {}
    tenant = (dnet.get("tenant") or {}).get("name")
    if tenant is None or (src.host != dst.host and not spans_hosts(dnet)):
        return None
    pairs = set()
    for t in nets.get((None, src.host)) or ():
        if t["name"] == tenant:
            pairs = {tuple(p) for p in t["connect"]} | {tuple(reversed(p)) for p in t["connect"]}
    for i in src.interfaces:
        if (i["network"], net) in pairs:
            return True, "tenant %s connects %s and %s" % (tenant, i["network"], net)
    return None


def expected_checks(specs, endpoints, outside=OUTSIDE, pairs=True):
    """Return (checks, skipped): the reachability checks that follow from the specs and the applied endpoints.

    ``outside``: addresses beyond the hosts (the lab's outside world) to check the way out with; ``pairs``: whether to
    check container-to-container pairs (their number grows with the square of the containers)."""
    conts, nets, skipped = _containers(specs, endpoints or {})
    links = _links(specs)
    chains = _chains(specs)
    segments = {}       # (host, network) -> addresses (of both families) on that host's segment
    for c in conts:
        for i in c.interfaces:
            segments.setdefault((c.host, i["network"]), set()).update(a for a in (i["address"], i["address6"]) if a)
    checks = []
    for src in conts:
        if src.netns is None:
            skipped.append({"from": src.label(), "to": None,
                            "why": "a %s container: the probe enters named network namespaces only" % src.kind})
            continue
        for itf in src.interfaces:
            netspec = nets.get((src.host, itf["network"])) or {}
            if netspec.get("gateway"):
                checks.append(_check(src, netspec["gateway"], "gateway of %s@%s" % (itf["network"], src.host),
                                     "gateway", itf["network"], True, "its own gateway on network %s" % itf["network"]))
            if netspec.get("gateway6") and itf["address6"]:
                checks.append(_check(src, netspec["gateway6"], "gateway6 of %s@%s" % (itf["network"], src.host),
                                     "gateway", itf["network"], True, "its own IPv6 gateway on network %s"
                                     % itf["network"]))
        if pairs:
            for dst in conts:
                if dst is src:
                    continue
                for ditf in _families(dst.interfaces):
                    chk, why = _pair(src, dst, ditf, nets, segments, links, chains)
                    if chk is not None:
                        checks.append(chk)
                    else:
                        skipped.append({"from": src.label(), "to": "%s/%s" % (dst.label(), ditf["name"]), "why": why})
        for addr in outside or ():
            dnet = src.default_network
            if ":" in addr:
                _outside6(src, addr, nets, checks, skipped)
                continue
            if dnet is None:
                nets_of = sorted(set(i["network"] for i in src.interfaces))
                checks.append(_check(src, addr, "outside", "outside", None, False,
                                     "no default route (networks: %s)" % ", ".join(nets_of)))
                continue
            netspec = nets.get((src.host, dnet)) or {}
            if not netspec.get("subnet") and netspec.get("subnet6"):
                checks.append(_check(src, addr, "outside", "outside", dnet, False,
                                     "network %s is IPv6-only: no IPv4 way out" % dnet))
            elif netspec.get("internal"):
                checks.append(_check(src, addr, "outside", "outside", dnet, False,
                                     "network %s is internal: no way out" % dnet))
            elif netspec.get("masquerade"):
                checks.append(_check(src, addr, "outside", "outside", dnet, True,
                                     "default route through %s, masqueraded" % dnet))
            else:
                skipped.append({"from": src.label(), "to": addr,
                                "why": "network %s does not masquerade: the way back depends on routes outside "
                                       "netstitch" % dnet})
    checks.sort(key=lambda c: (c["from_host"], c["from_container"], KIND_ORDER.get(c["kind"], 9), c["to_name"],
                               c["to"]))
    return checks, skipped


def _families(interfaces):
    """Each interface once per address: its IPv4 address (none on an IPv6-only network), then its IPv6 one."""
    for itf in interfaces:
        if itf["address"]:
            yield itf
        if itf.get("address6"):
            yield dict(itf, address=itf["address6"])


def _outside6(src, addr, nets, checks, skipped):
    """The check (or skip) of the way out to an IPv6 outside address: through the default network's IPv6 default
    route (a dual-stack network), reached when it masquerades IPv6 (masquerade6)."""
    dnet = src.default_network
    netspec = nets.get((src.host, dnet)) or {} if dnet else {}
    if not netspec.get("subnet6"):
        checks.append(_check(src, addr, "outside", "outside", dnet, False, "no IPv6 default route (%s)" % (
            "network %s has no subnet6" % dnet if dnet else "no default route")))
    elif netspec.get("internal"):
        checks.append(_check(src, addr, "outside", "outside", dnet, False, "network %s is internal: no way out" % dnet))
    elif netspec.get("masquerade6"):
        checks.append(_check(src, addr, "outside", "outside", dnet, True,
                             "IPv6 default route through %s, masqueraded (masquerade6)" % dnet))
    else:
        skipped.append({"from": src.label(), "to": addr, "why": "network %s routes IPv6 (no masquerade6): the way "
                                                                "back depends on routes outside netstitch" % dnet})


def for_host(checks, host):
    """The checks whose source container lives on ``host`` (each host probes from its own containers)."""
    return [c for c in checks if c.get("from_host") == host]


def _got(r):
    if r.get("reached"):
        return "reach"
    err = r.get("error") or ""
    if not err:
        return "blocked"
    if "nreachable" in err:
        return "no-route"
    return "error"


def report(results, title=None):
    """A readable table (list of lines) of probe outcomes: one line per check with expectation and outcome."""
    head = ("FROM", "TO", "ADDRESS", "KIND", "EXPECT", "GOT", "RESULT")
    rows = []
    for r in results:
        exp = "reach" if r.get("expect", True) else "blocked"
        rows.append((str(r.get("from") or r.get("from_netns")), str(r.get("to_name") or r.get("to")),
                     str(r.get("to")), str(r.get("kind") or "-"), exp, _got(r), "ok" if r.get("ok") else "MISMATCH"))
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]

    def fmt(row):
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

    bad = sum(1 for r in results if not r.get("ok"))
    lines = ["%s: %d checks, %d as expected, %d mismatched" % (title or "pings", len(results), len(results) - bad, bad)]
    lines += [fmt(head)] + [fmt(row) for row in rows]
    return lines
