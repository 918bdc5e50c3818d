"""Not only containers (issue 16, item 4b): containers directly on a physical segment through macvlan interfaces
(networks.N.macvlan, pipework's --direct-phys), proven by real packets in a three-host lab.

The "physical" segment is the lab's underlay switch (192.0.2.0/24): the outside router namespace sits on it at
192.0.2.254. A macvlan container on h1 is reached from there at its own address, and reaches it from its own
address: no NAT either way, and no rule of netstitch's on the host.
"""

import nskit
# fabric: the fixture
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import

ROUTER = "192.0.2.254"      # the lab's outside router, on the underlay switch
M1 = "192.0.2.100"
SETTLE = 15.0


def _topology(m1_on_segment=True):
    m1 = [{"network": "phys", "ip": M1}] if m1_on_segment else []
    return {
        "version": 1,
        "hosts": {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in ("h1", "h2", "h3")},
        "networks": {
            "phys": {"subnet": "192.0.2.0/24", "gateway": ROUTER,
                     "macvlan": {"parent": "eth0", "ranges": {"h1": "192.0.2.96/28"}}},
            "lan": {"subnet": "10.61.0.0/24"},
        },
        "containers": {
            "m1": {"host": "h1", "interfaces": m1 + [{"network": "lan", "name": "eth1",
                                                      "default_route": not m1_on_segment}]},
            "m2": {"host": "h1", "interfaces": [{"network": "phys"}]},
        },
    }


def _with_netns(fabric, topo):
    for name, c in topo["containers"].items():
        c["netns"] = fabric.cns(name)
    return topo


def test_a_macvlan_container_is_reached_from_the_segment_without_nat(fabric):
    topo = _with_netns(fabric, _topology())
    res = fabric.apply_all(topo)
    eps = {(e["container"], e["interface"]): e for e in res["h1"]["endpoints"]}
    m2 = nskit.addr(eps[("m2", "eth0")]["address"])
    assert eps[("m1", "eth0")]["address"] == M1 + "/24" and eps[("m1", "eth0")]["macvlan_parent"] == "eth0"
    assert m2.startswith("192.0.2.") and 96 <= int(m2.split(".")[-1]) < 112, m2     # from h1's range
    m1ns, out = fabric.cns("m1"), fabric.cns("out")
    link = nskit.nsexec(m1ns, "ip", "-d", "link", "show", "dev", "eth0").stdout
    assert "macvlan mode bridge" in link and "netstitch macvlan m1/eth0 phys" in link, link
    # from the segment (the outside router's namespace): straight to the containers' own addresses
    nskit.wait_until(lambda: nskit.ping(out, M1), SETTLE, "the segment to ping m1 at %s" % M1)
    nskit.wait_until(lambda: nskit.ping(out, m2), SETTLE, "the segment to ping m2 at %s" % m2)

    class _Env(object):
        procs = fabric.procs
    into = nskit.Listener(_Env, m1ns, M1, 7100, lifetime=15)
    nskit.wait_until(lambda: nskit.connect(out, M1, 7100, timeout=2), SETTLE, "TCP segment -> m1")
    peers = into.peers()
    assert set(peers) == {ROUTER}, peers      # the router's own address: no DNAT, no SNAT
    # and out: m1's default route is the segment's router, and the router sees m1's own address (no masquerade)
    assert "default via %s dev eth0" % ROUTER in nskit.nsexec(m1ns, "ip", "route").stdout
    back = nskit.Listener(_Env, out, ROUTER, 7101, lifetime=15)
    nskit.wait_until(lambda: nskit.connect(m1ns, ROUTER, 7101, timeout=2), SETTLE, "TCP m1 -> the router")
    peers = back.peers()
    assert set(peers) == {M1}, peers
    nskit.wait_until(lambda: nskit.ping(m1ns, nskit.OUTSIDE), SETTLE, "m1 to reach %s via the router" % nskit.OUTSIDE)
    # netstitch wrote no NAT or filter rule for the macvlan network (the lan network has its own, by name)
    rules = nskit.nsexec(fabric.hns("h1"), "nft", "list", "ruleset").stdout
    assert "192.0.2.0/24" not in rules and "phys" not in rules, rules
    for r in fabric.apply_all(topo).values():
        nskit.assert_noop(r)

    # m1 leaves the segment: its macvlan goes (m1's namespace stays, with its lan interface and default route)
    topo = _with_netns(fabric, _topology(m1_on_segment=False))
    fabric.apply_all(topo)
    assert nskit.nsexec(m1ns, "ip", "link", "show", "dev", "eth0", check=False).returncode != 0
    assert "default via 10.61.0.1 dev eth1" in nskit.nsexec(m1ns, "ip", "route").stdout
    nskit.assert_no_ping(out, M1)
    for r in fabric.apply_all(topo).values():
        nskit.assert_noop(r)


def test_a_missing_parent_is_a_conflict_naming_the_network(fabric):
    topo = _with_netns(fabric, _topology())
    topo["networks"]["phys"]["macvlan"]["parent"] = "nosuch0"
    path = fabric._write(topo)
    r = fabric.cli("h1", "apply", path, ok=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "networks.phys.macvlan.parent: there is no interface nosuch0 on host h1" in r.stdout + r.stderr


def test_a_macvlan_goes_with_its_container_from_a_namespace_netstitch_did_not_make(fabric):
    """A container in someone else's namespace leaves the topology: its macvlan is removed (the namespace stays);
    a veth goes with its host end, a macvlan only lives in the container's namespace."""
    ext = fabric.cns("ext")
    nskit.add_netns(ext)
    topo = _with_netns(fabric, _topology())
    topo["containers"]["ext"] = {"host": "h1", "netns": ext, "interfaces": [{"network": "phys", "ip": "192.0.2.110"}]}
    fabric.apply_all(topo)
    assert "netstitch macvlan ext/eth0 phys" in nskit.nsexec(ext, "ip", "-d", "link", "show", "dev", "eth0").stdout
    nskit.wait_until(lambda: nskit.ping(fabric.cns("out"), "192.0.2.110"), SETTLE, "the segment to ping ext")
    del topo["containers"]["ext"]
    res = fabric.apply_all(topo)
    assert any("remove macvlan eth0 in %s" % ext in t for t in res["h1"]["actions"]), res["h1"]["actions"]
    assert nskit.netns_exists(ext)
    assert nskit.nsexec(ext, "ip", "link", "show", "dev", "eth0", check=False).returncode != 0
    for r in fabric.apply_all(topo).values():
        nskit.assert_noop(r)
