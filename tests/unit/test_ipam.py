"""Host-local address allocation (ipam.allocate): stable under additions, removals and reruns; leases first, then
the kernel's address, then the lowest free one; fixed addresses and the gateway are never handed out; exhaustion is
an error naming the network and the host; and the validator's capacity check agrees with what ipam can allocate."""

import ipaddress

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import ipam, marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError, TopologyError

A = ipaddress.IPv4Address


def net(name="n", subnet="10.0.0.0/24", gateway=None, reserved=(), pool=None):
    s = ipaddress.IPv4Network(subnet)
    return {"name": name, "bridge": "nsbr-" + name, "bridge_mac": "02:00:00:00:00:01", "subnet": subnet,
            "gateway": gateway or str(s.network_address + 1), "mtu": 1500, "masquerade": True, "internal": False,
            "pool": pool or subnet, "reserved": list(reserved), "overlay": None}


def ctr(name, *itfs):
    """itfs: (network, fixed ip or None) per interface."""
    return {"name": name, "kind": "netns", "netns": name, "docker": None, "interfaces": [
        {"name": "eth%d" % i, "network": n, "host_ifname": ("v%s%d" % (name, i))[:15], "ip": ip,
         "mac": "02:00:00:00:00:02", "default_route": i == 0} for i, (n, ip) in enumerate(itfs)]}


def spec(containers, networks=None):
    networks = networks or [net()]
    fixed = {}
    for c in containers:
        for i in c["interfaces"]:
            if i["ip"]:
                fixed.setdefault(i["network"], []).append(i["ip"])
    for n in networks:
        n["reserved"] = sorted(set(n["reserved"]) | set(fixed.get(n["name"], [])))
    return {"version": 1, "host": "h1", "networks": networks, "containers": containers}


def simple(*names, **fixed):
    return spec([ctr(n, ("n", fixed.get(n))) for n in names])


def kernel(sp, addresses, prefixlen=None):
    """The current state of a host where every interface of ``sp`` holds the given address (veth pairs linked)."""
    plens = {n["name"]: ipaddress.IPv4Network(n["subnet"]).prefixlen for n in sp["networks"]}
    links, netns, idx = {}, {}, 100
    for c in sp["containers"]:
        ns = netns.setdefault(c["netns"], {"links": {}, "default_route": None, "routes": [], "neighbours": []})
        for j, itf in enumerate(c["interfaces"]):
            idx += 1
            links[itf["host_ifname"]] = {
                "index": idx, "kind": "veth", "alias": marks.veth_alias(c["name"], itf["name"], itf["network"]),
                "master": "nsbr-" + itf["network"], "mtu": 1500, "up": True, "mac": "6a:00:00:00:00:01",
                "peer_index": 2 + j, "addresses": []}
            addr = addresses.get((c["name"], itf["name"]))
            ns["links"][itf["name"]] = {
                "index": 2 + j, "kind": "veth", "alias": None, "master": None, "mtu": 1500, "up": True,
                "mac": itf["mac"], "peer_index": idx,
                "addresses": ["%s/%d" % (addr, prefixlen or plens[itf["network"]])] if addr else []}
    return {"links": links, "netns": netns, "named_netns": sorted(netns), "owned_netns": sorted(netns),
            "sysctl": {}, "routes": {}}


def keys(*names):
    return [(n, "eth0") for n in names]


# -- the plain case -------------------------------------------------------------------------------------------------

def test_lowest_free_addresses_in_spec_order_and_leases_recorded():
    sp = simple("b", "a", "c", c="10.0.0.2")
    got, leases = ipam.allocate(sp, {}, {})
    assert got == {("b", "eth0"): A("10.0.0.3"), ("a", "eth0"): A("10.0.0.4"), ("c", "eth0"): A("10.0.0.2")}
    # fixed addresses need no lease
    assert leases == {"n": {"b/eth0": "10.0.0.3", "a/eth0": "10.0.0.4"}}


# -- stability -------------------------------------------------------------------------------------------------

BEFORE = ("b", "d", "f")
AFTER_ADD = ("a", "b", "c", "d", "e", "f")


@pytest.mark.parametrize("source", ["leases", "kernel", "both"])
def test_adding_containers_never_moves_another(source):
    s1 = simple(*BEFORE)
    r1, l1 = ipam.allocate(s1, {}, {})
    s2 = simple(*AFTER_ADD, e="10.0.0.9")
    cur = kernel(s1, r1) if source in ("kernel", "both") else {}
    r2, l2 = ipam.allocate(s2, cur, l1 if source in ("leases", "both") else {})
    for k in r1:
        assert r2[k] == r1[k]
    assert len(set(r2.values())) == len(r2)
    assert r2[("e", "eth0")] == A("10.0.0.9")
    assert {r2[k] for k in keys("a", "c")} == {A("10.0.0.5"), A("10.0.0.6")}   # the lowest free ones


