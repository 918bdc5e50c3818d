"""IPv6-only networks (issue 15): a network with subnet6 and no subnet. Its model and host spec carry no IPv4 (subnet,
gateway and pool null); an IPv6-only vxlan or tinc overlay places its slices in the subnet6 itself; the host plans
IPv6 alone (goldens tests/unit/golden_host/v6only_*); the connectivity report, describe, info, graph and the Docker
plugin take it. The invalid cases are tests/unit/invalid/ipv6_only.yml; the kernel test is
tests/integration/test_ipv6_only.py.
"""

import copy
import ipaddress
import os

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import graph, planner, summary
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import (
    hostspec, reachability, validate)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import core, hostside

from .test_host_golden import GOLDEN, _current, _optional, read_yaml

N6 = ipaddress.IPv6Network

TOPO = {
    "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"},
              "h3": {"underlay": "192.0.2.3/24"}},
    "networks": {
        "six": {"subnet6": "2001:db8:70::/64", "dns": True},
        "ov": {"subnet6": "2001:db8:40::/64", "overlay": {"type": "vxlan", "vni": 40}},
        "dual": {"subnet": "10.50.0.0/24", "subnet6": "2001:db8:50::/64"},
    },
    "containers": {
        "web": {"host": "h1", "interfaces": [{"network": "six", "ip6": "2001:db8:70::a"}, {"network": "ov"}],
                "publish": [{"host_port": 8080, "container_port": 80}]},
        "cli": {"host": "h1", "interfaces": [{"network": "six"}]},
        "far": {"host": "h2", "interfaces": [{"network": "ov"}]},
    },
}


def topo(**changes):
    data = copy.deepcopy(TOPO)
    for name, net in changes.items():
        data["networks"][name] = net
    return data


def test_the_model_has_no_ipv4():
    t = validate.load(topo())
    six = t.networks["six"]
    assert six.v6only and six.subnet is None and six.gateway is None and not six.masquerade
    assert six.subnet6 == N6("2001:db8:70::/64") and str(six.gateway6) == "2001:db8:70::1"
    assert six.pool("h1") is None and six.pool6("h1") == six.subnet6
    assert not t.networks["dual"].v6only
    # a port without host_ip is on every IPv6 address only
    assert [(p.host_ip, p.host_port) for p in t.containers["web"].publish] == [(None, 8080)]


def test_the_same_port_on_two_ipv6_only_networks_clashes_only_on_ipv6():
    data = topo()
    data["containers"]["cli"]["publish"] = [{"host_ip": "::", "host_port": 8080, "container_port": 80}]
    with pytest.raises(Exception) as ei:
        validate.load(data)
    assert "containers.cli.publish[0].host_port" in str(ei.value)
    data["containers"]["cli"]["interfaces"].append({"network": "dual"})
    data["containers"]["cli"]["publish"] = [{"host_ip": "0.0.0.0", "host_port": 8080, "container_port": 80,
                                             "network": "dual"}]
    validate.load(data)         # IPv4 8080 is free: the IPv6-only network's port holds IPv6 only


def test_overlay_slices_come_from_the_subnet6_itself():
    """The same slice-count rule as IPv4 (slice_len default: the prefix + 4, so 16 slices), placed by the underlay
    address modulo the number of slices; explicit slices are IPv6 ones."""
    o = validate.load(topo()).networks["ov"].overlay
    assert o.slice_len == 68
    assert {h: str(s) for h, s in o.slices6.items()} == {"h1": "2001:db8:40:0:1000::/68",
                                                         "h2": "2001:db8:40:0:2000::/68"}
    assert o.slices == o.slices6
    data = topo(ov={"subnet6": "2001:db8:40::/64", "overlay": {
        "type": "tinc", "slice_len": 72, "slices": {"h2": "2001:db8:40:0:ff00::/72"}}})
    o = validate.load(data).networks["ov"].overlay
    assert {h: str(s) for h, s in o.slices6.items()} == {"h1": "2001:db8:40:0:100::/72",
                                                         "h2": "2001:db8:40:0:ff00::/72"}


def test_hosts_sharing_a_slice_are_refused_with_the_path():
    data = topo(ov={"subnet6": "2001:db8:40::/64", "overlay": {"type": "vxlan", "vni": 40, "slice_len": 65}})
    data["hosts"]["h3"]["underlay"] = "192.0.2.3/24"
    data["containers"]["third"] = {"host": "h3", "interfaces": [{"network": "ov"}]}
    with pytest.raises(Exception) as ei:
        validate.load(data)
    assert "networks.ov.overlay: hosts h1 and h3 would share the slice 2001:db8:40:0:8000::/65" in str(ei.value)


