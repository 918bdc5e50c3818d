"""Kind: the name service of a network (``dns: true``): one dnsmasq per network and host, listening only on the
network's gateway address on this host's bridge (the gateway6 on an IPv6-only network), answering ``<container>`` and ``<container>.<network>`` for every
container of that network on every host (addresses from this host's allocation, fixed addresses, and the other
hosts' allocations from prepare; on a dual-stack network the IPv6 address too, an AAAA record), and nothing for
other networks. It also answers the link names of the network's
Docker clients (which kinds.docker_hosts also writes into their own hosts files): to every container of the
network, which is fine because a network with a name service is never isolated, so each of them may reach that
server anyway. Queries a name does not hold go to the host's resolvers (dnsmasq's default). ``kind: netns``
containers on such a network get /etc/netns/<netns>/resolv.conf pointing at it (the first such network of the
container).

Why one server per network and not one per host: dnsmasq answers by the address a query reaches, not by who asks;
a server per network (and kinds.nft's DNS rule, which lets a bridge's containers query only their own gateway)
means a container learns only the names of its own networks. Isolated networks get no name service for the same
reason (a name server cannot tell the linked containers of an isolated network from the others)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act

KEY = "dns"


def networks(spec):
    return [n for n in (spec or {}).get("networks", []) if n.get("dns") is not None]


def desired(ctx):
    """{network: {"listen", "bridge", "records": [[ip, name, name.network], ...]}} and, under the key "@resolv",
    {netns: nameserver address}."""
    spec = ctx.spec
    out, resolv = {}, {}
    peers = ctx.peers or {}
    for n in networks(spec):
        records = []
        for ref in n["dns"]["names"]:
            ip = _address(ref, spec, ctx, peers)
            for ip in (ip, _address6(ref, n, spec, ctx, peers)):
                if ip is not None:
                    records.append([ip, ref["container"], "%s.%s" % (ref["container"], n["name"])])
        for alias in n["dns"].get("aliases", []):
            # a Docker client's link name (also in its own hosts file, kinds.docker_hosts): for the whole network
            ip = _address(alias["server"], spec, ctx, peers)
            for ip in (ip, _address6(alias["server"], n, spec, ctx, peers)):
                if ip is not None:
                    records.append([ip, alias["name"]])
        out[n["name"]] = {"listen": listen(n), "bridge": n["bridge"], "records": sorted(records),
                          "domains": sorted(x["name"] for x in networks(spec))}
    dns_nets = {n["name"]: listen(n) for n in networks(spec)}
    for c in spec.get("containers", []):
        if c["kind"] != "netns":
            continue
        first = next((dns_nets[i["network"]] for i in c["interfaces"] if i["network"] in dns_nets), None)
        if first is not None:
            resolv[c["netns"]] = first
    return {"servers": out, "resolv": resolv}


def listen(n):
    """Where a network's name server listens: its gateway, or on an IPv6-only network its gateway6."""
    return n["gateway"] or n["gateway6"]


def _address(ref, spec, ctx, peers):
    """The address of an endpoint: fixed, this host's allocation, or another host's from prepare (None: unknown)."""
    ip = ref.get("ip")
    if ip is None and ref["host"] == spec["host"]:
        ip = ctx.addresses.get((ref["container"], ref["ifname"]))
    if ip is None:
        known = (peers.get(ref["host"]) or {}).get("addresses") or {}
        ip = known.get("%s/%s" % (ref["container"], ref["ifname"]))
    return None if ip is None else str(ip).split("/", maxsplit=1)[0]


def _address6(ref, n, spec, ctx, peers):
    """The IPv6 address of an endpoint on a dual-stack network (its AAAA record; None: none or unknown): this host's
    allocation (fixed or not), or another host's from prepare when its facts carry ``addresses6``."""
    if not n.get("subnet6"):
        return None
    ip = ctx.addresses6.get((ref["container"], ref["ifname"])) if ref["host"] == spec["host"] else \
        ((peers.get(ref["host"]) or {}).get("addresses6") or {}).get("%s/%s" % (ref["container"], ref["ifname"]))
    return None if ip is None else str(ip).split("/", maxsplit=1)[0]


def dns_guard(spec):
    """(purpose, nft expression) of the rule that lets the containers of a bridge with a name service query only
    their own network's server: DNS to another address of this host, arriving on that bridge, is dropped."""
    out = []
    for n in networks(spec):
        out.append(("dns guard %s" % n["name"], [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": n["bridge"]}},
            {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
            {"match": {"op": "!=", "left": {"payload": {"protocol": "ip" if n["gateway"] else "ip6", "field": "daddr"}},
                       "right": listen(n)}},
            {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 53}},
            {"drop": None}]))
    return out


RESOLV_HEAD = "# netstitch: the name service of this container's network\n"


def resolv_text(nameserver):
    return RESOLV_HEAD + "nameserver %s\n" % nameserver


def diff(desired_state, current, out, ctx):
    """``current["dns"]``: {"servers": {network: {"listen", "records", "running"}}, "resolv": {netns: text}}."""
    want = desired_state.get("dns") or {"servers": {}, "resolv": {}}
    have = current.get("dns") or {"servers": {}, "resolv": {}}
    for net, w in sorted(want["servers"].items()):
        h = have["servers"].get(net)
        if h is None or h["listen"] != w["listen"] or h["records"] != w["records"] or not h["running"] \
                or h.get("domains") != w["domains"]:
            out.add("files", act("dns_write", "name service of network %s on %s: %d names" % (
                net, w["listen"], len(w["records"])), network=net, listen=w["listen"], records=w["records"],
                domains=w["domains"]))
    for net in sorted(set(have["servers"]) - set(want["servers"])):
        out.add("stop", act("dns_stop", "stop the name service of network %s" % net, network=net))
    for ns, ip in sorted(want["resolv"].items()):
        if ns in desired_state["netns"] and (have["resolv"] or {}).get(ns) != resolv_text(ip):
            out.add("files", act("resolv_write", "write /etc/netns/%s/resolv.conf: nameserver %s" % (ns, ip),
                                 netns=ns, content=resolv_text(ip)))
    for ns, text in sorted((have["resolv"] or {}).items()):
        # netstitch's resolv.conf of a container no longer on a network with a name service: removed
        if text and text.startswith(RESOLV_HEAD) and ns not in want["resolv"]:
            out.add("files", act("resolv_write", "remove /etc/netns/%s/resolv.conf" % ns, netns=ns, content=None))