def test_without_leases_or_kernel_state_addresses_would_move():
    """The control for the test above: the order-based fallback alone renumbers, so the test can fail."""
    r1, _rest = ipam.allocate(simple(*BEFORE), {}, {})
    r2, _rest = ipam.allocate(simple(*AFTER_ADD), {}, {})
    assert any(r2[k] != r1[k] for k in r1)


@pytest.mark.parametrize("source", ["leases", "kernel"])
def test_removing_containers_never_moves_another(source):
    s1 = simple("a", "b", "c", "d", "e")
    r1, l1 = ipam.allocate(s1, {}, {})
    s2 = simple("a", "c", "e")
    r2, l2 = ipam.allocate(s2, kernel(s1, r1) if source == "kernel" else {}, l1 if source == "leases" else {})
    assert r2 == {k: r1[k] for k in keys("a", "c", "e")}
    if source == "leases":
        assert l2 == {"n": {"a/eth0": "10.0.0.2", "c/eth0": "10.0.0.4", "e/eth0": "10.0.0.6"}}   # removed ones dropped


def test_a_freed_address_is_reused_only_by_a_newcomer():
    s1 = simple("a", "b", "c")
    r1, l1 = ipam.allocate(s1, {}, {})
    r2, l2 = ipam.allocate(simple("a", "c", "z"), {}, l1)
    assert r2[("z", "eth0")] == r1[("b", "eth0")] and r2[("a", "eth0")] == r1[("a", "eth0")]


def test_rerun_gives_the_same_result():
    sp = spec([ctr("a", ("n", None), ("m", None)), ctr("b", ("n", None)), ctr("c", ("m", "10.1.0.7"))],
              [net(), net("m", "10.1.0.0/24")])
    r1, l1 = ipam.allocate(sp, {}, {})
    cur = kernel(sp, r1)
    for _n in range(3):
        r, l = ipam.allocate(sp, cur, l1)
        assert (r, l) == (r1, l1)


# -- leases and the kernel ----------------------------------------------------------------------------------------

def test_a_container_that_lost_its_namespace_gets_its_leased_address_back():
    sp = simple("a", "web")
    cur = kernel(sp, {})
    del cur["links"]["vweb0"]
    cur["netns"]["web"] = None                       # the namespace is gone (container restarted)
    got, leases = ipam.allocate(sp, cur, {"n": {"web/eth0": "10.0.0.200"}})
    assert got[("web", "eth0")] == A("10.0.0.200")   # not the lowest free address
    assert got[("a", "eth0")] == A("10.0.0.2")
    assert leases["n"]["web/eth0"] == "10.0.0.200"


def test_the_lease_wins_over_an_address_changed_by_hand():
    """netstitch's record is the lease: an address changed by hand in the kernel is drift and is put back."""
    sp = simple("a")
    got, _rest = ipam.allocate(sp, kernel(sp, {("a", "eth0"): A("10.0.0.77")}), {"n": {"a/eth0": "10.0.0.50"}})
    assert got[("a", "eth0")] == A("10.0.0.50")


def test_the_kernel_address_is_kept_without_a_usable_lease():
    sp = simple("a", "b", "c", c="10.0.0.60")
    cur = kernel(sp, {("a", "eth0"): A("10.0.0.77"), ("b", "eth0"): A("10.0.0.78")})
    # a: no lease at all (a lost state directory); b: its lease is now c's fixed address
    got, leases = ipam.allocate(sp, cur, {"n": {"b/eth0": "10.0.0.60"}})
    assert got[("a", "eth0")] == A("10.0.0.77") and got[("b", "eth0")] == A("10.0.0.78")
    assert leases["n"] == {"a/eth0": "10.0.0.77", "b/eth0": "10.0.0.78"}


def test_kernel_addresses_that_do_not_fit_are_not_kept():
    sp = simple("a", "b", "c", "d", c="10.0.0.60")
    cur = kernel(sp, {("a", "eth0"): A("10.0.0.1"),      # the gateway
                      ("b", "eth0"): A("10.0.0.60"),     # c's fixed address
                      ("d", "eth0"): A("192.168.0.5")})  # outside the subnet
    got, _rest = ipam.allocate(sp, cur, {})
    assert [got[k] for k in keys("a", "b", "d")] == [A("10.0.0.2"), A("10.0.0.3"), A("10.0.0.4")]
    # the same address with another prefix length is not the address netstitch gave either
    got, _rest = ipam.allocate(simple("a"), kernel(simple("a"), {("a", "eth0"): A("10.0.0.99")}, prefixlen=16), {})
    assert got[("a", "eth0")] == A("10.0.0.2")


