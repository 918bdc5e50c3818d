"""Property-based fuzzing of validate + compile (hypothesis).

Rich valid topologies are mutated -- values replaced by odd ones (wrong types, floats where integers belong, huge and
negative numbers, NaN, control characters, kernel-refused names, deep and unhashable values), keys deleted or added,
references swapped to other names, elements duplicated -- and fed to ``controller.validate.load`` (the precheck, the
JSON Schema and every section's checks: check_hosts, check_networks, placement, check_containers, check_links) and
``controller.hostspec.host_specs``. The one property: the topology is valid and compiles to JSON-able specs that the
host side accepts (``hostspec.spec_problems``: version and the spec's own schema), or it is rejected with a
TopologyError whose problems each have a path (a string) and a reason, and whose message has exactly one line per
problem with no raw control characters. Anything else (any other exception) fails.

Deterministic (``derandomize``): the same examples every run, so the suite never flakes; NETSTITCH_FUZZ_SEED=<n>
explores other ones, NETSTITCH_FUZZ_EXAMPLES=<n> sets the number of examples per test (default 2,600; four
tests: 10,400 cases in all; the run time is bounded by that count, not by a clock: about 60 s for the four on
this 2-core machine at load average 4, 8-22 s each). Crashers found are kept under tests/unit/fuzz_regressions/
and replayed first.
"""

import copy
import glob
import json
import os
import re

import pytest
import yaml

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError

from .conftest import BASE, HERE, read_yaml

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

EXAMPLES = int(os.environ.get("NETSTITCH_FUZZ_EXAMPLES", "2600"))
SEED = os.environ.get("NETSTITCH_FUZZ_SEED")
TOP = os.path.dirname(os.path.dirname(HERE))
REGRESSIONS = os.path.join(HERE, "fuzz_regressions")


def _readme_tour():
    with open(os.path.join(TOP, "README.md")) as f:
        m = re.search(r"## A tour of the topology\n\n```yaml\n(.*?)```", f.read(), re.S)
    return yaml.safe_load(m.group(1))


# tinc, Docker containers and networks offered to Docker, host-address ports, links to a network, slices by hand
TINC_DOCKER = {
    "version": 1,
    "hosts": {"a": {"underlay": "192.0.2.1/24", "docker_host": "unix:///run/d.sock"},
              "b": {"underlay": "192.0.2.2/24", "underlay_mtu": 9000}, "c": {"underlay": "192.0.2.3"}},
    "networks": {
        "sec": {"subnet": "10.50.0.0/22", "overlay": {"type": "tinc", "port": 655, "device": "tnc0"},
                "isolated": True},
        "dk": {"subnet": "10.60.0.0/24", "docker": {"name": "dknet", "range_len": 28, "hosts": ["a"]},
               "gateway": "10.60.0.254"},
        "rt": {"subnet": "10.70.0.0/20", "overlay": {"type": "routed", "slice_len": 24,
                                                     "slices": {"a": "10.70.1.0/24", "b": "10.70.2.0/24"}}},
        "vx": {"subnet": "10.80.0.0/24", "overlay": {"type": "vxlan", "vni": 4242, "port": 4790, "learning": True},
               "mtu": 1400, "hosts": ["a", "b", "c"]},
    },
    "containers": {
        "web": {"host": "a", "kind": "docker", "docker": "web-1",
                "interfaces": [{"network": "dk", "ip": "10.60.0.10"}, {"network": "sec", "name": "tun1"}],
                "publish": [{"host_port": "8000-8002", "container_port": "9000-9002", "protocol": "udp",
                             "host_ip": "192.0.2.1", "network": "dk"}, {"host_port": 443}]},
        "db": {"host": "b", "netns": "dbns", "interfaces": [{"network": "sec", "ip": "10.50.0.20"},
                                                            {"network": "rt", "default_route": True},
                                                            {"network": "vx", "mac": "02:aa:00:00:00:01"}]},
        "cache": {"host": "c", "interfaces": [{"network": "vx", "host_name": "vcache0"}]},
        "job": {"host": "a", "interfaces": [{"network": "rt"}, {"network": "vx", "default_route": False}]},
    },
    "links": [{"client": "web", "server": "db", "ports": [5432, "6000-6001"], "protocol": "tcp", "name": "pg"},
              {"client": "db", "network": "sec", "protocol": "any"}],
}

BASES = {"base": BASE, "rich": read_yaml(os.path.join(HERE, "rich_topology.yml")), "readme": _readme_tour(),
         "tinc_docker": TINC_DOCKER}

ODD_STRINGS = ["", " ", "all", "default", "bonding_masters", ".", "..", "lo", "eth0", "a/b", "a:b", "a b", "x" * 16,
               "x" * 64, "x" * 300, "\x00", "\x1b[31mred", "\u202eevil", "a\nb  - forged: line", "\t", "é", "10.0.0.1",
               "10.10.0.5", "10.10.0.300", "10.0.0.0/8", "10.10.0.0/24", "10.10.0.0/33", "192.0.2.1/24",
               "192.0.2.1", "0.0.0.0/0", "255.255.255.255", "::1", "2001:db8::/64", "8000-8010", "1-65535", "0-1",
               "9-8", "02:00:00:00:00:01", "03:00:00:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff",
               "zz:zz:zz:zz:zz:zz", "vxlan", "routed", "tinc", "docker", "netns", "tcp", "udp", "any", "nsbr-front",
               "true", "1", "1e3", "-1", "None"]
