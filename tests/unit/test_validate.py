"""Topology validation: every malformed topology is rejected with the exact path and reason of every problem, all at
once, and no input (however odd) makes the validator crash instead of reporting.

The table lives in tests/unit/invalid/*.yml: ``expect`` lists [path, reason substring] for every problem the
topology has, no more and no fewer; ``topology`` is the topology.
"""

import copy
import glob
import ipaddress
import os
import random

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import Problem, TopologyError

from .conftest import BASE, HERE, read_yaml

CASES = sorted(glob.glob(os.path.join(HERE, "invalid", "*.yml")))


def problems_of(data):
    with pytest.raises(TopologyError) as ei:
        validate.load(data)
    probs = ei.value.problems
    assert probs, "TopologyError without problems"
    assert all(isinstance(p, Problem) and isinstance(p.path, str) and isinstance(p.reason, str) for p in probs)
    return probs


def check_expected(probs, expect):
    """Every expected (path, reason substring) matches one problem, and every problem is expected."""
    rest = list(probs)
    missing = []
    for path, reason in expect:
        hit = [p for p in rest if p.path == path and reason in p.reason]
        if hit:
            rest.remove(hit[0])
        else:
            missing.append((path, reason))
    assert not missing and not rest, "\nmissing: %r\nunexpected: %r\nall: %r" % (missing, rest, probs)


def test_the_table_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", CASES, ids=[os.path.basename(c)[:-4] for c in CASES])
def test_invalid_topology(path):
    case = read_yaml(path)
    assert set(case) == {"expect", "topology"}, "a case has expect and topology"
    assert case["expect"], "a case expects at least one problem"
    check_expected(problems_of(case["topology"]), [tuple(e) for e in case["expect"]])


def test_multiple_problems_are_reported_together():
    case = read_yaml(os.path.join(HERE, "invalid", "multiple_problems.yml"))
    probs = problems_of(case["topology"])
    assert len(probs) >= 4
    # from every section and from both the schema and the semantic checks
    assert {p.path.split(".")[0] for p in probs} == {"hosts", "networks", "containers"}
    assert any("unknown key" in p.reason for p in probs) and any("overlaps" in p.reason for p in probs)
    # and the error message lists each of them with its path
    text = str(TopologyError(probs))
    assert "%d problems" % len(probs) in text
    for p in probs:
        assert "%s: %s" % (p.path, p.reason) in text


# -- bridges over 1,024 ports (built here: too big for a fixture file) ---------------------------------------------

def _many(n, host="h1", net="big"):
    return {"c%04d" % i: {"host": host, "interfaces": [{"network": net}]} for i in range(n)}


def test_bridge_over_1024_ports():
    topo = {"hosts": {"h1": {}, "h2": {}}, "networks": {"big": {"subnet": "10.0.0.0/16"}},
            "containers": _many(1025)}
    topo["containers"].update({"o%04d" % i: {"host": "h2", "interfaces": [{"network": "big"}]} for i in range(1024)})
    check_expected(problems_of(topo), [("networks.big", "would have 1025 ports on host h1; a Linux bridge takes at most 1024")])


def test_bridge_with_exactly_1024_ports_is_fine():
    topo = {"hosts": {"h1": {}}, "networks": {"big": {"subnet": "10.0.0.0/16"}}, "containers": _many(1024)}
    assert len(validate.load(topo).containers) == 1024


# -- not a mapping ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [None, [], ["hosts"], "hosts: {}", 42, True], ids=repr)
def test_a_topology_that_is_not_a_mapping(data):
    probs = problems_of(data)
    assert len(probs) == 1
    assert probs[0].path == ""
    assert "a topology is a mapping" in probs[0].reason and type(data).__name__ in probs[0].reason
    assert str(probs[0]).startswith("(top level): ")


# -- valid topologies: the controls that show the table fails for the stated reason ---------------------------------

def test_base_topology_is_valid_and_normalised():
    topo = validate.load(copy.deepcopy(BASE))
    assert list(topo.hosts) == ["h1", "h2", "h3"]
    assert topo.hosts["h1"].underlay == ipaddress.IPv4Interface("192.0.2.1/24")
    assert topo.hosts["h3"].underlay is None and topo.hosts["h3"].underlay_mtu == 1500
    front, back, mgmt = topo.networks["front"], topo.networks["back"], topo.networks["mgmt"]
    assert front.bridge == "nsbr-front" and front.gateway == ipaddress.IPv4Address("10.10.0.1")
    assert front.mtu == 1500 and front.masquerade is True and front.internal is False
    assert back.masquerade is False and back.internal is True
    assert mgmt.masquerade is False and mgmt.mtu == 1400
    # a network is carried by the hosts it names plus the hosts of its containers
    assert front.hosts == {"h1"} and back.hosts == {"h1", "h2"} and mgmt.hosts == {"h2"}
    web = topo.containers["web"]
    assert web.netns == "web" and web.kind == "netns"
    assert [(i.name, i.network, i.default_route) for i in web.interfaces] == [("eth0", "front", True), ("eth1", "back", False)]
    assert web.interfaces[0].ip == ipaddress.IPv4Address("10.10.0.10") and web.interfaces[1].ip is None
    assert web.interfaces[0].host_name == model.default_host_ifname("web", "eth0")
    assert len(web.interfaces[0].host_name) <= model.IFNAMSIZ
    # the first interface on an internal network gets no default route
    assert topo.containers["db"].interfaces[0].default_route is False


