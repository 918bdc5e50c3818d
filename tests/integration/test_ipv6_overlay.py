"""IPv6 over the layer-2 overlays (vxlan, tinc) in the three-host lab (issue 15), proven by real packets: each
host's containers get
IPv6 addresses from that host's IPv6 slice (derived from its IPv4 slice), the gateway6 is on every host's bridge and
pinned in each container by a permanent neighbour entry; ping6 and TCP cross between every pair of hosts with the
sender's own address; a rerun writes nothing anywhere. (IPv6 on routed overlays: test_ipv6_underlay.py.)"""

import ipaddress
import json

import pytest

import nskit
# fabric: the fixture
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import

SUBNET6 = "2001:db8:81::/64"
# tinc daemons exchange keys first (seconds on a loaded machine); the kernel's vxlan is ready at once. Waits are on
# conditions with these deadlines, never fixed times.
SETTLE = {"vxlan": 15.0, "tinc": 45.0}

ping6 = nskit.ping     # ping takes either family from the address


def tcp6_source(fabric, src_ns, dst_ns, dst_addr, port=7106):
    """The source address the listener in ``dst_ns`` sees of a TCP connection from ``src_ns`` over IPv6, or None
    when no connection gets through (the listener is stopped by its PID, also by the fixture on failure)."""
    listener = nskit.Listener(fabric, dst_ns, dst_addr, port, lifetime=8)
    try:
        return listener.next_peer() if nskit.connect(src_ns, dst_addr, port, timeout=3) else None
    finally:
        listener.peers()


def _dual(fabric, kind):
    topo = fabric.topology(kind)
    topo["networks"]["ov"]["subnet6"] = SUBNET6
    # one fixed address, in h1's IPv6 slice although its container is on h3: h1 must never hand it out
    topo["containers"]["c3"]["interfaces"][0]["ip6"] = "2001:db8:81:0:1000::"
    return topo


@pytest.mark.parametrize("kind", ["vxlan", "tinc"])
def test_ipv6_over_a_layer2_overlay_between_every_host_pair(fabric, kind):
    topo = _dual(fabric, kind)
    first = fabric.apply_all(topo)
    assert all(r["changed"] for r in first.values())
    addr6 = {e["container"]: e["address6"] for r in first.values() for e in r["endpoints"]}
    # each host allocates from its own IPv6 slice (the /68 at the place of its /28: underlay .N -> slice N)
    assert addr6["c1"] == "2001:db8:81:0:1000::1/64", addr6     # ::0 of h1's slice is c3's fixed address
    assert addr6["c2"] == "2001:db8:81:0:2000::/64" and addr6["c3"] == "2001:db8:81:0:1000::/64", addr6
    a6 = {c: nskit.addr(a) for c, a in addr6.items()}
    for host in ("h1", "h2", "h3"):
        c = "c" + host[1:]
        ns = fabric.cns(c)
        # the same gateway6 on every host's bridge, pinned in the container at its own host's bridge MAC
        br = nskit.nsexec(fabric.hns(host), "ip", "-6", "addr", "show", "dev", "nsbr-ov", "scope", "global").stdout
        assert "inet6 2001:db8:81::1/64" in br, br
        mac = json.loads(nskit.nsexec(fabric.hns(host), "ip", "-j", "link", "show", "dev", "nsbr-ov").stdout)[0][
            "address"]
        neigh = nskit.nsexec(ns, "ip", "-6", "neigh", "show", "dev", "eth0", "nud", "permanent").stdout
        assert "2001:db8:81::1 lladdr %s PERMANENT" % mac in neigh, neigh
        route = nskit.nsexec(ns, "ip", "-6", "route", "show", "default").stdout
        assert route.split()[:5] == ["default", "via", "2001:db8:81::1", "dev", "eth0"], route
        assert ping6(ns, "2001:db8:81::1")      # its own host's gateway answers
    for src in ("c1", "c2", "c3"):
        for dst in ("c1", "c2", "c3"):
            if src == dst:
                continue
            ns, dns = fabric.cns(src), fabric.cns(dst)
            nskit.wait_until(lambda: ping6(ns, a6[dst]), timeout=SETTLE[kind],
                             what="ping6 %s -> %s (%s)\n%s" % (src, dst, a6[dst], fabric.diagnose()))
            got = []
            nskit.wait_until(lambda: got.append(tcp6_source(fabric, ns, dns, a6[dst])) or got[-1],
                             timeout=SETTLE[kind], what="TCP over IPv6 %s -> %s" % (src, dst))
            assert ipaddress.IPv6Address(got[-1]) == ipaddress.IPv6Address(a6[src])     # its own address, no NAT
    # IPv4 still crosses too
    a4 = {e["container"]: nskit.addr(e["address"]) for r in first.values() for e in r["endpoints"]}
    assert nskit.ping(fabric.cns("c1"), a4["c2"]) and nskit.ping(fabric.cns("c3"), a4["c1"])
    # a rerun writes nothing anywhere (the IPv6 leases and the pinned gateway6 are read back as they are)
    for host, res in fabric.apply_all(topo).items():
        nskit.assert_noop(res)
    # and the first phase (prepare: tinc keys, addresses for the others) keeps the IPv6 leases as they are
    path = fabric._write(topo)
    assert [fabric.cli(h, "prepare", path)["changed"] for h in ("h1", "h2", "h3")] == [False] * 3


def test_isolation_and_a_link_between_hosts_hold_for_ipv6_over_vxlan(fabric):
    """An isolated dual-stack vxlan network: the link c1 -> c2 (hosts h1 and h2, port 7106) lets IPv6 through with
    c1's own address (the server's IPv6 address comes from h2's facts); another port, and the unlinked c3, stay
    out over IPv6 as over IPv4."""
    for h in ("h1", "h2", "h3"):        # bridged IPv6 through the inet hooks (per namespace; the lab host's own)
        nskit.nsexec(fabric.hns(h), "sh", "-c", "echo 1 > /proc/sys/net/bridge/bridge-nf-call-ip6tables")
    topo = _dual(fabric, "vxlan")
    topo["networks"]["ov"]["isolated"] = True
    topo["links"] = [{"client": "c1", "server": "c2", "ports": [7106]}]
    res = fabric.apply_all(topo)
    a6 = {e["container"]: nskit.addr(e["address6"]) for r in res.values() for e in r["endpoints"]}
    c1, c2, c3 = (fabric.cns(c) for c in ("c1", "c2", "c3"))
    got = []
    nskit.wait_until(lambda: got.append(tcp6_source(fabric, c1, c2, a6["c2"])) or got[-1], timeout=SETTLE["vxlan"],
                     what="TCP over IPv6 c1 -> c2 on the linked port")
    assert ipaddress.IPv6Address(got[-1]) == ipaddress.IPv6Address(a6["c1"])
    assert tcp6_source(fabric, c1, c2, a6["c2"], port=7107) is None       # not the linked port
    assert tcp6_source(fabric, c3, c2, a6["c2"]) is None                  # not linked
    assert tcp6_source(fabric, c2, c1, a6["c1"]) is None                  # nor the other way
    for r in fabric.apply_all(topo).values():
        nskit.assert_noop(r)
