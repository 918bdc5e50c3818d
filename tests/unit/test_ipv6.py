"""IPv6 dual stack (issue 15): the topology's subnet6/gateway6/ip6 are validated, normalised to the canonical form,
and checked for reserved addresses, prefix rules, overlaps and capacity; the host spec carries them in canonical form;
the host allocates and leases IPv6 addresses (ipam.allocate6). The table of invalid cases is
tests/unit/invalid/ipv6_*.yml (run by test_validate and test_cli); the kinds' dual-stack goldens are
tests/unit/golden_host/dual_stack_*; the kernel tests are tests/integration/test_ipv6.py.
"""

import copy
import ipaddress
import json

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import check_ipv6, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError

from .conftest import BASE

A6 = ipaddress.IPv6Address
N6 = ipaddress.IPv6Network


def dual(subnet6="2001:db8:10::/64", **net):
    data = copy.deepcopy(BASE)
    data["networks"]["front"].update(subnet6=subnet6, **net)
    return data


def test_dual_stack_model_is_canonical():
    data = dual("2001:0DB8:0010:0000::/64", gateway6="2001:DB8:10:0:0:0:0:FE")
    data["containers"]["web"]["interfaces"][0]["ip6"] = "2001:0db8:10::0:0:a"
    topo = validate.load(data)
    front = topo.networks["front"]
    assert front.subnet6 == N6("2001:db8:10::/64") and str(front.subnet6) == "2001:db8:10::/64"
    assert str(front.gateway6) == "2001:db8:10::fe"
    web = topo.containers["web"].interfaces
    assert str(web[0].ip6) == "2001:db8:10::a" and web[0].ip == ipaddress.IPv4Address("10.10.0.10")
    # an interface of the dual-stack network without ip6 gets one allocated later; v4-only networks have none
    assert topo.containers["api"].interfaces[0].ip6 is None and web[1].ip6 is None
    assert topo.networks["back"].subnet6 is None and topo.networks["back"].gateway6 is None


def test_default_gateway6_is_the_first_address_after_the_anycast():
    topo = validate.load(dual("2001:db8:10::/112"))
    assert topo.networks["front"].gateway6 == A6("2001:db8:10::1")


def test_every_textual_form_gives_the_same_model():
    forms = ["2001:db8:10::a", "2001:0db8:0010:0000:0000:0000:0000:000a", "2001:DB8:10:0::A", "2001:db8:10:0:0:0:0:a"]
    got = set()
    for form in forms:
        data = dual("2001:db8:10::/64")
        data["containers"]["web"]["interfaces"][0]["ip6"] = form
        got.add(validate.load(data).containers["web"].interfaces[0].ip6)
    assert got == {A6("2001:db8:10::a")}


def test_the_same_address_in_two_forms_is_used_twice():
    data = dual()
    data["containers"]["web"]["interfaces"][0]["ip6"] = "2001:db8:10::a"
    data["containers"]["api"]["interfaces"][0]["ip6"] = "2001:0DB8:0010::000A"
    with pytest.raises(TopologyError) as ei:
        validate.load(data)
    assert [(p.path, p.reason) for p in ei.value.problems] == [
        ("containers.api.interfaces[0].ip6", "2001:db8:10::a is also used by containers.web.interfaces[0].ip6")]


def test_an_ipv4_mapped_address_is_not_taken_for_the_ipv4_one():
    """::ffff:10.10.0.10 written as ip6 is an IPv6 address outside the subnet6, not the interface's IPv4 address."""
    data = dual()
    data["containers"]["web"]["interfaces"][0]["ip6"] = "::ffff:10.10.0.10"    # not in the subnet6: refused as such
    with pytest.raises(TopologyError) as ei:
        validate.load(data)
    assert [p.path for p in ei.value.problems] == ["containers.web.interfaces[0].ip6"]
    assert "outside the subnet6" in ei.value.problems[0].reason


