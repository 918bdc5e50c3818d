"""Links resolved to addresses for one host (pure): the input of the isolation rules (kinds.nft) and of the names in
hosts files (kinds.hosts_file, kinds.docker_hosts; a server on a dual-stack network by both of its addresses). A
container's address on this host comes from its allocation, one on another host from the facts the run gathered
(prepare)."""


def _address_of(ref, spec, addresses, peers):
    if ref["ip"]:
        return ref["ip"]
    if ref["host"] == spec["host"]:
        a = addresses.get((ref["container"], ref["ifname"]))
        return str(a) if a is not None else None
    return (((peers or {}).get(ref["host"]) or {}).get("addresses") or {}).get(
        "%s/%s" % (ref["container"], ref["ifname"]))


address_of = _address_of     # the address of a container's interface anywhere (kinds.chain: a chain's next hop)


def _address6_of(ref, spec, addresses6, peers):
    """The IPv6 address of a link's end (None: it has none, or no one could tell): this host's allocation, or
    another host's from prepare (``addresses6`` of its facts, when it reports them)."""
    if ref["host"] == spec["host"]:
        a = (addresses6 or {}).get((ref["container"], ref["ifname"]))
        return str(a) if a is not None else None
    return (((peers or {}).get(ref["host"]) or {}).get("addresses6") or {}).get(
        "%s/%s" % (ref["container"], ref["ifname"]))


def _ipv6(ln, n, spec, addresses6, peers):
    """(client_ip6, server_match6) of a link on a dual-stack network: an end's IPv6 address is allocated here or,
    on another host of an overlay, told by that host's facts (prepare); when one is not known, (None, None): the
    link then holds for IPv4 only."""
    def of(ref):
        return _address6_of(ref, spec, addresses6, peers)
    if not n.get("subnet6"):
        return None, None
    client = of(ln["client"])
    server = n["subnet6"] if ln["server"] is None else of(ln["server"])
    return (client, server) if client and server else (None, None)


def _unknown(ln, missing):
    return ("links[%d]: the address of %s on host %s is not known in this run (host down?); the link is left out "
            "here until a run reaches it" % (ln["index"], missing["container"], missing["host"]))


def resolve_links(spec, addresses, peers, addresses6=None):
    """Links with addresses: [{index, network, protocol, ports, client_ip, server_match}, plus client_ip6 and
    server_match6 on a dual-stack network], the hosts-file entries {netns: [[ip, name]]} of this host's clients, and
    warnings for addresses no one could tell."""
    nets = {n["name"]: n for n in spec["networks"]}
    netns_of = {c["name"]: c["netns"] for c in spec["containers"] if c["kind"] == "netns"}
    links, names, warnings = [], {}, []
    for ln in spec.get("links", []):
        n = nets[ln["network"]]
        if not n["subnet"]:
            # an IPv6-only network: the link between the ends' IPv6 addresses alone
            client, server = None, None
            client6, server6 = _ipv6(ln, n, spec, addresses6, peers)
            if client6 is None:
                missing = ln["client"] if _address6_of(ln["client"], spec, addresses6, peers) is None else ln["server"]
                warnings.append(_unknown(ln, missing))
                continue
            links.append({"index": ln["index"], "network": ln["network"], "protocol": ln["protocol"],
                          "ports": ln["ports"], "client_ip": None, "server_match": None, "client_ip6": client6,
                          "server_match6": server6})
            if ln["name"] and ln["client"]["host"] == spec["host"] and ln["client"]["container"] in netns_of \
                    and ln["server"] is not None:
                names.setdefault(netns_of[ln["client"]["container"]], []).append([server6, ln["name"]])
            continue
        client = _address_of(ln["client"], spec, addresses, peers)
        if ln["server"] is None:
            server = (n.get("overlay") or {}).get("subnet", n["subnet"])
        else:
            server = _address_of(ln["server"], spec, addresses, peers)
        if client is None or server is None:
            missing = ln["client"] if client is None else ln["server"]
            warnings.append(_unknown(ln, missing))
            continue
        links.append({"index": ln["index"], "network": ln["network"], "protocol": ln["protocol"],
                      "ports": ln["ports"], "client_ip": client, "server_match": server})
        client6, server6 = _ipv6(ln, nets[ln["network"]], spec, addresses6, peers)
        if client6:
            links[-1].update(client_ip6=client6, server_match6=server6)
        if ln["name"] and ln["client"]["host"] == spec["host"] and ln["client"]["container"] in netns_of:
            names.setdefault(netns_of[ln["client"]["container"]], []).append([server, ln["name"]])
            if ln["server"] is not None and nets[ln["network"]].get("subnet6"):
                server6 = _address6_of(ln["server"], spec, addresses6, peers)    # the name for IPv6 too
                if server6:
                    names[netns_of[ln["client"]["container"]]].append([server6, ln["name"]])
    return links, {ns: sorted(e) for ns, e in names.items()}, warnings


def docker_names(spec, addresses, peers, addresses6=None):
    """The link names of this host's Docker clients, for their Docker hosts files (kinds.docker_hosts):
    {container: [[ip, name]]} sorted, with the server's IPv6 address too on a dual-stack network; a server whose
    address no one could tell is left out (resolve_links warns)."""
    nets = {n["name"]: n for n in spec["networks"]}
    docker = {c["name"] for c in spec["containers"] if c["kind"] == "docker"}
    names = {}
    for ln in spec.get("links", []):
        if not ln["name"] or ln["server"] is None or ln["client"]["host"] != spec["host"] \
                or ln["client"]["container"] not in docker:
            continue
        server = _address_of(ln["server"], spec, addresses, peers)
        if server is not None:
            names.setdefault(ln["client"]["container"], []).append([server, ln["name"]])
        server6 = _address6_of(ln["server"], spec, addresses6, peers) if nets[ln["network"]].get("subnet6") else None
        if server6:
            names.setdefault(ln["client"]["container"], []).append([server6, ln["name"]])
    return {c: sorted(e) for c, e in names.items()}
