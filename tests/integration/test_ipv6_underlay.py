"""Overlays over an IPv6 underlay in the three-host lab (issue 15), proven by real packets. The lab's hosts get
documentation IPv6 addresses (2001:db8:0:1::N/64) on their uplink, inside this test's own host namespaces, and the
topology names them as the hosts' underlay addresses:
- vxlan: the VXLAN device's local address is IPv6, head-end replication and every remote MAC are static FDB entries
  with IPv6 destinations; IPv4 and IPv6 containers talk between every pair of hosts (ping and TCP); the MTU budget
  is 70 bytes (IPv6 header 40, not 20);
- routed (host-gw): each host routes the other hosts' IPv4 slices via their IPv6 underlay addresses (an IPv4 route
  with an IPv6 next hop, RTA_VIA, Linux 5.2 and later);
- tinc: over IPv6 (AddressFamily = ipv6, the peers' IPv6 addresses in the host files), a 100-byte budget;
- a rerun writes nothing anywhere; an overlay whose hosts mix underlay families is refused with its path."""

import ipaddress
import json

import pytest

import nskit
# fabric: the fixture
from fabrickit import fabric, HOSTS  # noqa: F401 pylint: disable=unused-import
from test_ipv6_overlay import ping6, tcp6_source
from test_overlays import SETTLE, eventually, tcp_ok

UNDERLAY6 = "2001:db8:0:1::%s"
SUBNET6 = "2001:db8:82::/64"


def _v6_underlay(fabric, kind, subnet6=False):
    """The fabric's topology of ``kind`` over IPv6 underlay addresses, which the lab hosts get here."""
    for h in HOSTS:
        nskit.nsexec(fabric.hns(h), "ip", "-6", "addr", "add", UNDERLAY6 % h[1:] + "/64", "dev", "eth0", "nodad")
    topo = fabric.topology(kind)
    for h in HOSTS:
        topo["hosts"][h]["underlay"] = UNDERLAY6 % h[1:] + "/64"
    if subnet6:
        topo["networks"]["ov"]["subnet6"] = SUBNET6
    return topo


def _all_pairs_talk(fabric, res, kind, v6=False):
    a4 = {e["container"]: nskit.addr(e["address"]) for r in res.values() for e in r["endpoints"]}
    a6 = {e["container"]: nskit.addr(e["address6"]) for r in res.values() for e in r["endpoints"]} if v6 else {}
    for src in ("c1", "c2", "c3"):
        for dst in ("c1", "c2", "c3"):
            if src == dst:
                continue
            ns, dns = fabric.cns(src), fabric.cns(dst)
            eventually(lambda: nskit.ping(ns, a4[dst], timeout=1), SETTLE[kind],
                       "%s over IPv6: %s to ping %s (%s)" % (kind, src, dst, a4[dst]), fabric)
            eventually(lambda: tcp_ok(fabric, ns, dns, a4[dst]), SETTLE[kind], "%s: TCP %s -> %s" % (kind, src, dst))
            if v6:
                eventually(lambda: ping6(ns, a6[dst]), SETTLE[kind], "ping6 %s -> %s" % (src, dst), fabric)
                got = []
                eventually(lambda: got.append(tcp6_source(fabric, ns, dns, a6[dst])) or got[-1], SETTLE[kind],
                           "TCP over IPv6 %s -> %s" % (src, dst))
                assert ipaddress.IPv6Address(got[-1]) == ipaddress.IPv6Address(a6[src])


def test_vxlan_over_an_ipv6_underlay_carries_both_families(fabric):
    topo = _v6_underlay(fabric, "vxlan", subnet6=True)
    first = fabric.apply_all(topo)
    assert all(r["changed"] for r in first.values())
    h1 = fabric.hns("h1")
    link = json.loads(nskit.nsexec(h1, "ip", "-d", "-j", "link", "show", "type", "vxlan").stdout)[0]
    info = link["linkinfo"]["info_data"]
    assert info.get("local6", info.get("local")) == "2001:db8:0:1::1", link
    assert link["mtu"] == 1500 - 70
    fdb = nskit.nsexec(h1, "bridge", "fdb", "show", "dev", link["ifname"]).stdout
    for peer in ("2001:db8:0:1::2", "2001:db8:0:1::3"):
        assert "00:00:00:00:00:00 dst %s self permanent" % peer in fdb, fdb
    # every remote container MAC (and each remote bridge) is a static entry toward its host's IPv6 address
    assert sum(" dst 2001:db8:0:1::" in line and not line.startswith("00:00:00:00:00:00")
               for line in fdb.splitlines()) == 4, fdb
    _all_pairs_talk(fabric, first, "vxlan", v6=True)
    for res in fabric.apply_all(topo).values():
        nskit.assert_noop(res)
    # the same addresses in another textual form change nothing either
    for h in HOSTS:
        topo["hosts"][h]["underlay"] = "2001:0DB8:0000:0001:0:0:0:%s/64" % h[1:]
    for res in fabric.apply_all(topo).values():
        nskit.assert_noop(res)


