"""Compiling a validated topology into per-host specs: each host gets only its own containers, the networks it
carries, the fixed addresses its allocation must avoid, and a host with nothing gets an empty spec."""

import copy
import ipaddress
import json

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model, validate

from .conftest import BASE


def specs_of(topo):
    return comp.host_specs(validate.load(topo))


def test_every_host_gets_a_spec_with_only_its_containers():
    specs = specs_of(copy.deepcopy(BASE))
    assert sorted(specs) == ["h1", "h2", "h3"]
    assert [c["name"] for c in specs["h1"]["containers"]] == ["api", "web"]      # sorted by name
    assert [c["name"] for c in specs["h2"]["containers"]] == ["db"]
    for host, sp in specs.items():
        assert sp["host"] == host and sp["version"] == comp.SPEC_VERSION


def test_networks_are_those_the_host_carries():
    specs = specs_of(copy.deepcopy(BASE))
    assert [n["name"] for n in specs["h1"]["networks"]] == ["back", "front"]
    assert [n["name"] for n in specs["h2"]["networks"]] == ["back", "mgmt"]    # mgmt: named in its hosts list


def test_a_host_with_nothing_gets_an_empty_spec():
    sp = specs_of(copy.deepcopy(BASE))["h3"]
    assert sp["networks"] == [] and sp["containers"] == []
    assert sp.get("publish", []) == [] and sp.get("links", []) == []


def test_fixed_addresses_are_reserved_per_host_segment():
    topo = copy.deepcopy(BASE)
    topo["containers"]["api2"] = {"host": "h2", "interfaces": [{"network": "back", "ip": "10.20.0.9"}]}
    specs = specs_of(topo)
    back = {h: [n for n in specs[h]["networks"] if n["name"] == "back"][0] for h in ("h1", "h2")}
    front = [n for n in specs["h1"]["networks"] if n["name"] == "front"][0]
    assert front["reserved"] == ["10.10.0.10"]
    assert back["h2"]["reserved"] == ["10.20.0.5", "10.20.0.9"]
    # a host-local network is one segment per host: h2's fixed addresses are not h1's business
    assert back["h1"]["reserved"] == []


def test_network_and_interface_fields():
    specs = specs_of(copy.deepcopy(BASE))
    front = [n for n in specs["h1"]["networks"] if n["name"] == "front"][0]
    assert {k: front[k] for k in ("bridge", "subnet", "gateway", "mtu", "masquerade", "internal", "pool")} == {
        "bridge": "nsbr-front", "subnet": "10.10.0.0/24", "gateway": "10.10.0.1", "mtu": 1500,
        "masquerade": True, "internal": False, "pool": "10.10.0.0/24"}
    assert front["overlay"] is None
    web = [c for c in specs["h1"]["containers"] if c["name"] == "web"][0]
    assert web["kind"] == "netns" and web["netns"] == "web" and web["docker"] is None
    e0, e1 = web["interfaces"]
    assert (e0["name"], e0["network"], e0["ip"], e0["default_route"]) == ("eth0", "front", "10.10.0.10", True)
    assert (e1["name"], e1["network"], e1["ip"], e1["default_route"]) == ("eth1", "back", None, False)
    assert e0["host_ifname"] == model.default_host_ifname("web", "eth0")
    assert e0["mac"] != e1["mac"]


def test_specs_are_plain_json_and_deterministic():
    a, b = specs_of(copy.deepcopy(BASE)), specs_of(copy.deepcopy(BASE))
    assert a == b
    assert json.loads(json.dumps(a)) == a      # module arguments travel as JSON


def test_compile_does_not_depend_on_container_order():
    topo = copy.deepcopy(BASE)
    reordered = dict(topo, containers=dict(reversed(list(topo["containers"].items()))))
    assert specs_of(topo) == specs_of(reordered)


def test_vxlan_overlay_spec_per_host():
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}, "h3": {}},
            "networks": {"ov": {"subnet": "10.50.0.0/24", "overlay": {"type": "vxlan", "vni": 42, "slice_len": 28}}},
            "containers": {
                "a": {"host": "h1", "interfaces": [{"network": "ov", "ip": "10.50.0.20"}]},
                "b": {"host": "h2", "interfaces": [{"network": "ov"}]}}}
    specs = specs_of(topo)
    n1, n2 = specs["h1"]["networks"][0], specs["h2"]["networks"][0]
    # one segment: the same subnet and gateway everywhere, each host allocating from its own slice
    assert n1["subnet"] == n2["subnet"] == "10.50.0.0/24" and n1["gateway"] == n2["gateway"] == "10.50.0.1"
    s1, s2 = ipaddress.IPv4Network(n1["pool"]), ipaddress.IPv4Network(n2["pool"])
    assert s1.prefixlen == s2.prefixlen == 28 and not s1.overlaps(s2)
    # a shared segment reserves every host's fixed addresses
    assert n1["reserved"] == n2["reserved"] == ["10.50.0.20"]
    assert n1["bridge_mac"] != n2["bridge_mac"]
    o1 = n1["overlay"]
    assert (o1["type"], o1["vni"], o1["local"]) == ("vxlan", 42, "192.0.2.1")
    assert [p["host"] for p in o1["peers"]] == ["h2"] and o1["peers"][0]["underlay"] == "192.0.2.2"
    b_mac = specs["h2"]["containers"][0]["interfaces"][0]["mac"]
    assert b_mac in o1["peers"][0]["macs"] and n2["bridge_mac"] in o1["peers"][0]["macs"]
    assert specs["h3"]["networks"] == []


