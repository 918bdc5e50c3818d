"""Docker containers and networks, the pure parts: validation and compile (defaults, Docker's range of a pool),
allocation outside Docker's range, the planner's default route that yields to Docker's, the Docker network plan
(create, keep, re-create only for what Docker cannot change, refuse while containers are connected unless forced,
remove only what netstitch made), and the watcher's event matching. No Docker Engine, no kernel."""

import copy
import ipaddress
import types

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine, ipam
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import docker_network as dockerplan
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import Plan
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import watch
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError

TOPO = {
    "hosts": {"h1": {"underlay": "192.0.2.1/24", "docker_host": "unix:///run/d1.sock"},
              "h2": {"underlay": "192.0.2.2/24"}},
    "networks": {
        "fab": {"subnet": "10.73.0.0/24", "overlay": {"type": "vxlan", "vni": 73}, "hosts": ["h1", "h2"],
                "docker": {"name": "fabnet", "hosts": ["h1"]}},
        "lan": {"subnet": "10.9.0.0/24", "docker": True},
    },
    "containers": {
        "web": {"host": "h1", "kind": "docker", "interfaces": [{"network": "fab"}, {"network": "lan"}]},
        "db": {"host": "h1", "kind": "docker", "docker": "0123456789ab",
               "interfaces": [{"network": "lan", "default_route": True, "name": "data0"}]},
        "n2": {"host": "h2", "interfaces": [{"network": "fab"}]},
    },
}


def specs(topo=None):
    return comp.host_specs(validate.load(copy.deepcopy(topo or TOPO)))


def hstate(leases=None, spec=None):
    return types.SimpleNamespace(leases=leases or {}, owned_netns=set(), spec=spec)


# -- validation and compile ---------------------------------------------------------------------------------------------
def test_docker_containers_defaults_and_spec():
    s = specs()
    h1 = s["h1"]
    web = [c for c in h1["containers"] if c["name"] == "web"][0]
    db = [c for c in h1["containers"] if c["name"] == "db"][0]
    assert (web["kind"], web["docker"], web["netns"]) == ("docker", "web", None)
    assert db["docker"] == "0123456789ab"
    # pipework's convention: eth1, eth2, ... so Docker's own eth0 stays free
    assert [i["name"] for i in web["interfaces"]] == ["eth1", "eth2"]
    # the implicit default route of a Docker container yields to Docker's; an explicit one does not
    assert web["interfaces"][0]["default_route"] is True and web["interfaces"][0]["default_route_soft"] is True
    assert "default_route_soft" not in web["interfaces"][1]
    assert db["interfaces"][0]["default_route"] is True and "default_route_soft" not in db["interfaces"][0]
    assert h1["docker_host"] == "unix:///run/d1.sock" and "docker_host" not in s["h2"]


def test_offered_networks_get_dockers_range_per_host():
    s = specs()
    fab1 = {n["name"]: n for n in s["h1"]["networks"]}["fab"]
    fab2 = {n["name"]: n for n in s["h2"]["networks"]}["fab"]
    lan = {n["name"]: n for n in s["h1"]["networks"]}["lan"]
    # h1's slice of the overlay is 10.73.0.16/28; Docker gets its upper half
    assert fab1["pool"] == "10.73.0.16/28" and fab1["docker"] == {"name": "fabnet", "ip_range": "10.73.0.24/29"}
    assert "docker" not in fab2        # offered on h1 only
    assert lan["docker"] == {"name": "lan", "ip_range": "10.9.0.128/25"}
    t = copy.deepcopy(TOPO)
    t["networks"]["lan"]["docker"] = {"range_len": 28}
    assert {n["name"]: n for n in specs(t)["h1"]["networks"]}["lan"]["docker"]["ip_range"] == "10.9.0.240/28"


def test_specs_without_docker_have_no_docker_keys():
    t = {"hosts": {"h1": {}}, "networks": {"a": {"subnet": "10.1.0.0/24"}},
         "containers": {"c": {"host": "h1", "interfaces": [{"network": "a"}]}}}
    s = specs(t)["h1"]
    assert "docker_host" not in s and "docker" not in s["networks"][0]
    assert set(s["containers"][0]["interfaces"][0]) == {"name", "network", "host_ifname", "ip", "mac",
                                                        "default_route"}


