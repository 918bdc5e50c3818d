"""Tenants on the controller side (issue 16, item 3): overlapping subnets across tenants compile, each host's spec
names its router namespaces (hosts.H.router_netns_prefix), transits are stable /30s of 169.254.0.0/16 unless given,
and the spec is valid against the host spec schema."""

import copy
import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_tenants import default_transit

TOPO = {
    "version": 1,
    "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24", "router_netns_prefix": "lab-h2-"}},
    "networks": {"web": {"subnet": "10.1.0.0/24", "overlay": {"type": "vxlan", "vni": 11}, "hosts": ["h1", "h2"]},
                 "web2": {"subnet": "10.1.0.0/24", "overlay": {"type": "vxlan", "vni": 12}, "hosts": ["h1", "h2"]},
                 "db": {"subnet": "10.2.0.0/24", "internal": True}},
    "containers": {"a": {"host": "h1", "interfaces": [{"network": "web", "ip": "10.1.0.10"}]},
                   "b": {"host": "h1", "interfaces": [{"network": "web2", "ip": "10.1.0.10"}]},
                   "c": {"host": "h1", "interfaces": [{"network": "db"}]}},
    "tenants": {"blue": {"networks": ["web", "db"], "connect": [["web", "db"]]},
                "red": {"networks": ["web2"], "transit": "198.51.100.252/30"}},
}


def test_overlapping_tenants_compile_into_router_namespaces_per_host():
    topo = validate.load(copy.deepcopy(TOPO), debug=True)
    specs = hostspec.host_specs(topo)
    for host, spec in specs.items():
        assert hostspec.spec_problems(spec) == [], host
    h1 = {t["name"]: t for t in specs["h1"]["tenants"]}
    h2 = {t["name"]: t for t in specs["h2"]["tenants"]}
    assert h1["blue"]["netns"] == "nsrt-blue" and h2["blue"]["netns"] == "lab-h2-blue"
    assert h1["blue"]["networks"] == ["web", "db"] and h2["blue"]["networks"] == ["web"]     # db is on h1 only
    assert h1["blue"]["connect"] == [["db", "web"]] and h2["blue"]["connect"] == []
    assert h1["red"]["transit"] == {"host": "198.51.100.253/30", "router": "198.51.100.254/30"}
    blue = ipaddress.IPv4Interface(h1["blue"]["transit"]["router"])
    assert blue.network.prefixlen == 30 and blue.ip in ipaddress.IPv4Network("169.254.0.0/16")
    assert h1["blue"]["transit"] == h2["blue"]["transit"]
    nets = {n["name"]: n for n in specs["h1"]["networks"]}
    assert nets["web"]["tenant"]["name"] == "blue" and nets["web2"]["tenant"]["name"] == "red"
    assert nets["web"]["tenant"]["bridge_mac"] != nets["web"]["bridge_mac"]     # the gateway's MAC is the leg's
    assert nets["web"]["overlay"]["vni"] != nets["web2"]["overlay"]["vni"]


def test_a_default_transit_is_stable_and_avoids_the_reserved_blocks():
    a = default_transit("blue", [])
    assert a == default_transit("blue", []) and a.prefixlen == 30
    assert default_transit("blue", [a]) != a        # taken: the next free /30
    for name in ("t%d" % i for i in range(300)):
        t = default_transit(name, [])
        assert not t.overlaps(ipaddress.IPv4Network("169.254.0.0/24"))
        assert not t.overlaps(ipaddress.IPv4Network("169.254.255.0/24"))
        assert ipaddress.IPv4Address("169.254.169.254") not in t


def test_networks_without_tenants_still_may_not_overlap():
    topo = copy.deepcopy(TOPO)
    del topo["tenants"]
    try:
        validate.load(topo)
    except Exception as e:      # noqa: BLE001 - TopologyError
        assert "overlaps" in str(e)
    else:
        raise AssertionError("overlapping networks without tenants were accepted")


def test_the_expected_reachability_knows_tenants():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import reachability
    topo = copy.deepcopy(TOPO)
    topo["containers"]["d"] = {"host": "h1", "interfaces": [{"network": "web", "ip": "10.1.0.11"}]}
    for c in topo["containers"].values():
        c["netns"] = "ns-" + c["interfaces"][0]["network"] + c["interfaces"][0].get("ip", "x")
    specs = hostspec.host_specs(validate.load(topo, debug=True))
    endpoints = {"h1": [{"container": "a", "interface": "eth0", "address": "10.1.0.10/24"},
                        {"container": "b", "interface": "eth0", "address": "10.1.0.10/24"},
                        {"container": "c", "interface": "eth0", "address": "10.2.0.2/24"},
                        {"container": "d", "interface": "eth0", "address": "10.1.0.11/24"}], "h2": []}
    checks, skipped = reachability.expected_checks(specs, endpoints)
    by = {(c["from_container"], c["to_name"].split("@")[0]): c for c in checks}
    assert by[("a", "c")]["expect"] is True and by[("a", "c")]["kind"] == "tenant"      # blue connects web and db
    assert by[("c", "a")]["expect"] is True
    assert by[("b", "c")]["expect"] is False        # red reaches nothing of blue's
    assert by[("a", "d")]["expect"] is True         # same network
    # red's b has blue's a's address: a's ping to it answers from a's own network, so it is not checked
    assert ("a", "b") not in by and any(s["from"] == "a@h1" and s["to"].startswith("b@h1") for s in skipped)
    assert ("d", "b") not in by