def test_two_claims_on_one_address_do_not_both_win():
    sp = simple("a", "b")
    got, _rest = ipam.allocate(sp, kernel(sp, {("b", "eth0"): A("10.0.0.9")}), {"n": {"a/eth0": "10.0.0.9"}})
    assert got[("a", "eth0")] == A("10.0.0.9") and got[("b", "eth0")] == A("10.0.0.2")


# -- never allocated ------------------------------------------------------------------------------------------------

def test_fixed_reserved_gateway_network_broadcast_are_never_allocated():
    n = net(subnet="10.0.0.0/28", gateway="10.0.0.14", reserved=["10.0.0.3"])   # 3: another host's fixed address
    names = ["c%d" % i for i in range(9)]
    sp = spec([ctr(x, ("n", None)) for x in names] + [ctr("f1", ("n", "10.0.0.1")), ctr("f2", ("n", "10.0.0.7"))], [n])
    # leases pointing at forbidden addresses are ignored
    leases = {"n": {"c0/eth0": "10.0.0.14", "c1/eth0": "10.0.0.7", "c2/eth0": "10.0.0.0", "c3/eth0": "10.0.0.3",
                    "c4/eth0": "10.0.0.15"}}
    got, _rest = ipam.allocate(sp, {}, leases)
    allocated = [got[(x, "eth0")] for x in names]
    forbidden = {A("10.0.0.0"), A("10.0.0.15"), A("10.0.0.14"), A("10.0.0.3"), A("10.0.0.1"), A("10.0.0.7")}
    assert not set(allocated) & forbidden
    assert len(set(allocated)) == 9 and all(a in ipaddress.IPv4Network("10.0.0.0/28") for a in allocated)
    # 16 - 6 forbidden = 10 usable: one more fits, two more do not
    ipam.allocate(spec(sp["containers"] + [ctr("x", ("n", None))], [dict(n)]), {}, {})
    with pytest.raises(ApplyError):
        ipam.allocate(spec(sp["containers"] + [ctr("x", ("n", None)), ctr("y", ("n", None))], [dict(n)]), {}, {})


def test_exhaustion_names_network_host_and_interface():
    sp = spec([ctr("c%d" % i, ("tiny", None)) for i in range(6)], [net("tiny", "10.9.0.0/29")])
    with pytest.raises(ApplyError) as ei:
        ipam.allocate(sp, {}, {})
    msg = str(ei.value)
    assert "networks.tiny" in msg and "host h1" in msg and "10.9.0.0/29" in msg and "containers.c5" in msg


# -- scale -------------------------------------------------------------------------------------------------------------

def test_a_thousand_allocations():
    sp = spec([ctr("c%04d" % i, ("n", None)) for i in range(1000)], [net(subnet="10.0.0.0/22")])
    got, leases = ipam.allocate(sp, {}, {})
    assert len(got) == 1000 and len(set(got.values())) == 1000
    assert min(got.values()) == A("10.0.0.2") and max(got.values()) == A("10.0.3.233")
    assert A("10.0.0.1") not in got.values()
    again, leases2 = ipam.allocate(sp, kernel(sp, got), leases)
    assert again == got and leases2 == leases
    # one more at the front of the order moves nobody
    sp2 = spec([ctr("a", ("n", None))] + sp["containers"], [net(subnet="10.0.0.0/22")])
    more, _rest = ipam.allocate(sp2, {}, leases)
    assert {k: more[k] for k in got} == got and more[("a", "eth0")] == A("10.0.3.234")


# -- the validator's capacity check agrees with ipam -----------------------------------------------------------------

def _topology(n, network):
    return {"hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"ov": network},
            "containers": {"c%02d" % i: {"host": "h1", "interfaces": [{"network": "ov"}]} for i in range(n)}}


@pytest.mark.parametrize("network,capacity", [
    ({"subnet": "10.0.0.0/28"}, 13),                                                         # 16 - net, bcast, gw
    ({"subnet": "10.0.0.0/24", "overlay": {"type": "vxlan", "vni": 5, "slice_len": 28}}, 16),  # a whole slice
    ({"subnet": "10.0.0.0/24", "overlay": {"type": "routed", "slice_len": 28}}, 13),          # slice = segment
], ids=["local", "vxlan-slice", "routed-slice"])
def test_validator_capacity_matches_ipam(network, capacity):
    topo = validate.load(_topology(capacity, network))
    sp = comp.host_specs(topo)["h1"]
    got, _rest = ipam.allocate(sp, {}, {})
    assert len(set(got.values())) == capacity
    with pytest.raises(TopologyError) as ei:
        validate.load(_topology(capacity + 1, network))
    assert any(p.path == "networks.ov" and "needs %d allocated addresses" % (capacity + 1) in p.reason
               for p in ei.value.problems)