def test_capacity_counts_dockers_share_of_the_pool():
    t = {"hosts": {"h1": {}}, "networks": {"a": {"subnet": "10.1.0.0/28", "docker": True}},
         "containers": {"c%d" % i: {"host": "h1", "interfaces": [{"network": "a"}]} for i in range(6)}}
    specs(t)     # 16 addresses: 8 for Docker, network, gateway: 6 left
    t["containers"]["c6"] = {"host": "h1", "interfaces": [{"network": "a"}]}
    with pytest.raises(TopologyError) as e:
        validate.load(t)
    assert "host h1 needs 7 allocated addresses but its pool 10.1.0.0/28 has only 6 free" in str(e.value)


def test_allocation_never_enters_dockers_range():
    t = {"hosts": {"h1": {}}, "networks": {"a": {"subnet": "10.1.0.0/28", "docker": True}},
         "containers": {"c%d" % i: {"host": "h1", "interfaces": [{"network": "a"}]} for i in range(6)}}
    spec = specs(t)["h1"]
    got, _rest = ipam.allocate(spec, {"links": {}, "netns": {}}, {})
    assert sorted(int(str(a).split(".")[3]) for a in got.values()) == [2, 3, 4, 5, 6, 7]
    # a lease inside Docker's range (an older topology) is not honoured: the container moves out of it
    got, leases = ipam.allocate(spec, {"links": {}, "netns": {}}, {"a": {"c0/eth0": "10.1.0.9"}})
    assert ipaddress.IPv4Address("10.1.0.9") not in got.values()


# -- the planner's default route ------------------------------------------------------------------------------------------
def _docker_endpoint_plan(route, soft=True, peer=False):
    spec = {"host": "h1", "networks": [{"name": "a", "bridge": "nsbr-a", "bridge_mac": "02:00:00:00:00:01",
                                        "subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "mtu": 1500,
                                        "masquerade": True, "internal": False, "pool": "10.1.0.0/24",
                                        "reserved": [], "overlay": None, "isolated": False}],
            "containers": [{"name": "web", "kind": "docker", "docker": "web", "netns": "/proc/42/ns/net",
                            "interfaces": [dict({"name": "eth1", "network": "a", "host_ifname": "nsweb",
                                                 "ip": "10.1.0.5", "mac": "02:00:00:00:00:05",
                                                 "default_route": True},
                                                **({"default_route_soft": True} if soft else {}))]}]}
    ns = {"links": {"lo": {"index": 1, "peer_index": None}, "eth0": {"index": 7, "peer_index": 8}},
          "default_route": route, "routes": [], "neighbours": []}
    current = {"links": {}, "netns": {"/proc/42/ns/net": ns}, "named_netns": [], "sysctl": {}}
    desired = planner.desired_state(spec, {("web", "eth1"): ipaddress.IPv4Address("10.1.0.5")})
    return planner.plan(desired, current)


def test_implicit_default_route_yields_to_dockers():
    actions, conflicts = _docker_endpoint_plan({"gateway": "172.17.0.1", "dev": "eth0"})
    assert conflicts == []
    assert not [a for a in actions if a["op"].startswith("route")]
    assert [a["op"] for a in actions if a.get("ns") or a.get("peer")] == ["veth_add", "link_set", "addr_add"]


def test_implicit_default_route_is_set_when_docker_gives_none():
    actions, conflicts = _docker_endpoint_plan(None)
    assert conflicts == [] and [a for a in actions if a["op"] == "route_replace"][0]["dev"] == "eth1"


def test_explicit_default_route_conflicts_with_dockers_also_at_the_first_attach():
    actions, conflicts = _docker_endpoint_plan({"gateway": "172.17.0.1", "dev": "eth0"}, soft=False)
    assert conflicts == ["containers.web (interface eth1): namespace /proc/42/ns/net already has a default route "
                         "via eth0 that netstitch did not create; set default_route: false"]


# -- Docker networks --------------------------------------------------------------------------------------------------------
def _dplan(spec, have, force=False):
    """The Docker network kind's diff alone: (removals, creations, conflicts)."""
    out = Plan()
    dockerplan.diff_networks(spec, have, out, force)
    return out.phases["docker_remove"], out.phases["docker_create"], out.conflicts


