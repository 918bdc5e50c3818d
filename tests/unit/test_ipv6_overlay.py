"""IPv6 over the layer-2 overlays, vxlan and tinc (issue 15): each host's IPv6 slice is derived from its IPv4 slice
(the i-th IPv4 slice of the subnet owns the i-th IPv6 slice of the subnet6), so hosts never allocate the same IPv6 address; the gateway6 is
on every host's bridge and pinned in every container by a permanent neighbour entry, as the IPv4 gateway is. The
invalid cases are tests/unit/invalid/ipv6_not_yet.yml and ipv6_vxlan_slices.yml; the kinds' golden is
tests/unit/golden_host/dual_stack_vxlan(_noop); the kernel test (vxlan and tinc) is
tests/integration/test_ipv6_overlay.py."""

import ipaddress

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import ipam, planner
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, validate

N6 = ipaddress.IPv6Network
A6 = ipaddress.IPv6Address


def topology(kind="vxlan", **overlay):
    if kind == "vxlan":
        overlay.setdefault("vni", 60)
    return {
        "version": 1,
        "hosts": {"h1": {"underlay": "198.51.100.1/24"}, "h2": {"underlay": "198.51.100.2/24"},
                  "h3": {"underlay": "198.51.100.3/24"}},
        "networks": {"ov": {"subnet": "10.60.0.0/24", "subnet6": "2001:db8:60::/64",
                            "overlay": dict({"type": kind}, **overlay)}},
        "containers": {
            "a": {"host": "h1", "interfaces": [{"network": "ov"}]},
            "b": {"host": "h2", "interfaces": [{"network": "ov", "ip6": "2001:db8:60:0:1000::5"}]},
            "c": {"host": "h3", "interfaces": [{"network": "ov"}]},
        },
    }


def test_ipv6_slices_follow_the_ipv4_slices_and_never_overlap():
    topo = validate.load(topology())
    o = topo.networks["ov"].overlay
    assert o.slice_len == 28        # the default: 16 slices of the /24
    for h in ("h1", "h2", "h3"):
        index = (int(o.slices[h].network_address) - int(ipaddress.IPv4Address("10.60.0.0"))) // 16
        assert o.slices6[h] == N6((int(A6("2001:db8:60::")) + index * 2 ** 60, 68))
    assert [str(o.slices6[h]) for h in ("h1", "h2", "h3")] == \
        ["2001:db8:60:0:1000::/68", "2001:db8:60:0:2000::/68", "2001:db8:60:0:3000::/68"]
    slices = sorted(o.slices6.values())
    assert all(not a.overlaps(b) for a, b in zip(slices, slices[1:]))


def test_explicit_ipv4_slices_place_the_ipv6_ones():
    topo = validate.load(topology(slices={"h1": "10.60.0.240/28"}))
    assert str(topo.networks["ov"].overlay.slices6["h1"]) == "2001:db8:60:0:f000::/68"


def test_the_host_spec_carries_the_ipv6_slice_and_the_fixed_addresses_of_the_segment():
    specs = hostspec.host_specs(validate.load(topology()))
    for h, pool6 in (("h1", "2001:db8:60:0:1000::/68"), ("h3", "2001:db8:60:0:3000::/68")):
        net = specs[h]["networks"][0]
        assert (net["pool6"], net["reserved6"]) == (pool6, ["2001:db8:60:0:1000::5"])
        assert (net["subnet6"], net["gateway6"]) == ("2001:db8:60::/64", "2001:db8:60::1")
        assert hostspec.spec_problems(specs[h]) == []