@pytest.mark.parametrize("addr, subnet, reserved", [
    ("2001:db8::", "2001:db8::/64", "subnet-router anycast"),
    ("2001:db8::1", "2001:db8::/64", None),
    ("2001:db8::fdff:ffff:ffff:ff7f", "2001:db8::/64", None),
    ("2001:db8::fdff:ffff:ffff:ff80", "2001:db8::/64", "reserved subnet anycast"),
    ("2001:db8::fdff:ffff:ffff:ffff", "2001:db8::/64", "reserved subnet anycast"),
    ("2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64", None),     # only the EUI-64 range in a /64 (RFC 2526)
    ("2001:db8::ff7f", "2001:db8::/112", None),
    ("2001:db8::ff80", "2001:db8::/112", "reserved subnet anycast"),
    ("2001:db8::7f", "2001:db8::/120", None),
    ("2001:db8::80", "2001:db8::/120", "reserved subnet anycast"),
])
def test_reserved_addresses(addr, subnet, reserved):
    reason = check_ipv6.reserved_reason(A6(addr), N6(subnet))
    assert (reason is None) if reserved is None else (reserved in reason)


@pytest.mark.parametrize("plen, ok", [(63, False), (64, True), (96, True), (120, True), (121, False)])
def test_prefix_rule(plen, ok):
    subnet = str(N6(("2001:db8:10::", plen)))
    if ok:
        assert validate.load(dual(subnet)).networks["front"].subnet6.prefixlen == plen
    else:
        with pytest.raises(TopologyError) as ei:
            validate.load(dual(subnet))
        assert [p.path for p in ei.value.problems] == ["networks.front.subnet6"]


def test_capacity_of_a_subnet6():
    """A /120 holds 256 addresses: minus the subnet-router anycast, the 128 reserved anycast ones and the gateway,
    126 interfaces; the 127th is refused at the network, with the count."""
    data = dual("2001:db8:10::/120")
    data["networks"]["front"]["subnet"] = "10.10.0.0/16"
    data["containers"] = {"c%d" % i: {"host": "h1", "interfaces": [{"network": "front"}]} for i in range(126)}
    assert len(validate.load(copy.deepcopy(data)).containers) == 126
    data["containers"]["c126"] = {"host": "h1", "interfaces": [{"network": "front"}]}
    with pytest.raises(TopologyError) as ei:
        validate.load(data)
    assert [(p.path, p.reason) for p in ei.value.problems] == [
        ("networks.front.subnet6", "host h1 needs 127 allocated IPv6 addresses but 2001:db8:10::/120 has only "
         "126 free")]


def test_ipv4_only_topologies_are_unchanged():
    topo = validate.load(copy.deepcopy(BASE))
    assert all(n.subnet6 is None and n.gateway6 is None for n in topo.networks.values())
    assert all(i.ip6 is None for c in topo.containers.values() for i in c.interfaces)


def test_the_diff_shows_ipv6_in_topology_words():
    """describe (--diff, plan, status) names the IPv6 half of a drifted endpoint and bridge, before and after."""
    import os

    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner

    from .test_host_golden import GOLDEN, _current, _optional, read_yaml
    d = os.path.join(GOLDEN, "dual_stack_drift")
    res = planner.compute(read_yaml(os.path.join(d, "spec.yml")), _current(d), _optional(d, "leases.yml"))
    changes = {c["name"]: c for c in res.changes}
    assert "other" not in {c["kind"] for c in res.changes}
    web2 = changes["endpoint web2/eth0 (network front)"]
    assert "address6 2001:db8:50::2/64, 2001:db8:50::99/64" in web2["before"]
    assert "address6 2001:db8:50::2/64" in web2["after"]
    web = changes["endpoint web/eth0 (network front)"]
    assert not any(w.startswith("route6") for w in web["before"])
    assert "route6 default via 2001:db8:50::1" in web["after"]
    front = changes["bridge nsbr-front (network front)"]
    assert "ipv6 forwarding on" in front["after"] and "ipv6 forwarding on" not in front["before"]