def _have(spec, **changes):
    """What Docker reports for the spec's networks as netstitch made them, with some fields changed."""
    out = {}
    for name, w in dockerplan.desired(spec).items():
        h = {k: w[k] for k in dockerplan.FIXED}
        h.update({"id": "id-" + name, "labels": dict(w["labels"]), "configs": 1,
                  "configs6": 1 if w.get("subnet6") else 0, "containers": []})
        h.update(changes)
        out[name] = h
    return out


def test_docker_network_created_after_the_bridges_and_kept_when_equal():
    spec = specs()["h1"]
    first, last, conflicts = _dplan(spec, {})
    assert first == [] and conflicts == []
    assert [(a["op"], a["name"]) for a in last] == [("docker_net_create", "fabnet"), ("docker_net_create", "lan")]
    assert last[0]["want"] == {"network": "fab", "driver": "bridge", "bridge": "nsbr-fab", "subnet": "10.73.0.0/24",
                               "gateway": "10.73.0.1", "ip_range": "10.73.0.24/29", "mtu": "1450",
                               "masquerade": "false", "ipv6": False, "subnet6": None, "gateway6": None,
                               "ip_range6": None, "labels": {"netstitch.host": "h1", "netstitch.network": "fab"}}
    assert _dplan(spec, _have(spec)) == ([], [], [])


def test_options_netstitch_enforces_do_not_touch_the_docker_network():
    spec = specs()["h1"]
    have = _have(spec, containers=[{"id": "c1", "name": "a1", "ipv4": "10.9.0.130"}])
    for change in ({"masquerade": False}, {"internal": True}, {"isolated": True}):
        t = copy.deepcopy(TOPO)
        t["networks"]["lan"].update(change)
        t["containers"]["db"]["interfaces"][0]["default_route"] = False
        assert _dplan(specs(t)["h1"], have) == ([], [], []), change


def test_what_docker_cannot_change_recreates_refused_while_connected_unless_forced():
    spec = specs()["h1"]
    t = copy.deepcopy(TOPO)
    t["networks"]["lan"]["docker"] = {"range_len": 26}
    t["networks"]["lan"]["mtu"] = 1400
    moved = specs(t)["h1"]
    have = _have(spec, containers=[{"id": "c1", "name": "a1", "ipv4": "10.9.0.130"}])
    first, last, conflicts = _dplan(moved, have)
    assert first == last == []
    assert conflicts == ["networks.lan.docker: Docker network lan must be re-created (Docker cannot change "
                         "ip_range 10.9.0.128/25 -> 10.9.0.192/26, mtu 1500 -> 1400) but containers a1 are connected "
                         "to it; run again with force (netstitch apply --docker-force) to disconnect them and connect "
                         "them again"]
    first, last, conflicts = _dplan(moved, have, force=True)
    assert conflicts == [] and [a["op"] for a in last] == ["docker_net_recreate"]
    assert last[0]["reconnect"] == [{"id": "c1", "name": "a1", "ipv4": "10.9.0.130", "ipv6": None}]
    assert "containers connected again: a1 (10.9.0.130)" in last[0]["text"]
    # without containers, no force is needed
    assert _dplan(moved, _have(spec))[1][0]["op"] == "docker_net_recreate"
    # a new subnet: the old address does not fit, Docker picks a new one
    t["networks"]["lan"]["subnet"] = "10.8.0.0/24"
    last = _dplan(specs(t)["h1"], have, force=True)[1]
    assert last[0]["reconnect"][0]["ipv4"] is None and "a1 (a new address)" in last[0]["text"]


def test_docker_networks_removed_only_when_netstitch_made_them():
    spec = specs()["h1"]
    have = _have(spec)
    have["other"] = dict(have["lan"], labels={"team": "x"})
    have["lan"]["containers"] = [{"id": "c1", "name": "a1", "ipv4": "10.9.0.130"}]
    t = copy.deepcopy(TOPO)
    del t["networks"]["lan"]["docker"]
    plain = specs(t)["h1"]
    first, last, conflicts = _dplan(plain, have)
    assert first == [] and len(conflicts) == 1 and "Docker network lan is no longer offered on host h1 but " \
        "containers a1 are connected" in conflicts[0]
    first, last, conflicts = _dplan(plain, have, force=True)
    assert [(a["op"], a["name"], [c["name"] for c in a["disconnect"]]) for a in first] == [
        ("docker_net_remove", "lan", ["a1"])]
    # a network of that name that netstitch did not make is someone else's
    foreign = _have(spec)
    foreign["lan"]["labels"] = {}
    assert _dplan(spec, foreign)[2] == ["networks.lan.docker: Docker network lan exists on host h1 and "
                                        "netstitch did not create it"]