def test_routed_over_an_ipv6_underlay_routes_ipv4_slices_via_ipv6_next_hops(fabric):
    topo = _v6_underlay(fabric, "routed")
    first = fabric.apply_all(topo)
    routes = nskit.nsexec(fabric.hns("h1"), "ip", "route", "show", "proto", "159").stdout
    vias = sorted(line.split(" via ")[1].split()[:2] for line in routes.splitlines() if " via " in line)
    assert vias == [["inet6", "2001:db8:0:1::2"], ["inet6", "2001:db8:0:1::3"]], routes
    _all_pairs_talk(fabric, first, "routed")
    for res in fabric.apply_all(topo).values():
        nskit.assert_noop(res)


def test_tinc_over_an_ipv6_underlay(fabric):
    topo = _v6_underlay(fabric, "tinc")
    first = fabric.apply_all(topo)
    c1 = fabric.cns("c1")
    assert json.loads(nskit.nsexec(c1, "ip", "-j", "link", "show", "eth0").stdout)[0]["mtu"] == 1500 - 100
    _all_pairs_talk(fabric, first, "tinc")
    for res in fabric.apply_all(topo).values():
        nskit.assert_noop(res)


@pytest.mark.parametrize("kind", ["vxlan", "routed"])
def test_an_overlay_mixing_underlay_families_is_refused_with_its_path(fabric, kind):
    topo = _v6_underlay(fabric, kind)
    topo["hosts"]["h3"]["underlay"] = "192.0.2.3/24"
    r = fabric.cli("h1", "apply", fabric._write(topo), ok=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "networks.ov.overlay" in r.stderr and "h3 is IPv4" in r.stderr, r.stderr
    assert nskit.run("ip", "-n", fabric.hns("h1"), "-o", "link", "show", "type", "bridge").stdout == ""


def _forward6(fabric):
    """What the operator does for routed IPv6 (README): the uplink forwards IPv6 (here: inside the lab hosts)."""
    for h in HOSTS:
        nskit.nsexec(fabric.hns(h), "sysctl", "-q", "-w", "net.ipv6.conf.eth0.force_forwarding=1")


def test_routed_ipv6_over_an_ipv4_underlay_goes_via_the_peers_link_local_addresses(fabric):
    _forward6(fabric)
    topo = fabric.topology("routed")
    topo["networks"]["ov"]["subnet6"] = SUBNET6
    peers = {h: fabric.cli(h, "prepare", fabric._write(topo))["facts"] for h in HOSTS}
    lls = {}
    for h in HOSTS:
        out = nskit.nsexec(fabric.hns(h), "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link").stdout
        lls[h] = out.split()[3].split("/")[0]
        assert peers[h]["underlay_link_local"] == lls[h], (peers[h], out)
    first = fabric.apply_all(topo, prepare=True)
    routes = nskit.nsexec(fabric.hns("h1"), "ip", "-6", "route", "show", "proto", "159").stdout
    assert sorted(routes.split("\n")[i].split()[:5] for i in range(2)) == [
        ["2001:db8:82:0:200::/72", "via", lls["h2"], "dev", "eth0"],
        ["2001:db8:82:0:300::/72", "via", lls["h3"], "dev", "eth0"]], routes
    # each host's containers take their IPv6 addresses from its own slice, its gateway6 the slice's second address
    for r in first.values():
        for e in r["endpoints"]:
            host = {"c1": "1", "c2": "2", "c3": "3"}[e["container"]]
            assert ipaddress.IPv6Interface(e["address6"]).network == ipaddress.IPv6Network(
                "2001:db8:82:0:%s00::/72" % host), e
    _all_pairs_talk(fabric, first, "routed", v6=True)
    for res in fabric.apply_all(topo, prepare=True).values():
        nskit.assert_noop(res)
    # without the peers' facts the IPv6 slices are left out with a warning, never a failure (and IPv4 stays)
    r = fabric.cli("h1", "apply", fabric._write(topo))
    assert any("link-local" in w for w in r.get("warnings", [])), r.get("warnings")


def test_routed_ipv6_over_an_ipv6_underlay_goes_via_the_peers_underlay_addresses(fabric):
    _forward6(fabric)
    topo = _v6_underlay(fabric, "routed", subnet6=True)
    first = fabric.apply_all(topo)
    routes = nskit.nsexec(fabric.hns("h1"), "ip", "-6", "route", "show", "proto", "159").stdout
    assert "2001:db8:82:0:200::/72 via 2001:db8:0:1::2 dev eth0" in routes, routes
    _all_pairs_talk(fabric, first, "routed", v6=True)
    for res in fabric.apply_all(topo).values():
        nskit.assert_noop(res)


def test_a_silent_ipv6_peer_gives_a_warning_not_a_failure(fabric):
    """The underlay ping that warns about peers that do not answer sends ICMPv6 echoes to IPv6 peers: h3's IPv6
    address is taken away, so h1 warns about h3 only (h2 answers), and the apply succeeds."""
    topo = _v6_underlay(fabric, "vxlan")
    nskit.nsexec(fabric.hns("h3"), "ip", "-6", "addr", "del", UNDERLAY6 % 3 + "/64", "dev", "eth0")
    r = fabric.cli("h1", "apply", fabric._write(topo))
    warned = [w for w in r.get("warnings", []) if "does not answer on the underlay" in w]
    assert len(warned) == 1 and "peer h3 (2001:db8:0:1::3)" in warned[0], r.get("warnings")