def test_the_host_spec_carries_ipv6_in_canonical_form_and_passes_its_schema():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec
    data = dual("2001:0DB8:10::/64", gateway6="2001:db8:10:0::FE")
    data["containers"]["web"]["interfaces"][0]["ip6"] = "2001:DB8:10::A"
    spec = hostspec.host_specs(validate.load(data))["h1"]
    front = [n for n in spec["networks"] if n["name"] == "front"][0]
    assert (front["subnet6"], front["gateway6"]) == ("2001:db8:10::/64", "2001:db8:10::fe")
    web = [c for c in spec["containers"] if c["name"] == "web"][0]
    assert web["interfaces"][0]["ip6"] == "2001:db8:10::a" and "ip6" not in web["interfaces"][1]
    back = [n for n in spec["networks"] if n["name"] == "back"][0]
    assert "subnet6" not in back and "gateway6" not in back        # an IPv4-only network's spec is as before
    assert hostspec.spec_problems(spec) == []
    bad = copy.deepcopy(spec)
    bad["networks"][0]["subnet6"] = "2001:DB8::/64"                # not canonical: the schema refuses it
    assert hostspec.spec_problems(bad)


def test_the_current_state_summary_shows_ipv6():
    """info's view of a host (summary of the current state): the bridge's and the endpoint's IPv6 half."""
    import os

    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import summary

    from .test_host_golden import GOLDEN, _current
    view = summary.view(current=_current(os.path.join(GOLDEN, "dual_stack_drift")))
    assert view["bridges"]["nsbr-front"]["addresses6"] == ["2001:db8:50::1/64"]
    web2 = view["endpoints"]["web2/eth0"]
    assert web2["address6"] == "2001:db8:50::2/64" and web2["default_route6"] == "2001:db8:50::1"
    assert view["endpoints"]["web/eth0"]["default_route6"] is None          # the drifted-away route


def test_outbound_ipv6_is_routed_unless_masquerade6():
    """By default no NAT rule touches IPv6 (routed, Docker's gateway mode routed); masquerade6 adds NAT66 of the
    subnet6, beside the IPv4 masquerade whose rule stays as it was."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import nft

    def nat(data):
        spec = hostspec.host_specs(validate.load(data))["h1"]
        tables = nft.desired_tables(spec)
        return {r["comment"].split(" #")[0]: r["expr"] for r in tables["inet"]["chains"]["postrouting"]["rules"]}

    routed = nat(dual())
    assert list(routed) == ["masquerade front"] and "ip6" not in json.dumps(routed)
    natted = nat(dual(masquerade6=True))
    assert natted["masquerade front"] == routed["masquerade front"]
    assert natted["masquerade front (IPv6)"] == [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}},
                   "right": {"prefix": {"addr": "2001:db8:10::", "len": 64}}}},
        {"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "daddr"}},
                   "right": {"prefix": {"addr": "2001:db8:10::", "len": 64}}}},
        {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "nsbr-front"}}, {"masquerade": None}]
    # NAT66 alone, without the IPv4 masquerade
    assert list(nat(dual(masquerade6=True, masquerade=False))) == ["masquerade front (IPv6)"]


def _isolated_dual():
    data = copy.deepcopy(BASE)
    data["networks"]["front"].update(subnet6="2001:db8:10::/64", isolated=True)
    data["containers"]["web"]["interfaces"][0]["ip6"] = "2001:db8:10::a"
    data["links"] = [{"client": "api", "server": "web", "ports": [80]}]
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec
    return hostspec.host_specs(validate.load(data))["h1"]


def _sysctl_current(v4="1", v6="1"):
    return {"links": {}, "sysctl": {"net.bridge.bridge-nf-call-iptables": v4,
                                    "net.bridge.bridge-nf-call-ip6tables": v6}}


def test_isolation_and_links_of_a_dual_stack_network_hold_for_ipv6():
    """An isolated dual-stack network gets IPv6 rules beside its IPv4 ones: replies, neighbour discovery, the link
    between the two containers' IPv6 addresses, then the drop; the IPv4 rules are as before."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner
    res = planner.compute(_isolated_dual(), _sysctl_current(), {})
    assert res.conflicts == []
    rules = [r["comment"].split(" #")[0] for r in res.tables["inet"]["chains"]["forward"]["rules"]]
    v6 = [r for r in rules if "IPv6" in r or "neighbour" in r]
    assert v6 == ["iso front: replies (IPv6)", "iso front: neighbour discovery", "iso front: link 0 (IPv6)",
                  "iso front: isolated (IPv6)"]
    assert {"iso front: replies", "iso front: link 0", "iso front: isolated"} <= set(rules)
    link6 = [r for r in res.tables["inet"]["chains"]["forward"]["rules"] if r["comment"].startswith(
        "iso front: link 0 (IPv6)")][0]["expr"]
    addrs = [m["match"]["right"] for m in link6 if m.get("match", {}).get("left", {}).get("payload", {}).get(
        "protocol") == "ip6"]
    assert addrs == ["2001:db8:10::2", "2001:db8:10::a"]     # api's allocated address (after the gateway), web's