def test_engine_orders_docker_actions_around_the_kernel_actions():
    spec = specs()["h1"]
    t = copy.deepcopy(TOPO)
    del t["networks"]["fab"]["docker"]
    spec = dict(spec)
    have = _have(spec)
    t_spec = specs(t)["h1"]
    current = {"links": {}, "netns": {}, "named_netns": [], "sysctl": {}, "routes": {},
               "docker_networks": dict(have, fabnet=dict(have["fabnet"]))}
    del current["docker_networks"]["lan"]
    out = engine.compute(t_spec, current, hstate())
    ops = [a["op"] for a in out.actions]
    assert ops[0] == "docker_net_remove" and ops[-1] == "docker_net_create"
    assert ops.index("bridge_add") < ops.index("docker_net_create")


def test_docker_addresses_are_reserved_from_netstitch():
    spec = specs()["h1"]
    have = _have(spec, containers=[{"id": "c1", "name": "a1", "ipv4": "10.9.0.2"},
                                   {"id": "c2", "name": "a2", "ipv4": "10.9.0.3"}])
    out = dockerplan.reserved_by_docker(spec, have, {"lan": {"web/eth2": "10.9.0.3"}})
    assert out["lan"] == ["10.9.0.2"]      # 10.9.0.3 is netstitch's lease: netstitch keeps it
    assert {n["name"]: n for n in spec["networks"]}["lan"]["reserved"] == []    # the spec itself is not changed


def test_a_bridge_docker_made_for_netstitchs_network_is_adopted():
    spec = specs()["h1"]
    links = {"nsbr-lan": {"kind": "bridge", "alias": None}, "nsbr-fab": {"kind": "bridge", "alias": "netstitch x"},
             "docker0": {"kind": "bridge", "alias": None}}
    assert dockerplan.adoptable_bridges(spec, _have(spec), links) == ["nsbr-lan"]
    assert dockerplan.adoptable_bridges(spec, _have(spec, labels={}), links) == []


# -- the watcher ------------------------------------------------------------------------------------------------------------
def test_watcher_matches_containers_by_name_or_id():
    spec = specs()["h1"]
    assert watch._named(spec, {"id": "ffff", "name": "web"}) == "web"
    assert watch._named(spec, {"id": "0123456789abcdef", "name": "whatever"}) == "db"
    assert watch._named(spec, {"id": "99", "name": "n2"}) is None
    assert watch._named(None, {"id": "99", "name": "web"}) is None


def test_engine_adopts_instead_of_reporting_a_conflict():
    spec = dict(specs()["h1"], containers=[])
    bridge = {"index": 5, "kind": "bridge", "alias": None, "master": None, "mtu": 1500, "up": True,
              "mac": "02:42:00:00:00:01", "peer_index": None, "addresses": ["10.9.0.1/24"]}
    current = {"links": {"nsbr-lan": bridge}, "netns": {}, "named_netns": [], "sysctl": {}, "routes": {},
               "docker_networks": _have(spec)}
    out = engine.compute(spec, current, hstate())
    assert out.conflicts == []
    assert [a["changes"] for a in out.actions if a["op"] == "link_set" and a["name"] == "nsbr-lan"][0] == {
        "mac": {n["name"]: n for n in spec["networks"]}["lan"]["bridge_mac"], "alias": "netstitch bridge lan"}
    # without netstitch's Docker network bound to it, the same bridge is someone else's
    current["docker_networks"] = {}
    assert any("interface nsbr-lan exists on host h1 and netstitch did not create it" in c
               for c in engine.compute(spec, current, hstate()).conflicts)