ODD_NUMBERS = [0, -1, 1, 2, 15, 16, 24, 30, 31, 32, 67, 68, 1280, 1400, 1500, 9000, 65535, 65536, 4095, 4789,
               2 ** 24 - 1, 2 ** 24, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63, 10 ** 30, 100.0, 1400.0, 26.0, 1.5, -0.0,
               float("nan"), float("inf"), float("-inf"), 1e300]

scalars = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(ODD_NUMBERS),
    st.integers(min_value=-2 ** 70, max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(["x", "name", "ip", "host", "network", "type", "hosts", "interfaces", "5"]),
                 st.text(max_size=6), st.integers(-3, 3), st.none(), st.booleans())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=8)


def _paths(x, pre=()):
    out = [pre]
    stack = [(x, pre)]
    while stack:
        v, p = stack.pop()
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, sub in items:
            out.append(p + (k,))
            stack.append((sub, p + (k,)))
    return out


def _parent(d, path):
    for k in path[:-1]:
        d = d[k]
    return d


def _names(d):
    out = []
    for section in ("hosts", "networks", "containers"):
        if isinstance(d.get(section), dict):
            out.extend(k for k in d[section] if isinstance(k, str))
    return out or ["x"]


@st.composite
def mutated(draw, base_name=None):
    name = base_name or draw(st.sampled_from(sorted(BASES)))
    d = copy.deepcopy(BASES[name])
    for _step in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(d) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["value", "value", "value", "reference", "delete", "add_key", "duplicate",
                                   "integral_float"]))
        parent = _parent(d, path)
        last = path[-1]
        if op == "value":
            parent[last] = draw(values)
        elif op == "reference":     # another element's name where a name (or anything) was
            parent[last] = draw(st.sampled_from(_names(d)))
        elif op == "integral_float":
            cur = parent[last]
            parent[last] = float(cur) if isinstance(cur, int) and not isinstance(cur, bool) else draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "add_key":
            target = parent[last] if isinstance(parent[last], dict) else parent
            if isinstance(target, dict):
                target[draw(keys)] = draw(values)
            else:
                target.append(draw(values))
        elif op == "duplicate":     # the same element again: under a new name, or appended to its list
            if isinstance(parent, dict):
                parent[draw(st.sampled_from(["copy", "h1", "front", "web", "db", "a", "x"]))] = copy.deepcopy(parent[last])
            else:
                parent.append(copy.deepcopy(parent[last]))
    return d


def check(d):
    """The property: valid and compiles, or rejected with path-named problems, one per line; nothing else."""
    try:
        topo = validate.load(d, debug=True)
    except TopologyError as e:
        assert e.problems
        for p in e.problems:
            assert isinstance(p.path, str) and isinstance(p.reason, str) and p.reason, p
        text = str(e)
        lines = text.split("\n")
        assert len(lines) == len(e.problems) + 1, text
        assert all(line.startswith("  - ") for line in lines[1:]), text
        assert text.isprintable() or all(line.isprintable() for line in lines), text
        assert len(text) <= 1000 * (len(e.problems) + 1)
        return "invalid"
    specs = comp.host_specs(topo)
    json.dumps(specs, allow_nan=False)
    for host, spec in specs.items():    # what the host side (apply/prepare modules, engine) will accept
        assert spec["host"] == host and comp.spec_problems(spec) == [], (host, comp.spec_problems(spec))
        comp.needs_prepare(spec)
    return "valid"


def _settings(n):
    kw = dict(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(hypothesis.HealthCheck), print_blob=True)
    if SEED is None:
        kw["derandomize"] = True
    return hypothesis.settings(**kw)


def _seeded(fn):
    return hypothesis.seed(int(SEED))(fn) if SEED is not None else fn


def test_the_bases_are_valid():
    for name, d in BASES.items():
        assert check(copy.deepcopy(d)) == "valid", name


@pytest.mark.parametrize("base_name", sorted(BASES))
def test_mutations_are_valid_or_rejected_by_path(base_name):
    seen = {"valid": 0, "invalid": 0}

    @_seeded
    @_settings(EXAMPLES)
    @hypothesis.given(mutated(base_name))
    def run(d):
        seen[check(d)] += 1

    run()
    assert seen["invalid"] > 0 and sum(seen.values()) >= min(EXAMPLES, 100)


def _load_regressions():
    out = []
    for path in sorted(glob.glob(os.path.join(REGRESSIONS, "*.yml"))):
        with open(path) as f:
            out.append(pytest.param(yaml.safe_load(f), id=os.path.basename(path)[:-4]))
    return out


@pytest.mark.parametrize("case", _load_regressions())
def test_found_crashers_stay_fixed(case):
    """Inputs that once crashed (found by this fuzzing or by hand), kept with what they must give."""
    result = check(copy.deepcopy(case["topology"]))
    assert result == case["expect"]
    if case.get("problems"):
        with pytest.raises(TopologyError) as ei:
            validate.load(copy.deepcopy(case["topology"]), debug=True)
        got = [str(p) for p in ei.value.problems]
        for want in case["problems"]:
            assert any(want in g for g in got), (want, got)