def test_an_isolated_dual_stack_network_without_bridged_ipv6_through_the_firewall_is_isolated_statelessly():
    """Where bridged IPv6 skips the inet hooks (no bridge-nf-call-ip6tables), the IPv6 isolation is the bridge
    family's, stateless, beside the IPv4 one (stateful in inet or stateless in bridge by its own switch): neighbour
    discovery, the link both ways between the IPv6 addresses (requests by destination port, replies by source
    port), then the drop of IPv6 between the network's ports."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner
    for v4, v6 in (("1", "0"), ("0", "1"), ("0", "0"), (None, None)):
        res = planner.compute(_isolated_dual(), _sysctl_current(v4, v6), {})
        assert res.conflicts == [], (v4, v6, res.conflicts)
        inet = [r["comment"].split(" #")[0] for r in res.tables["inet"]["chains"]["forward"]["rules"]]
        br = [r["comment"].split(" #")[0] for r in
              res.tables.get("bridge", {}).get("chains", {}).get("forward", {}).get("rules", [])]
        six = ["iso front: neighbour discovery", "iso front: link 0 (IPv6)", "iso front: link 0 replies (IPv6)",
               "iso front: isolated (IPv6)"]
        four = ["iso front: link 0", "iso front: link 0 replies", "iso front: isolated"]
        assert (br == six + (four if v4 != "1" else [])) if v6 != "1" else (br == four), (v4, v6, br)
        assert ("iso front: isolated (IPv6)" in inet) == (v6 == "1"), (v4, v6, inet)
        assert ("iso front: isolated" in inet) == (v4 == "1"), (v4, v6, inet)
    res = planner.compute(_isolated_dual(), _sysctl_current("1", "0"), {})
    rules = {r["comment"].split(" #")[0]: r["expr"] for r in res.tables["bridge"]["chains"]["forward"]["rules"]}
    assert rules["iso front: link 0 (IPv6)"][1:-1] == [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "2001:db8:10::2"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "2001:db8:10::a"}},
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 80}}]
    assert rules["iso front: link 0 replies (IPv6)"][-2]["match"]["left"] == {
        "payload": {"protocol": "th", "field": "sport"}}
    assert rules["iso front: isolated (IPv6)"][-2:] == [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ether", "field": "type"}}, "right": "ip6"}},
        {"drop": None}]
    assert res.tables["bridge"]["sets"]["iso_front"]["elements"] == sorted(
        i["host_ifname"] for c in _isolated_dual()["containers"] for i in c["interfaces"] if i["network"] == "front")


def test_published_ports_on_ipv6_in_topology_words():
    """describe names each IPv6 published port by its host address ([::] for every IPv6 address) and its
    container, apart from the IPv4 port of the same number; the IPv6 isolation rules belong to the isolation."""
    import os

    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe, planner

    from .test_host_golden import GOLDEN, _current, read_yaml
    d = os.path.join(GOLDEN, "dual_stack_publish")
    res = planner.compute(read_yaml(os.path.join(d, "spec.yml")), _current(d), {})
    assert not {"other", "nft"} & {c["kind"] for c in res.changes}
    text = "\n".join(describe.lines(res.changes))
    for want in ("published port [::]:8080/tcp -> web:80 added: container address [2001:db8:60::a]:80",
                 "published port 8080/tcp -> web:80 added: container address 10.60.0.10:80",
                 "published port [::]:8443/tcp -> web:443 added",
                 "published port [2001:db8:ff::1]:9000/tcp -> web:90 added",
                 "published port 8082/tcp -> old:80 added",
                 "hairpin NAT for published ports of network front (IPv6) added"):
        assert want in text, (want, text)
    assert "[::]:8082" not in text and "[::]:9001" not in text      # IPv4 only: an IPv4-only network, an IPv4 host_ip


def test_a_port_without_host_ip_is_published_on_both_families_only_on_a_dual_stack_network():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec
    data = dual()
    data["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80},
                                            {"host_port": 8081, "container_port": 80, "host_ip": "0:0::0"},
                                            {"host_port": 8082, "container_port": 80, "host_ip": "2001:DB8:0::1"}]
    # the same port on another IPv6 address is fine; on every IPv4 address it is not (8080 holds both families)
    data["containers"]["api"]["publish"] = [{"host_port": 8081, "container_port": 80, "host_ip": "192.0.2.1"},
                                            {"host_port": 8082, "container_port": 80, "host_ip": "2001:db8::2"}]
    spec = hostspec.host_specs(validate.load(data))["h1"]
    assert [(p["host_ip"], p["host_port"]) for p in spec["publish"]] == [
        ("192.0.2.1", 8081), ("2001:db8::2", 8082), (None, 8080), ("::", 8081), ("2001:db8::1", 8082)]
    assert hostspec.spec_problems(spec) == []
    data["containers"]["api"]["publish"].append({"host_port": 8080, "container_port": 80, "host_ip": "2001:db8::9"})
    with pytest.raises(TopologyError) as e:
        validate.load(data)
    assert [(p.path, p.reason) for p in e.value.problems] == [(
        "containers.api.publish[2].host_port", "tcp [2001:db8::9]:8080 on host h1 is also published by "
        "containers.web.publish[0]")]


def test_a_docker_clients_link_name_gives_both_addresses_on_a_dual_stack_network():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import links
    spec = {"host": "h1", "networks": [{"name": "front", "subnet6": "2001:db8:10::/64"}, {"name": "back"}],
            "containers": [{"name": "cli", "kind": "docker"}],
            "links": [{"name": n, "network": net, "client": {"host": "h1", "container": "cli", "ifname": "eth0"},
                       "server": {"host": "h1", "container": s, "ifname": "eth0", "ip": None}}
                      for n, net, s in (("api", "front", "web"), ("db", "back", "pg"))]}
    addresses = {("web", "eth0"): "10.10.0.10",
                 ("pg", "eth0"): "10.20.0.5"}
    got = links.docker_names(spec, addresses, {}, {("web", "eth0"): A6("2001:db8:10::a")})
    assert got == {"cli": [["10.10.0.10", "api"], ["10.20.0.5", "db"], ["2001:db8:10::a", "api"]]}
    assert links.docker_names(spec, addresses, {}) == {"cli": [["10.10.0.10", "api"], ["10.20.0.5", "db"]]}


def test_the_connectivity_report_checks_ipv6_between_dual_stack_containers():
    """controller.reachability: on a dual-stack network every check to a container or the gateway is made for the
    IPv6 address too, with the same expectation; an IPv4-only network's containers get IPv4 checks only; an IPv6
    outside address is reached with masquerade6, skipped when IPv6 is routed."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, reachability
    data = dual()
    data["containers"]["web"]["interfaces"][0]["ip6"] = "2001:db8:10::a"
    specs = hostspec.host_specs(validate.load(data))
    endpoints = {"h1": [
        {"container": "web", "interface": "eth0", "address": "10.10.0.10/24", "address6": "2001:db8:10::a/64"},
        {"container": "web", "interface": "eth1", "address": "10.20.0.2/24"},
        {"container": "api", "interface": "eth0", "address": "10.10.0.2/24", "address6": "2001:db8:10::2/64"}],
        "h2": [{"container": "db", "interface": "eth0", "address": "10.20.0.5/24"}]}
    checks, _skipped = reachability.expected_checks(specs, endpoints, outside=["2001:db8:ff::fe"])
    got = {(c["from"], c["to"], c["kind"], c["expect"]) for c in checks}
    assert ("api@h1", "2001:db8:10::a", "same-network", True) in got
    assert ("api@h1", "10.10.0.10", "same-network", True) in got
    assert ("web@h1", "2001:db8:10::2", "same-network", True) in got
    assert {("api@h1", "2001:db8:10::1", "gateway", True), ("web@h1", "2001:db8:10::1", "gateway", True)} < got
    assert ("web@h1", "10.20.0.1", "gateway", True) in got and "2001:db8:10::1" not in {
        c["to"] for c in checks if c["from"] == "db@h2" and c["kind"] == "gateway"}
    assert ("db@h2", "2001:db8:10::a", "other-network", False) in got
    assert ("db@h2", "2001:db8:ff::fe", "outside", False) in got         # back is internal and IPv4 only
    assert not any(c["to"] == "2001:db8:ff::fe" for c in checks if c["from"] != "db@h2")    # routed: skipped
    data["networks"]["front"]["masquerade6"] = True
    checks, _skipped = reachability.expected_checks(hostspec.host_specs(validate.load(data)), endpoints,
                                                    outside=["2001:db8:ff::fe"])
    got = {(c["from"], c["to"], c["kind"], c["expect"]) for c in checks}
    assert ("api@h1", "2001:db8:ff::fe", "outside", True) in got