def test_a_stopped_containers_lingering_veth_is_left_to_the_kernel():
    spec = copy.deepcopy(specs()["h1"])
    for c in spec["containers"]:
        c["netns"], c["absent"] = None, True
    web = [c for c in spec["containers"] if c["name"] == "web"][0]
    host_end = web["interfaces"][1]["host_ifname"]
    veth = {"index": 9, "kind": "veth", "alias": "netstitch veth web/eth2 lan", "master": "nsbr-lan", "mtu": 1500,
            "up": True, "mac": "02:00:00:00:00:09", "peer_index": 3, "addresses": []}
    current = {"links": {host_end: veth}, "netns": {}, "named_netns": [], "sysctl": {}, "routes": {}}
    out = engine.compute(spec, current, hstate())
    assert out.conflicts == [] and not [a for a in out.actions if a.get("name") == host_end]
    assert out.desired["endpoints"] == {}
    # leases of absent containers are kept (they come back with the same addresses)
    assert set(out.leases["lan"]) == {"web/eth2", "db/data0"} and set(out.leases["fab"]) == {"web/eth1"}


# -- driver netstitch: the Docker network is netstitch's plugin's ------------------------------------------------------
def _plugin_topo(**docker):
    t = copy.deepcopy(TOPO)
    t["networks"]["fab"]["docker"] = dict({"name": "fabnet", "hosts": ["h1"], "driver": "netstitch"}, **docker)
    del t["networks"]["lan"]["docker"]
    return t


def _inspect(name, want, driver=None, options=None, subnet=None, containers=None):
    """A `docker network inspect` document of a plugin network as Docker keeps it."""
    return {"Id": "id-" + name, "Name": name, "Driver": driver or want["driver"], "Labels": dict(want["labels"]),
            "Options": options if options is not None else {"netstitch.network": want["network"]},
            "IPAM": {"Driver": want["ipam_driver"],
                     "Config": [{"Subnet": subnet or want["subnet"], "Gateway": want["gateway"]}]},
            "Containers": containers or {}}


def test_plugin_driver_spec_plan_rerun_recreate_and_remove():
    spec = specs(_plugin_topo())["h1"]
    fab = {n["name"]: n for n in spec["networks"]}["fab"]
    # the whole pool is the plugin's to lease from: no range left to Docker
    assert fab["docker"] == {"name": "fabnet", "driver": "netstitch", "plugin": "netstitch"}
    first, last, conflicts = _dplan(spec, {})
    assert first == [] and conflicts == []
    want = last[0]["want"]
    assert (last[0]["op"], last[0]["name"]) == ("docker_net_create", "fabnet")
    assert want == {"network": "fab", "driver": "netstitch", "ipam_driver": "netstitch", "subnet": "10.73.0.0/24",
                    "gateway": "10.73.0.1", "ip_range": None, "netstitch_network": "fab",
                    "labels": {"netstitch.host": "h1", "netstitch.network": "fab"}}
    assert dockerplan.options(want) == {"netstitch.network": "fab"}
    assert "with netstitch's plugin netstitch (subnet 10.73.0.0/24, gateway 10.73.0.1, network fab)" in last[0]["text"]
    have = {n: dockerplan.view(_inspect(n, w)) for n, w in dockerplan.desired(spec).items()}
    assert _dplan(spec, have) == ([], [], [])       # a rerun: nothing
    # a plugin of another name: re-created (Docker cannot change a network's driver)
    t = _plugin_topo()
    t["hosts"]["h1"]["docker_plugin"] = "nsplug"
    other = specs(t)["h1"]
    last = _dplan(other, have)[1]
    assert [a["op"] for a in last] == ["docker_net_recreate"] and "driver netstitch -> nsplug" in last[0]["text"]
    # another subnet, with a container connected: refused unless forced, like the bridge driver's networks
    have["fabnet"] = dockerplan.view(_inspect("fabnet", dockerplan.desired(spec)["fabnet"], subnet="10.74.0.0/24",
                                              containers={"c" * 64: {"Name": "a1", "IPv4Address": "10.74.0.20/24"}}))
    first, last, conflicts = _dplan(spec, have)
    assert last == [] and "must be re-created (Docker cannot change subnet 10.74.0.0/24 -> 10.73.0.0/24)" \
        in conflicts[0]
    assert _dplan(spec, have, force=True)[1][0]["reconnect"] == [{"id": "c" * 64, "name": "a1", "ipv4": None,
                                                                  "ipv6": None}]
    # dropped from the topology: removed (it is netstitch's, by label)
    t = _plugin_topo()
    del t["networks"]["fab"]["docker"]
    have = {n: dockerplan.view(_inspect(n, w)) for n, w in dockerplan.desired(spec).items()}
    first, last, conflicts = _dplan(specs(t)["h1"], have)
    assert [(a["op"], a["name"]) for a in first] == [("docker_net_remove", "fabnet")] and conflicts == []
    # never a bridge to adopt for it
    assert dockerplan.adoptable_bridges(spec, have, {"nsbr-fab": {"kind": "bridge", "alias": None}}) == []


