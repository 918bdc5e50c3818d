"""Service chains (issue 16, item 2) on the controller side and in the pure core: what the host specs carry, when a
host needs the other hosts' facts, and how the plan words a chain."""

import copy
import types

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError

TOPO = {
    "version": 1,
    "hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
    "networks": {"front": {"subnet": "10.71.0.0/24", "overlay": {"type": "vxlan", "vni": 71}},
                 "mid": {"subnet": "10.72.0.0/24"},
                 "back": {"subnet": "10.73.0.0/24"}},
    "containers": {
        "web": {"host": "h1", "interfaces": [{"network": "front"}]},
        "fw": {"host": "h2", "interfaces": [{"network": "front"}, {"network": "mid", "default_route": False}]},
        "lb": {"host": "h2", "interfaces": [{"network": "mid"}, {"network": "back", "default_route": False}]},
        "db": {"host": "h2", "interfaces": [{"network": "back", "ip": "10.73.0.20"}]},
    },
    "chains": {"web-to-db": {"from": "front", "to": "back", "services": ["fw", "lb"]}},
}


def _specs(topo=None):
    return hostspec.host_specs(validate.load(copy.deepcopy(topo or TOPO), debug=True))


def test_each_host_gets_its_own_routes_and_services():
    specs = _specs()
    (c1,) = specs["h1"]["chains"]
    assert c1["forward"] == [] and c1["services"] == ["fw", "lb"]
    assert [(r["container"], r["ifname"], r["dst"], r["via"]["container"], r["via"]["ifname"]) for r in c1["routes"]] \
        == [("web", "eth0", "10.73.0.0/24", "fw", "eth0")]
    (c2,) = specs["h2"]["chains"]
    assert c2["forward"] == ["fw", "lb"]
    assert sorted((r["container"], r["ifname"], r["dst"], r["via"]["container"]) for r in c2["routes"]) == [
        ("db", "eth0", "10.71.0.0/24", "lb"), ("fw", "eth1", "10.73.0.0/24", "lb"),
        ("lb", "eth0", "10.71.0.0/24", "fw")]
    for spec in specs.values():
        assert hostspec.spec_problems(spec) == []


def test_a_next_hop_on_another_host_needs_its_facts():
    specs = _specs()
    assert hostspec.needs_prepare(specs["h1"])         # fw's address is h2's allocation
    assert not hostspec.needs_prepare(specs["h2"])


def test_a_topology_without_chains_compiles_as_before():
    topo = copy.deepcopy(TOPO)
    del topo["chains"]
    assert all("chains" not in s for s in _specs(topo).values())


@pytest.mark.parametrize("change, path, reason", [
    (lambda t: t["chains"]["web-to-db"].update(to="outside"), "chains.web-to-db.to",
     "a chain to the outside (out of the fabric) is not supported yet: name a network"),
    (lambda t: [t["containers"]["web"].update(host="h2"), t["networks"]["front"].pop("overlay"),
                t["containers"]["fw"].update(host="h1")], "chains.web-to-db",
     "container web (host h2) reaches fw (host h1) on network front, which has no overlay spanning hosts: a chain's "
     "hop is one layer-2 segment"),
    (lambda t: t["containers"]["lb"]["interfaces"].pop(1), "chains.web-to-db.services[1]",
     "container lb, the last service, has no interface on network back (the chain's to)"),
])
def test_refused(change, path, reason):
    topo = copy.deepcopy(TOPO)
    change(topo)
    with pytest.raises(TopologyError) as e:
        validate.load(topo, debug=True)
    assert (path, reason) in [(p.path, p.reason) for p in e.value.problems], e.value.problems


def test_the_plan_words_the_chain():
    spec = _specs()["h2"]
    current = {"links": {}, "netns": {}, "named_netns": [], "owned_netns": [], "routes": {}, "sysctl": {}}
    hstate = types.SimpleNamespace(leases={}, owned_netns=set(), spec=None, peers=None, state_dir=None)
    res = engine.compute(spec, current, hstate, None, False)
    texts = [a["text"] for a in res.actions]
    assert "switch on forwarding in fw (service of chain web-to-db)" in texts
    assert "switch on forwarding in lb (service of chain web-to-db)" in texts
    assert [t for t in texts if t.startswith("route 10.71.0.0/24 via ") and t.endswith(" in db (chain web-to-db)")]
    changes = {c["name"]: c for c in res.changes if c["kind"] == "chain"}
    assert changes["service fw of chain web-to-db"]["after"] == ["forwarding on"]
    view = engine.view(desired=res.desired)
    assert view["chains"]["web-to-db"]["services"] == ["fw", "lb"]
    assert len(view["chains"]["web-to-db"]["routes"]) == 3
    # forwarding already on: nothing to do for it
    for ns in ("fw", "lb"):
        current["netns"][ns] = {"links": {}, "default_route": None, "routes": [], "neighbours": [], "ip_forward": "1"}
    res = engine.compute(spec, current, hstate, None, False)
    assert not [a for a in res.actions if a["op"] == "sysctl_set" and a.get("ns")]


def test_the_probe_expects_what_a_chain_carries():
    """The probe's expectations: the client and the server reach each other through the chain (and the client
    reaches the services' far addresses); a container of the middle network stays out of reach."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import reachability
    topo = copy.deepcopy(TOPO)
    topo["containers"]["bystander"] = {"host": "h2", "interfaces": [{"network": "mid"}]}
    specs = _specs(topo)
    addr = {("web", "eth0"): "10.71.0.2", ("fw", "eth0"): "10.71.0.3", ("fw", "eth1"): "10.72.0.2",
            ("lb", "eth0"): "10.72.0.3", ("lb", "eth1"): "10.73.0.2", ("db", "eth0"): "10.73.0.20",
            ("bystander", "eth0"): "10.72.0.4"}
    endpoints = {h: [{"container": c, "interface": i, "address": a + "/24"} for (c, i), a in addr.items()
                     if topo["containers"][c]["host"] == h] for h in ("h1", "h2")}
    checks, _skipped = reachability.expected_checks(specs, endpoints)
    got = {(c["from_container"], c["to"]): (c["kind"], c["expect"]) for c in checks}
    assert got[("web", "10.73.0.20")] == ("chain", True)
    assert got[("db", "10.71.0.2")] == ("chain", True)
    assert got[("web", "10.73.0.2")] == ("chain", True)        # lb's address on back: a service of the chain
    assert got[("web", "10.72.0.4")] == ("other-network", False)
    assert got[("bystander", "10.73.0.20")] == ("other-network", False)