def test_a_host_allocates_in_its_slice_and_never_a_fixed_address_of_another_host():
    spec = hostspec.host_specs(validate.load(topology()))["h1"]
    got, leases = ipam.allocate6(spec, {}, {})
    # the slice's first address is an ordinary address of the segment (only the subnet6's first is reserved)
    assert got[("a", "eth0")] == A6("2001:db8:60:0:1000::")
    assert leases == {"ov": {"a/eth0/6": "2001:db8:60:0:1000::"}}
    itf = {"name": "eth0", "network": "ov", "host_ifname": "nsd", "ip": None, "mac": "02:00:00:00:00:0d",
           "default_route": False}
    spec["containers"].append({"name": "d", "kind": "netns", "netns": "d", "docker": None, "interfaces": [
        dict(itf, name="eth%d" % i, host_ifname="nsd%d" % i) for i in range(7)]})
    got, _leases = ipam.allocate6(spec, {}, {})
    mine = sorted(got.values())
    # b (on h2) has the fixed address ::5 of h1's slice: reserved6 keeps h1 from handing it out
    assert A6("2001:db8:60:0:1000::5") not in mine and A6("2001:db8:60:0:1000::8") in mine
    assert all(a in N6("2001:db8:60:0:1000::/68") for a in mine) and len(set(mine)) == len(mine) == 8


@pytest.mark.parametrize("kind", ["vxlan", "tinc"])
def test_the_endpoint_pins_the_local_gateway6_beside_the_ipv4_gateway(kind):
    spec = hostspec.host_specs(validate.load(topology(kind)))["h1"]
    assert spec["networks"][0]["pool6"] == "2001:db8:60:0:1000::/68"
    addresses, _l = ipam.allocate(spec, {}, {})
    addresses6, _l6 = ipam.allocate6(spec, {}, {})
    desired = planner.desired_state(spec, addresses, None, addresses6)
    (e,) = desired["endpoints"].values()
    mac = spec["networks"][0]["bridge_mac"]
    assert e["gateway_neigh"] == ["10.60.0.1", mac] and e["gateway_neigh6"] == ["2001:db8:60::1", mac]
    actions, conflicts = planner.plan(desired, {"links": {}, "netns": {}, "named_netns": ["a"]})
    assert not conflicts
    pins = [a for a in actions if a["op"] == "neigh_replace"]
    assert [(a["ip"], a["mac"]) for a in pins] == [("10.60.0.1", mac), ("2001:db8:60::1", mac)]


def test_the_diff_shows_both_pinned_gateways_and_nothing_when_they_are_pinned():
    import os

    from .test_host_golden import GOLDEN, _current, _optional, read_yaml
    d = os.path.join(GOLDEN, "dual_stack_vxlan")
    res = planner.compute(read_yaml(os.path.join(d, "spec.yml")), _current(d), _optional(d, "leases.yml") or {})
    a = {c["name"]: c for c in res.changes}["endpoint a/eth0 (network ov)"]
    assert "pinned gateway 10.40.0.1 at 82:43:19:ff:6f:f6" in a["before"]
    assert "pinned gateway 10.40.0.1 at 82:43:19:ff:6f:f6, 2001:db8:40::1 at 82:43:19:ff:6f:f6" in a["after"]
    d = os.path.join(GOLDEN, "dual_stack_vxlan_noop")
    res = planner.compute(read_yaml(os.path.join(d, "spec.yml")), _current(d), _optional(d, "leases.yml"))
    assert res.changes == []


def test_a_link_between_hosts_holds_for_ipv6_with_the_peer_s_facts():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.links import resolve_links
    data = topology()
    data["networks"]["ov"]["isolated"] = True
    data["links"] = [{"client": "a", "server": "c", "ports": [80]}]
    spec = hostspec.host_specs(validate.load(data))["h1"]
    addresses, _l = ipam.allocate(spec, {}, {})
    addresses6, _l6 = ipam.allocate6(spec, {}, {})
    peers = {"h3": {"addresses": {"c/eth0": "10.60.0.48"}, "addresses6": {"c/eth0": "2001:db8:60:0:3000::"}}}
    (ln,), _names, warnings = resolve_links(spec, addresses, peers, addresses6)
    assert (ln["client_ip6"], ln["server_match6"]) == ("2001:db8:60:0:1000::", "2001:db8:60:0:3000::")
    assert not warnings
    # facts of a host without them (an older netstitch): the link holds for IPv4 only
    del peers["h3"]["addresses6"]
    (ln,), _names, _w = resolve_links(spec, addresses, peers, addresses6)
    assert ln["client_ip"] == "10.60.0.16" and "client_ip6" not in ln