def test_plugin_driver_leaves_the_pool_to_netstitchs_leases():
    t = {"hosts": {"h1": {}}, "networks": {"a": {"subnet": "10.1.0.0/28", "docker": {"driver": "netstitch"}}},
         "containers": {"c%d" % i: {"host": "h1", "interfaces": [{"network": "a"}]} for i in range(13)}}
    spec = specs(t)["h1"]      # 16 addresses, network, gateway, broadcast: 13 for containers, none kept for Docker
    got, _rest = ipam.allocate(spec, {"links": {}, "netns": {}}, {})
    assert len(set(got.values())) == 13


@pytest.mark.parametrize("docker, path, text", [
    ({"driver": "netstitch", "range_len": 26}, "networks.lan.docker.range_len", "no range left to Docker"),
    ({"driver": "macvlan"}, "networks.lan.docker.driver", ""),
    ({"driver": "netstitch", "plugin": "nsplug"}, "networks.lan.docker", "plugin"),
])
def test_plugin_driver_validation_names_the_path(docker, path, text):
    t = copy.deepcopy(TOPO)
    t["networks"]["lan"]["docker"] = docker
    with pytest.raises(TopologyError) as e:
        validate.load(t)
    assert path in str(e.value) and text in str(e.value)


def test_plugin_name_is_the_hosts():
    t = _plugin_topo()
    t["hosts"]["h1"]["docker_plugin"] = "bad name!"
    with pytest.raises(TopologyError) as e:
        validate.load(t)
    assert "hosts.h1.docker_plugin" in str(e.value)


class _FakeEngine(object):
    def __init__(self, **containers):
        self.containers = containers

    def container(self, ref):
        return self.containers.get(ref)


def test_watcher_reacts_to_a_network_change_of_a_running_container_after_its_start():
    """Docker edits a container's hosts file when it connects or disconnects it (the names netstitch keeps there):
    such an event counts for a container of the spec that runs and started before it; the connections Docker makes
    while starting a container come before its start event, which covers them."""
    spec = specs()["h1"]
    started = "2026-12-01T19:40:01.500000000Z"
    at = watch._nanoseconds(started)
    assert at == 1796154001 * 10 ** 9 + 500000000
    eng = _FakeEngine(**{"c0ffee": {"name": "web", "running": True, "started_at": started},
                         "beef": {"name": "other", "running": True, "started_at": started},
                         "dead": {"name": "web", "running": False, "started_at": started}})
    ev = {"id": "c0ffee", "name": None, "time_nano": at + 10 ** 9, "action": "connect"}
    assert watch._about(spec, ev, eng) == "web"
    assert watch._about(spec, dict(ev, action="disconnect"), eng) == "web"
    assert watch._about(spec, dict(ev, time_nano=at - 1), eng) is None          # part of its start
    assert watch._about(spec, dict(ev, id="dead"), eng) is None                 # not running: its start will come
    assert watch._about(spec, dict(ev, id="beef"), eng) is None                 # not the spec's
    assert watch._about(spec, dict(ev, id="gone"), eng) is None
    assert watch._about(spec, {"id": "ffff", "name": "web", "time_nano": 1, "action": "start"}, eng) == "web"
    assert watch._nanoseconds(None) is None and watch._nanoseconds("0001-01-01T00:00:00Z") is not None