def test_the_host_spec_has_null_ipv4_and_passes_its_schema():
    specs = hostspec.host_specs(validate.load(topo()))
    for spec in specs.values():
        assert hostspec.spec_problems(spec) == []
    nets = {n["name"]: n for n in specs["h1"]["networks"]}
    assert {k: nets["six"][k] for k in ("subnet", "gateway", "pool", "reserved", "masquerade")} == {
        "subnet": None, "gateway": None, "pool": None, "reserved": [], "masquerade": False}
    assert (nets["six"]["subnet6"], nets["six"]["gateway6"]) == ("2001:db8:70::/64", "2001:db8:70::1")
    assert nets["ov"]["overlay"]["subnet"] is None and nets["ov"]["pool6"] == "2001:db8:40:0:1000::/68"
    # another host's container on an IPv6-only network: its address comes from prepare (addresses6)
    assert hostspec.needs_prepare(specs["h2"]) is False and hostspec.needs_prepare(specs["h1"]) is False


def test_the_connectivity_report_checks_ipv6_only():
    specs = hostspec.host_specs(validate.load(topo()))
    endpoints = {"h1": [
        {"container": "web", "interface": "eth0", "address": None, "address6": "2001:db8:70::a/64"},
        {"container": "web", "interface": "eth1", "address": None, "address6": "2001:db8:40:0:1000::/64"},
        {"container": "cli", "interface": "eth0", "address": None, "address6": "2001:db8:70::2/64"}],
        "h2": [{"container": "far", "interface": "eth0", "address": None, "address6": "2001:db8:40:0:2000::/64"}]}
    checks, skipped = reachability.expected_checks(specs, endpoints, outside=["203.0.113.1"])
    got = {(c["from"], c["to"], c["kind"], c["expect"]) for c in checks}
    assert {("cli@h1", "2001:db8:70::a", "same-network", True), ("cli@h1", "2001:db8:70::1", "gateway", True),
            ("far@h2", "2001:db8:40:0:1000::", "overlay", True), ("far@h2", "2001:db8:40::1", "gateway", True),
            ("cli@h1", "203.0.113.1", "outside", False)} <= got
    assert not [c for c in checks if c["to"] is None] and not skipped
    assert [c["why"] for c in checks if c["to"] == "203.0.113.1" and c["from"] == "cli@h1"] == [
        "network six is IPv6-only: no IPv4 way out"]


def test_describe_and_info_read_an_ipv6_only_host():
    d = os.path.join(GOLDEN, "v6only_from_empty")
    res = planner.compute(read_yaml(os.path.join(d, "spec.yml")), _current(d), _optional(d, "leases.yml") or {})
    kinds = {c["kind"] for c in res.changes}
    assert "other" not in kinds and {"bridge", "endpoint"} <= kinds
    web = [c for c in res.changes if c["name"].startswith("endpoint web/eth0")][0]
    assert "address6 2001:db8:70::a/64" in web["after"] and "route6 default via 2001:db8:70::1" in web["after"]
    view = summary.view(desired=res.desired)
    assert view["bridges"]["nsbr-six"] == {"network": "six", "mtu": 1500, "addresses": [],
                                           "addresses6": ["2001:db8:70::1/64"]}


def test_the_docker_plugin_refuses_an_ipv6_only_network_clearly():
    spec = hostspec.host_specs(validate.load(topo()))["h1"]
    view = hostside.view("h1", spec, {})
    c = core.Core("netstitch")
    res = c.handle("/IpamDriver.RequestPool", {"Pool": "10.9.0.0/24", "Options": {"netstitch.network": "six"}},
                   core.empty_state(), view)
    assert "network six is IPv6-only (subnet6 2001:db8:70::/64) on host h1" in res.response["Error"]
    res = c.handle("/IpamDriver.RequestPool", {"Pool": "10.9.0.0/24"}, core.empty_state(), view)
    assert "six 2001:db8:70::/64 (IPv6-only)" in res.response["Error"]


def test_the_graph_labels_an_ipv6_only_network_by_its_subnet6():
    text = graph.to_dot(validate.load(topo()))
    assert "2001:db8:70::/64" in text and "gw 2001:db8:70::1" in text and "None" not in text
    assert "2001:db8:40:0:1000::/68" in text