def test_routed_overlay_spec_per_host():
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"rt": {"subnet": "10.60.0.0/24", "overlay": {"type": "routed", "slice_len": 28}}},
            "containers": {"a": {"host": "h1", "interfaces": [{"network": "rt"}]},
                           "b": {"host": "h2", "interfaces": [{"network": "rt"}]}}}
    specs = specs_of(topo)
    n1, n2 = specs["h1"]["networks"][0], specs["h2"]["networks"][0]
    # each host's segment is its slice, with its own gateway
    assert n1["subnet"] == n1["pool"] and n2["subnet"] == n2["pool"] and n1["subnet"] != n2["subnet"]
    assert ipaddress.IPv4Address(n1["gateway"]) == ipaddress.IPv4Network(n1["subnet"]).network_address + 1
    assert n1["overlay"]["routes"] == [{"dst": n2["subnet"], "via": "192.0.2.2", "host": "h2"}]


def test_an_attachment_makes_its_host_carry_the_network_and_keeps_its_address_and_mac_known():
    """networks.N.attach (issue 16): the attachment's host carries the network (only that host's attachments are
    in its spec), its address is reserved from allocation, and on a vxlan overlay the other hosts learn its MAC."""
    topo = {"version": 1, "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"ov": {"subnet": "10.81.0.0/24", "overlay": {"type": "vxlan", "vni": 7},
                                "attach": [{"host": "h1", "interface": "tap-vm", "ip": "10.81.0.200",
                                            "mac": "52:54:00:00:16:04"}]}},
            "containers": {"c2": {"host": "h2", "interfaces": [{"network": "ov"}]}}}
    specs = specs_of(topo)
    (h1,), (h2,) = specs["h1"]["networks"], specs["h2"]["networks"]
    assert h1["attach"] == [{"interface": "tap-vm"}] and "attach" not in h2
    assert h1["reserved"] == h2["reserved"] == ["10.81.0.200"]
    (peer,) = h2["overlay"]["peers"]
    assert peer["host"] == "h1" and "52:54:00:00:16:04" in peer["macs"]
    # without attachments, a spec has no attach key at all (specs of other topologies stay as they were)
    del topo["networks"]["ov"]["attach"]
    assert "attach" not in specs_of(topo)["h2"]["networks"][0]


def test_a_macvlan_network_is_its_own_list_with_the_hosts_range_and_every_fixed_address_reserved():
    """networks.N.macvlan (issue 16): no bridge network in the spec; the host's range is its pool (None without
    one), the gateway is the segment's router (none by default), fixed addresses are reserved on every host."""
    topo = {"version": 1, "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"phys": {"subnet": "192.0.2.0/24",
                                  "macvlan": {"parent": "eth0", "ranges": {"h1": "192.0.2.96/28"}}}},
            "containers": {"a": {"host": "h1", "interfaces": [{"network": "phys"}]},
                           "b": {"host": "h2", "interfaces": [{"network": "phys", "ip": "192.0.2.120"}]}}}
    specs = specs_of(topo)
    assert specs["h1"]["networks"] == specs["h2"]["networks"] == []
    (m1,), (m2,) = specs["h1"]["macvlan_networks"], specs["h2"]["macvlan_networks"]
    assert m1 == {"name": "phys", "subnet": "192.0.2.0/24", "gateway": None, "mtu": 1500, "pool": "192.0.2.96/28",
                  "reserved": ["192.0.2.120"], "parent": "eth0"}
    assert m2["pool"] is None and m2["reserved"] == ["192.0.2.120"]
    # no gateway: no default route through it
    assert specs["h1"]["containers"][0]["interfaces"][0]["default_route"] is False
    for sp in specs.values():
        assert not comp.spec_problems(sp)


def test_a_routed_gateway_states_per_host_the_route_the_outside_needs():
    """networks.N.inbound (issue 16): the route to each host's part (a routed overlay: its slice) via its underlay
    address; masquerade is off; the allow list goes to every host carrying the network."""
    topo = {"version": 1, "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"ov": {"subnet": "10.82.0.0/16", "overlay": {"type": "routed"},
                                "inbound": {"allow": [{"ports": [80, "8000-8010"]}]}}},
            "containers": {"a": {"host": "h1", "interfaces": [{"network": "ov"}]},
                           "b": {"host": "h2", "interfaces": [{"network": "ov"}]}}}
    specs = specs_of(topo)
    for h, via in (("h1", "192.0.2.1"), ("h2", "192.0.2.2")):
        (net,) = specs[h]["networks"]
        assert net["masquerade"] is False
        assert net["inbound"]["routes"] == [{"dst": net["subnet"], "via": via}]
        assert net["inbound"]["allow"] == [{"from": None, "protocol": "tcp", "ports": [[80, 80], [8000, 8010]]}]
        assert net["subnet"] != "10.82.0.0/16"      # the host's slice, not the whole overlay
        assert not comp.spec_problems(specs[h])