# -- IPv6 (issue 15): a dual-stack network offered to Docker's bridge driver --------------------------------------------
def _dual_topo():
    t = copy.deepcopy(TOPO)
    t["networks"]["lan"]["subnet6"] = "2001:db8:9::/64"
    t["networks"]["fab"]["subnet6"] = "2001:db8:73::/64"
    return t


def test_a_dual_stack_network_gives_docker_an_ipv6_range_without_reserved_addresses():
    """Docker's IPv6 range is a quarter of the host's IPv6 pool with no reserved address in it (Docker does not
    know them): the third, else the second (a /120: its upper half is the RFC 2526 anycast block)."""
    spec = specs(_dual_topo())["h1"]
    nets = {n["name"]: n for n in spec["networks"]}
    assert nets["lan"]["docker"] == {"name": "lan", "ip_range": "10.9.0.128/25", "ip_range6": "2001:db8:9:0:8000::/66"}
    assert nets["fab"]["docker"]["ip_range6"] == "2001:db8:73:0:1800::/70"     # h1's /68 slice (the 2nd of 16)
    t = _dual_topo()
    t["networks"]["lan"]["subnet6"] = "2001:db8:9::/120"
    assert {n["name"]: n for n in specs(t)["h1"]["networks"]}["lan"]["docker"]["ip_range6"] == "2001:db8:9::40/122"
    want = dockerplan.desired(spec)["lan"]
    assert (want["ipv6"], want["subnet6"], want["gateway6"], want["ip_range6"]) == (
        True, "2001:db8:9::/64", "2001:db8:9::1", "2001:db8:9:0:8000::/66")


def test_ipv6_validation_of_docker_offers():
    t = _dual_topo()
    t["containers"]["db"]["interfaces"][0]["ip6"] = "2001:db8:9:0:8000::5"     # in Docker's IPv6 range
    with pytest.raises(TopologyError) as e:
        specs(t)
    text = str(e.value)
    assert "containers.db.interfaces[0].ip6: 2001:db8:9:0:8000::5 is in host h1's Docker IPv6 range " \
           "2001:db8:9:0:8000::/66 of networks.lan" in text, text


def _inspect6(want, subnet6, gateway6, ip_range6, containers=None, enable=True):
    return {"Id": "id-x", "Name": "lan", "Driver": "bridge", "Labels": dict(want["labels"]), "EnableIPv6": enable,
            "Options": dockerplan.options(want),
            "IPAM": {"Driver": "default", "Config": [
                {"Subnet": subnet6, "Gateway": gateway6, "IPRange": ip_range6},
                {"Subnet": want["subnet"], "Gateway": want["gateway"], "IPRange": want["ip_range"]}]},
            "Containers": containers or {}}


def test_a_dual_stack_docker_network_is_compared_parsed_and_never_recreated_for_a_spelling():
    """The field's idempotence bug: Docker keeps the IPv6 text it was given (and may order the configs either way);
    netstitch parses it, so another spelling of the same subnet, gateway and range is no change."""
    spec = specs(_dual_topo())["h1"]
    want = dockerplan.desired(spec)["lan"]
    have = dict(_have(spec))
    have["lan"] = dockerplan.view(_inspect6(want, "2001:0DB8:9:0::/64", "2001:db8:9:0:0:0:0:1",
                                            "2001:db8:9:0:8000:0:0:0/66"))
    assert (have["lan"]["configs"], have["lan"]["configs6"]) == (1, 1)
    assert _dplan(spec, have) == ([], [], [])
    # IPv6 turned on for a network Docker has without it: re-created, refused while containers are connected
    v4 = specs()["h1"]
    have4 = _have(v4, containers=[{"id": "c1", "name": "a1", "ipv4": "10.9.0.130", "ipv6": None}])
    first, last, conflicts = _dplan(spec, have4)
    assert "Docker cannot change ipv6 False -> True, subnet6 None -> 2001:db8:9::/64" in conflicts[1], conflicts
    last = _dplan(spec, have4, force=True)[1]
    assert [a["op"] for a in last] == ["docker_net_recreate"] * 2      # fab too (it got a subnet6)
    # a container's IPv6 address is kept when it still fits
    have["lan"] = dockerplan.view(_inspect6(want, "2001:db8:9::/64", "2001:db8:9::1", "2001:db8:9::/66", containers={
        "c" * 64: {"Name": "a1", "IPv4Address": "10.9.0.130/24", "IPv6Address": "2001:DB8:9::8/64"}}))
    last = _dplan(spec, have, force=True)[1]
    assert last[0]["reconnect"] == [{"id": "c" * 64, "name": "a1", "ipv4": "10.9.0.130", "ipv6": "2001:db8:9::8"}]
    assert "ip_range6 2001:db8:9::/66 -> 2001:db8:9:0:8000::/66" in last[0]["text"]
    assert "a1 (10.9.0.130, 2001:db8:9::8)" in last[0]["text"]


