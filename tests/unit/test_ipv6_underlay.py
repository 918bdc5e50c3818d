"""IPv6 underlays and IPv6 on routed overlays (issue 15), the pure parts: the MTU budget over IPv6, the host spec's
overlay (IPv6 local and peers, routes via IPv6 next hops, routes6 via link-local next hops from prepare), and the
netlink encodings (VXLAN local6, FDB to an IPv6 destination, an IPv4 route via an IPv6 next hop). The invalid cases
are tests/unit/invalid/ipv6_underlay.yml; the goldens tests/unit/golden_host/vxlan_v6_underlay_*, routed_v6_*; the
kernel test tests/integration/test_ipv6_underlay.py."""

import socket
import struct

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, model, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import rtnl
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import routed, tinc


def topology(kind, v6=True, **net):
    ov = {"type": kind}
    if kind == "vxlan":
        ov["vni"] = 7
    under = "2001:db8:0:1::%d/64" if v6 else "192.0.2.%d/24"
    return {
        "hosts": {"h%d" % i: {"underlay": under % i} for i in (1, 2, 3)},
        "networks": {"ov": dict({"subnet": "10.70.0.0/16" if kind == "routed" else "10.70.0.0/24",
                                 "overlay": ov}, **net)},
        "containers": {"c%d" % i: {"host": "h%d" % i, "interfaces": [{"network": "ov"}]} for i in (1, 2, 3)},
    }


@pytest.mark.parametrize("kind,cost4,cost6", [("vxlan", 50, 70), ("tinc", 80, 100), ("routed", 0, 0)])
def test_the_mtu_budget_counts_the_larger_ipv6_header(kind, cost4, cost6):
    assert model.overhead(kind, 4) == cost4 and model.overhead(kind, 6) == cost6
    assert validate.load(topology(kind)).networks["ov"].mtu == 1500 - cost6
    assert validate.load(topology(kind, v6=False)).networks["ov"].mtu == 1500 - cost4
    if cost6:
        with pytest.raises(TopologyError) as e:
            validate.load(topology(kind, mtu=1500 - cost6 + 1))
        assert "over IPv6" in str(e.value) and "%d bytes of encapsulation" % cost6 in str(e.value)


def test_the_host_spec_carries_ipv6_underlay_addresses_in_canonical_form():
    topo = topology("vxlan")
    topo["hosts"]["h2"]["underlay"] = "2001:0DB8:0000:0001:0:0:0:2/64"
    o = hostspec.host_specs(validate.load(topo))["h1"]["networks"][0]["overlay"]
    assert o["local"] == "2001:db8:0:1::1"
    assert [p["underlay"] for p in o["peers"]] == ["2001:db8:0:1::2", "2001:db8:0:1::3"]
    spec = hostspec.host_specs(validate.load(topo))["h1"]
    assert hostspec.spec_problems(spec) == []


def test_tinc_over_ipv6_binds_and_connects_over_ipv6():
    files = tinc.render("h1", {"device": "nstc"}, 6550, "2001:db8:0:1::1",
                        [{"host": "h2", "underlay": "2001:db8:0:1::2", "pubkey": "KEY"}], "MINE")
    assert "AddressFamily = ipv6\n" in files["tinc.conf"] and "BindToAddress = 2001:db8:0:1::1\n" in files["tinc.conf"]
    assert files["hosts/h2"].startswith("Address = 2001:db8:0:1::2\n")


def test_routed_over_ipv6_routes_both_families_via_the_peers_ipv6_addresses():
    spec = hostspec.host_specs(validate.load(topology("routed", subnet6="2001:db8:70::/64")))["h1"]
    o = spec["networks"][0]["overlay"]
    assert [(r["dst"], r["via"]) for r in o["routes"]] == [
        ("10.70.2.0/24", "2001:db8:0:1::2"), ("10.70.3.0/24", "2001:db8:0:1::3")]
    assert [(r["dst"], r["via"]) for r in o["routes6"]] == [
        ("2001:db8:70:0:200::/72", "2001:db8:0:1::2"), ("2001:db8:70:0:300::/72", "2001:db8:0:1::3")]
    n = spec["networks"][0]
    assert (n["subnet6"], n["gateway6"], o["subnet6"]) == ("2001:db8:70:0:100::/72", "2001:db8:70:0:100::1",
                                                           "2001:db8:70::/64")
    assert not hostspec.needs_prepare(spec)      # nothing to learn from the peers
    assert hostspec.spec_problems(spec) == []


def test_routed_ipv6_over_ipv4_needs_the_peers_link_local_addresses():
    spec = hostspec.host_specs(validate.load(topology("routed", v6=False, subnet6="2001:db8:70::/64")))["h1"]
    assert [r["via"] for r in spec["networks"][0]["overlay"]["routes6"]] == [None, None]
    assert hostspec.needs_prepare(spec) and hostspec.spec_problems(spec) == []
    warnings = routed.merge_peer_link_locals(spec, {"h2": {"underlay_link_local": "fe80::2"}})
    assert [r["via"] for r in spec["networks"][0]["overlay"]["routes6"]] == ["fe80::2", None]
    assert len(warnings) == 1 and "peer h3" in warnings[0] and "2001:db8:70:0:300::/72" in warnings[0]
    assert routed.link_local("fe80::2") and not routed.link_local("2001:db8::2") and not routed.link_local("10.0.0.1")
    links = {"eth0": {"addresses": ["192.0.2.1/24"], "addresses6": []}, "lo": {"addresses": ["127.0.0.1/8"]}}
    assert routed.uplink(links, "192.0.2.1") == "eth0" and routed.uplink(links, "192.0.2.9") is None


def _attrs_of(body, skip):
    return rtnl._attrs(body, skip, len(body))


def test_netlink_encodes_ipv6_underlay_requests():
    sent = []

    class Fake(rtnl.Socket):
        def __init__(self):     # no socket: record the requests
            pass

        def request(self, kind, flags, body):
            sent.append((kind, body))

    s = Fake()
    s.fdb("append", 5, "00:00:00:00:00:00", "2001:db8:0:1::2")
    a = _attrs_of(sent[-1][1], 12)
    assert rtnl._ip(sent[-1][1], a[rtnl.NDA_DST]) == "2001:db8:0:1::2"
    s.route("add", "10.70.2.0/24", "2001:db8:0:1::2", proto=159)
    body = sent[-1][1]
    assert body[0] == socket.AF_INET
    a = _attrs_of(body, 12)
    start, length = a[rtnl.RTA_VIA]
    assert struct.unpack_from("=H", body, start)[0] == socket.AF_INET6 and length == 18
    assert socket.inet_ntop(socket.AF_INET6, bytes(body[start + 2:start + 18])) == "2001:db8:0:1::2"
    assert rtnl.RTA_GATEWAY not in a
    s.route("add", "2001:db8:70:0:200::/72", "fe80::2", oif=2, proto=159)
    body = sent[-1][1]
    a = _attrs_of(body, 12)
    assert body[0] == socket.AF_INET6 and rtnl._ip(body, a[rtnl.RTA_GATEWAY]) == "fe80::2"
    assert rtnl._u32_at(body, a[rtnl.RTA_OIF]) == 2
