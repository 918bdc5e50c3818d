"""Create, no-op rerun, verification, change in place and prune, on a real kernel with real packets."""

import copy

from nskit import (OUTSIDE, WEB_MAC, Listener, assert_no_ping, assert_noop, base_topology, connect, endpoints, nsexec,
                   netns_exists, ping)


def _container_route(env, short):
    """The container's default route as "default via GW dev IF" ("" when it has none)."""
    return " ".join(env.ip("route", "show", "default", ns=env.ns(short)).split()[:5])


def test_create_connects_what_shares_a_network_and_nothing_else(env, lab):
    topo = base_topology(env)
    res = env.apply(topo)
    assert res["changed"] and res["actions"]
    eps = endpoints(res)
    assert eps["web/eth0"]["address"] == "10.77.1.10/24"
    assert eps["web2/eth0"]["address"] == "10.77.1.2/24"          # lowest free address of front
    assert eps["api/eth0"]["address"] == "10.77.2.2/24"
    assert eps["api/eth1"]["address"] == "10.77.3.2/24"
    assert eps["db/eth0"]["address"] == "10.77.3.20/24"

    # the kernel holds what the result says: bridges with their gateways, veths on them, containers' ends
    for br, gw in (("nsbr-front", "10.77.1.1/24"), ("nsbr-back", "10.77.2.1/24"), ("nsbr-vault", "10.77.3.1/24")):
        link = env.link(br)
        assert link and link["kind"] == "bridge" and link["up"] and link["addresses"] == [gw], (br, link)
    for key, ep in eps.items():
        c, ifname = key.split("/")
        host_end = env.link(ep["host_ifname"])
        assert host_end["kind"] == "veth" and host_end["up"], host_end
        assert host_end["master"] == "nsbr-" + ep["network"]
        cend = env.link(ifname, ns=env.ns(c))
        assert cend["addresses"] == [ep["address"]], (key, cend)
        assert cend["mac"] == ep["mac"] and cend["up"]
    assert env.link("eth0", ns=env.ns("web"))["mac"] == WEB_MAC
    assert _container_route(env, "web") == "default via 10.77.1.1 dev eth0"
    assert _container_route(env, "api") == "default via 10.77.2.1 dev eth0"
    assert _container_route(env, "db") == ""                       # internal: no way out
    assert nsexec(env.hostns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"

    # same network: reachable
    assert ping(env.ns("web"), "10.77.1.2")
    assert ping(env.ns("web2"), "10.77.1.10")
    assert ping(env.ns("api"), "10.77.3.20")                      # api and db share vault
    # different networks: not reachable, though both ends have a route (the host forwards, netstitch drops)
    assert_no_ping(env.ns("web"), "10.77.2.2")
    assert_no_ping(env.ns("api"), "10.77.1.10")
    assert_no_ping(env.ns("web"), "10.77.3.20")
    srv = Listener(env, env.ns("api"), "0.0.0.0", 8080)
    assert connect(env.hostns, "10.77.2.2", 8080)                  # the listener works (the host itself may)...
    assert not connect(env.ns("web"), "10.77.2.2", 8080, timeout=0.5)   # ...a container of front may not
    assert srv.peers() == ["10.77.2.1"]

    # the outside (198.51.100.1 in <lab>-out, via the host's default route); the outside routes the two
    # non-masquerading subnets back to this host, so only netstitch's rules decide who gets out and how
    routes = [("10.77.2.0/24", env.underlay), ("10.77.3.0/24", env.underlay)]
    for dst, via in routes:
        env.ip("route", "add", dst, "via", via, ns=lab.out)
    try:
        env.ip("route", "add", "default", "via", "10.77.3.1", ns=env.ns("db"))   # by hand: db tries anyway
        out = Listener(env, lab.out, OUTSIDE, 8081)
        assert connect(env.ns("web"), OUTSIDE, 8081)               # front masquerades...
        assert connect(env.ns("web2"), OUTSIDE, 8081)
        assert connect(env.ns("api"), OUTSIDE, 8081)               # back is routed without NAT...
        assert not connect(env.ns("db"), OUTSIDE, 8081, timeout=0.5)   # vault is internal
        assert out.peers() == [env.underlay, env.underlay, "10.77.2.2"]   # ...so the outside sees these sources
    finally:
        for dst, via in routes:
            env.ip("route", "del", dst, "via", via, ns=lab.out, check=False)

    # the route added by hand to db is drift: the next apply removes it, and touches nothing else
    res = env.apply(topo)
    assert res["actions"] == ["remove default route via 10.77.3.1 dev eth0 in %s" % env.ns("db")]
    assert _container_route(env, "db") == ""


def test_noop_rerun_writes_nothing(env):
    topo = base_topology(env)
    first = env.apply(topo)
    assert first["changed"] and first["writes"]["netlink"] > 0 and first["writes"]["nft"] == 1
    env.wait_settled([env.hostns] + env.mine())
    before = env.snapshot([env.hostns] + env.mine())
    again = env.apply(topo)
    assert again["changed"] is False
    assert again["actions"] == []
    assert again["writes"]["netlink"] == 0 and again["writes"]["nft"] == 0
    assert not any(again["writes"].values()), again["writes"]
    assert again["endpoints"] == first["endpoints"]
    assert env.snapshot([env.hostns] + env.mine()) == before


def test_gather_after_apply_reports_endpoints_in_sync(env):
    topo = base_topology(env)
    res = env.apply(topo)
    g = env.gather()
    assert g["in_sync"] is True and g["pending"] == []
    assert sorted(g["bridges"]) == ["nsbr-back", "nsbr-front", "nsbr-vault"]
    assert g["bridges"]["nsbr-front"]["addresses"] == ["10.77.1.1/24"]
    want = {k: (e["address"], e["mac"], e["host_ifname"], e["network"]) for k, e in endpoints(res).items()}
    got = {k: (e["address"], e["mac"], e["host_ifname"], e["network"]) for k, e in g["endpoints"].items()}
    assert got == want
    assert g["endpoints"]["web/eth0"]["default_route"] == "10.77.1.1"
    assert g["endpoints"]["db/eth0"]["default_route"] is None
    assert g["namespaces"] == sorted(env.ns(c) for c in ("web", "web2", "api", "db"))
    assert g["leases"] == {"front": {"web2/eth0": "10.77.1.2"},
                           "back": {"api/eth0": "10.77.2.2"}, "vault": {"api/eth1": "10.77.3.2"}}
    assert any(r.startswith("masquerade front") for r in g["nft_rules"])


def _state(env, eps):
    """ifindex, mtu and addresses of both ends of every endpoint, and of the bridges."""
    out = {}
    for br in ("nsbr-front", "nsbr-back", "nsbr-vault"):
        out[br] = env.link(br)
    for key, ep in eps.items():
        c, ifname = key.split("/")
        out[key] = {"host": env.link(ep["host_ifname"]), "container": env.link(ifname, ns=env.ns(c))}
    return out


def test_change_in_place_touches_only_what_differs(env):
    topo = base_topology(env)
    first = env.apply(topo)
    eps = endpoints(first)
    before = _state(env, eps)

    topo2 = copy.deepcopy(topo)
    topo2["networks"]["front"]["mtu"] = 1400                                   # MTU of a network
    topo2["containers"]["web"]["interfaces"][0]["ip"] = "10.77.1.11"           # a container's fixed address
    topo2["containers"]["cache"] = {"host": env.HOST, "netns": env.ns("cache"),  # one more container
                                    "interfaces": [{"network": "back"}]}
    res = env.apply(topo2)
    assert res["changed"]
    eps2 = endpoints(res)
    web_h, web2_h = eps["web/eth0"]["host_ifname"], eps["web2/eth0"]["host_ifname"]
    cache_h = eps2["cache/eth0"]["host_ifname"]
    wns, w2ns, cns = env.ns("web"), env.ns("web2"), env.ns("cache")
    assert sorted(res["actions"]) == sorted([
        "create network namespace %s" % cns,
        "set mtu 1400 on bridge nsbr-front",
        "set mtu 1400 on veth %s" % web_h,
        "set mtu 1400 on veth %s" % web2_h,
        "set mtu 1400 on eth0 in %s" % wns,
        "set mtu 1400 on eth0 in %s" % w2ns,
        "remove address 10.77.1.10/24 from eth0 in %s" % wns,
        "add address 10.77.1.11/24 to eth0 in %s" % wns,
        "route default via 10.77.1.1 dev eth0 in %s" % wns,
        "create veth %s on nsbr-back, container end eth0 in %s (mtu 1500)" % (cache_h, cns),
        "set up on eth0 in %s" % cns,
        "add address 10.77.2.3/24 to eth0 in %s" % cns,
        "route default via 10.77.2.1 dev eth0 in %s" % cns,
    ]), res["actions"]
    after = _state(env, eps)
    # front's bridge and veths: same interfaces (ifindex), new MTU
    assert after["nsbr-front"]["index"] == before["nsbr-front"]["index"]
    assert after["nsbr-front"]["mtu"] == 1400
    for key in ("web/eth0", "web2/eth0"):
        for end in ("host", "container"):
            assert after[key][end]["index"] == before[key][end]["index"], (key, end)
            assert after[key][end]["mtu"] == 1400, (key, end)
    assert after["web/eth0"]["container"]["addresses"] == ["10.77.1.11/24"]
    assert after["web2/eth0"]["container"]["addresses"] == before["web2/eth0"]["container"]["addresses"]
    # everything of the other networks is exactly as it was (the new container's veth aside)
    for key in ("nsbr-back", "nsbr-vault", "api/eth0", "api/eth1", "db/eth0"):
        assert after[key] == before[key], key
    assert env.link(cache_h)["master"] == "nsbr-back"
    assert env.link("eth0", ns=cns)["addresses"] == ["10.77.2.3/24"]      # api keeps .2; the newcomer gets .3
    # and it works: front at 1400 carries 1400-byte packets unfragmented, not 1401; cache reaches api
    assert nsexec(wns, "ping", "-c1", "-W1", "-M", "do", "-s", "1372", "10.77.1.2", check=False).returncode == 0
    assert nsexec(wns, "ping", "-c1", "-W1", "-M", "do", "-s", "1373", "10.77.1.2", check=False).returncode != 0
    assert ping(cns, "10.77.2.2")

    again = env.apply(topo2)
    assert_noop(again)

    # raising an MTU above the ports' present MTU (the bridge follows its smallest port, so order matters)
    topo3 = copy.deepcopy(topo2)
    topo3["networks"]["front"]["mtu"] = 9000
    res = env.apply(topo3)
    assert res["changed"]
    assert env.link("nsbr-front")["mtu"] == 9000
    assert env.link("nsbr-front")["index"] == before["nsbr-front"]["index"]
    assert env.link("eth0", ns=wns)["mtu"] == 9000
    assert nsexec(wns, "ping", "-c1", "-W1", "-M", "do", "-s", "8972", "10.77.1.2", check=False).returncode == 0
    again = env.apply(topo3)
    assert_noop(again)


def test_prune_removes_what_left_the_topology(env):
    topo = base_topology(env)
    first = env.apply(topo)
    eps = endpoints(first)
    keep = {k: (env.link(e["host_ifname"]), env.link(k.split("/")[1], ns=env.ns(k.split("/")[0])))
            for k, e in eps.items() if k in ("web/eth0", "api/eth1", "db/eth0")}
    front_idx = env.link("nsbr-front")["index"]

    # remove a container (web2) and a network (back, with api's interface on it)
    topo2 = copy.deepcopy(topo)
    del topo2["containers"]["web2"]
    del topo2["networks"]["back"]
    topo2["containers"]["api"]["interfaces"] = [{"network": "vault", "name": "eth1"}]
    res = env.apply(topo2)
    assert res["changed"]
    assert env.link(eps["web2/eth0"]["host_ifname"]) is None
    assert env.link(eps["api/eth0"]["host_ifname"]) is None
    assert env.link("nsbr-back") is None
    assert not netns_exists(env.ns("web2"))                         # netstitch created it, so it removes it
    assert netns_exists(env.ns("api")) and env.link("eth0", ns=env.ns("api")) is None
    assert "nsbr-back" not in env.nft("list", "table", "inet", "netstitch").stdout
    assert env.link("nsbr-front")["index"] == front_idx
    for k, (h, c) in keep.items():
        assert env.link(eps[k]["host_ifname"]) == h, k
        assert env.link(k.split("/")[1], ns=env.ns(k.split("/")[0])) == c, k
    assert _container_route(env, "api") == ""                      # its default route went with back
    assert ping(env.ns("api"), "10.77.3.20")
    again = env.apply(topo2)
    assert_noop(again)

    # remove everything: bridges, veths, namespaces and the nft table go
    empty = {"hosts": {env.HOST: {}}, "networks": {}, "containers": {}}
    res = env.apply(empty)
    assert res["changed"] and "remove nft table inet netstitch" in res["actions"]
    assert sorted(env.links()) == ["eth0", "lo"]
    assert env.mine() == []
    assert not env.has_netstitch_table()
    assert env.nft("list", "ruleset").stdout.strip() == ""
    again = env.apply(empty)
    assert_noop(again)
    g = env.gather()
    assert g["in_sync"] is True and g["bridges"] == {} and g["endpoints"] == {} and g["namespaces"] == []