def test_ipv6_addresses_docker_holds_are_reserved_and_its_range_is_never_allocated():
    spec = specs(_dual_topo())["h1"]
    want = dockerplan.desired(spec)["lan"]
    have = {"lan": dockerplan.view(_inspect6(want, "2001:db8:9::/64", "2001:db8:9::1", "2001:db8:9:0:8000::/66",
                                             containers={"a" * 64: {"Name": "x", "IPv6Address": "2001:db8:9::2/64"},
                                                         "b" * 64: {"Name": "y", "IPv6Address": "2001:db8:9::3/64"}}))}
    reserved = dockerplan.reserved_by_docker6(spec, have, {"lan": {"db/data0/6": "2001:db8:9::3"}})
    assert reserved == {"lan": [ipaddress.IPv6Address("2001:db8:9::2")]}     # ::3 is netstitch's lease
    got, _leases = ipam.allocate6(spec, {"links": {}}, {}, reserved)
    assert got[("db", "data0")] == ipaddress.IPv6Address("2001:db8:9::3")    # ::2 is Docker's container's
    assert all(a not in ipaddress.IPv6Network("2001:db8:9:0:8000::/66") for a in got.values())


def test_the_plugins_ipv6_leases_are_reserved_as_ipv6_and_its_ipv4_ones_as_ipv4():
    """The apply keeps off what netstitch's plugin leased, each family from its own leases (a past bug: IPv6 leases
    read as IPv4 ones)."""
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}},
            "networks": {"lan": {"subnet": "10.9.0.0/24", "subnet6": "2001:db8:9::/64",
                                 "docker": {"driver": "netstitch"}}},
            "containers": {"n": {"host": "h1", "interfaces": [{"network": "lan"}]}}}
    spec = specs(topo)["h1"]
    plugin = {"networks": {}, "endpoints": {}, "pools": {},
              "leases": {"lan": {"10.9.0.2": {"endpoint": None, "since": 1.0}}},
              "leases6": {"lan": {"2001:db8:9::2": {"endpoint": None, "since": 1.0}}}}
    res = planner.compute(spec, {"links": {}, "docker_plugin": plugin}, {})
    assert res.leases["lan"] == {"n/eth0": "10.9.0.3", "n/eth0/6": "2001:db8:9::3"}


def test_an_ipv6_pool_too_small_to_share_with_docker_is_refused_with_its_path():
    """A /120 subnet6 over 16 slices: each host's IPv6 slice is a /124, and the upper half of a /120 is its reserved
    anycast block, so a host whose slice lies there has no quarter Docker could hand out."""
    t = {"hosts": {"h%d" % i: {"underlay": "192.0.2.%d/24" % i} for i in range(1, 11)},
         "networks": {"ov": {"subnet": "10.9.0.0/24", "subnet6": "2001:db8:9::/120",
                             "overlay": {"type": "vxlan", "vni": 9, "slice_len": 28}, "docker": True,
                             "hosts": ["h%d" % i for i in range(1, 11)]}},
         "containers": {}}
    with pytest.raises(TopologyError) as e:
        specs(t)
    assert "networks.ov.docker: host h10's IPv6 pool 2001:db8:9::a0/124 is too small to share with Docker" \
        in str(e.value), str(e.value)
    t["hosts"] = {"h%d" % i: {"underlay": "192.0.2.%d/24" % i} for i in range(1, 8)}     # slices below the anycast block: fine
    t["networks"]["ov"]["hosts"] = sorted(t["hosts"])
    assert {n["name"]: n for n in specs(t)["h1"]["networks"]}["ov"]["docker"]["ip_range6"] == "2001:db8:9::18/126"