def test_an_automatic_port_on_an_ipv6_address_reads_with_brackets():
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import commands
    pub = [{"protocol": "tcp", "host_ip": h, "host_port": 20000, "container": "web", "container_port": 80,
            "auto": True} for h in ("::", "2001:db8::1", None, "192.0.2.1")]
    assert commands._auto_ports(pub) == [
        "automatic port: tcp [::]:20000 -> web:80", "automatic port: tcp [2001:db8::1]:20000 -> web:80",
        "automatic port: tcp *:20000 -> web:80", "automatic port: tcp 192.0.2.1:20000 -> web:80"]


def test_the_docker_plugin_reads_ipv6_leases_as_ipv6_addresses():
    """The plugin rewrites the nft maps when it publishes a port: it reads the apply's leases of both families (an
    IPv6 lease was read as an IPv4 address before, which failed), so the topology's IPv6 published ports stay."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside
    web = {"name": "eth0", "ip": "10.10.0.10", "ip6": "2001:db8:10::a"}
    api = {"name": "eth0", "ip": None}
    spec = {"containers": [{"name": "web", "interfaces": [web]}, {"name": "api", "interfaces": [api]}]}
    leases = {"front": {"api/eth0": "10.10.0.2", "api/eth0/6": "2001:db8:10::2"}}
    assert hostside.applied_addresses(spec, leases) == (
        {("api", "eth0"): ipaddress.IPv4Address("10.10.0.2"), ("web", "eth0"): ipaddress.IPv4Address("10.10.0.10")},
        {("api", "eth0"): A6("2001:db8:10::2"), ("web", "eth0"): A6("2001:db8:10::a")})