def test_generated_names_and_macs_are_stable_and_valid():
    a, b = validate.load(copy.deepcopy(BASE)), validate.load(copy.deepcopy(BASE))
    for c in a.containers.values():
        for i, j in zip(c.interfaces, b.containers[c.name].interfaces):
            assert (i.host_name, i.mac) == (j.host_name, j.mac)
            first = int(i.mac[:2], 16)
            assert first & 1 == 0 and first & 2 == 2      # unicast, locally administered
    macs = [i.mac for c in a.containers.values() for i in c.interfaces]
    assert len(set(macs)) == len(macs)


def test_explicit_default_route_takes_the_first_interfaces_implicit_one():
    topo = copy.deepcopy(BASE)
    topo["networks"]["pub"] = {"subnet": "10.40.0.0/24"}
    topo["containers"]["web"]["interfaces"].append({"network": "pub", "default_route": True})
    web = validate.load(topo).containers["web"]
    assert [i.default_route for i in web.interfaces] == [False, False, True]


def test_edges_that_are_valid():
    """The values just inside every limit the table tests from outside."""
    topo = {
        "hosts": {"h1": {"underlay": "192.0.2.1", "underlay_mtu": 65535}, "h2": {"underlay_mtu": 68}},
        "networks": {
            "n30": {"subnet": "10.1.0.0/30", "mtu": 68},           # gateway + one container
            "n15": {"subnet": "10.2.0.0/24", "bridge": "b23456789012345", "gateway": "10.2.0.254", "mtu": 65535},
            "edge": {"subnet": "10.3.0.0/24", "internal": True, "masquerade": False},
        },
        "containers": {
            "c": {"host": "h1", "interfaces": [
                {"network": "n30"},
                {"network": "n15", "name": "i23456789012345", "host_name": "h23456789012345", "ip": "10.2.0.1",
                 "mac": "02:00:00:00:00:01"},
                {"network": "edge"}]},
            # the same fixed address and MAC on another host's segment of a host-local network is fine
            "d": {"host": "h2", "interfaces": [{"network": "n15", "ip": "10.2.0.1", "mac": "02:00:00:00:00:01"}]},
        },
    }
    t = validate.load(topo)
    assert t.containers["c"].interfaces[0].default_route is True
    assert t.networks["n15"].gateway == ipaddress.IPv4Address("10.2.0.254")


# -- nothing crashes: odd values anywhere give problems, never an exception --------------------------------------

ODD = [None, True, 0, -1, 1.5, 10 ** 12, "", " ", "x" * 80, "10.10.0.300", "10.10.0.0/33", "::1", "0.0.0.0/0",
       "10.10.0.5/24", [], [None], {}, {"a": 1}, {None: 1}, {5: "x"}, "02:00:00:00:00:01", "zz:zz:zz:zz:zz:zz",
       "eth0", "h1", "front", "nsbr-front", "..", "lo"]


def _paths(x, pre=()):
    yield pre
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, pre + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, pre + (i,))


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


RICH = read_yaml(os.path.join(HERE, "rich_topology.yml"))


def _mutants(BASE, per_path=len(ODD)):
    """Every position of a base topology set to odd values (all of them, or a fixed sample), deleted, or given an
    extra odd key; then a few combinations."""
    out = []
    rnd = random.Random(1234)
    for path in [p for p in _paths(BASE) if p]:
        for v in ODD if per_path >= len(ODD) else rnd.sample(ODD, per_path):
            d = copy.deepcopy(BASE)
            _set(d, path, copy.deepcopy(v))
            out.append(d)
        d = copy.deepcopy(BASE)
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
        out.append(d)
        if isinstance(parent, dict):
            for key in (5, None, True, "bogus"):
                d = copy.deepcopy(BASE)
                _set(d, path[:-1] + (key,), {"x": 1}) if path[:-1] else d.__setitem__(key, {"x": 1})
                out.append(d)
    for _n in range(200):     # a few combinations of two and three changes
        d = copy.deepcopy(BASE)
        for _n in range(rnd.randint(2, 3)):
            path = rnd.choice([p for p in _paths(d) if p])
            try:
                _set(d, path, copy.deepcopy(rnd.choice(ODD)))
            except (TypeError, IndexError, KeyError):
                pass
        out.append(d)
    return out


def test_the_rich_topology_is_valid():
    topo = validate.load(copy.deepcopy(RICH))
    assert topo.networks["ov"].overlay is not None and topo.containers["web"].publish and topo.links


@pytest.mark.parametrize("base,per_path", [(BASE, len(ODD)), (RICH, 6)], ids=["base", "rich"])
def test_odd_values_never_crash_the_validator(base, per_path):
    mutants = _mutants(base, per_path)
    assert len(mutants) > 900
    outcomes = {"valid": 0, "invalid": 0}
    for d in mutants:
        try:
            comp.host_specs(validate.load(d))
            outcomes["valid"] += 1
        except TopologyError as e:
            assert e.problems and all(isinstance(p.path, str) and p.reason for p in e.problems), d
            outcomes["invalid"] += 1
        except Exception as e:  # noqa: BLE001 - this is the point of the test
            pytest.fail("validate.load crashed with %s: %s on %r" % (type(e).__name__, e, d))
    assert outcomes["invalid"] > outcomes["valid"] > 0
