"""The per-host spec has its own JSON Schema (schemas/hostspec.schema.json) and a format version that the host
side checks: a spec of another version is refused with a message that says so, before anything is read or changed."""

import copy
import glob
import os

import pytest

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, validate
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.topofile import load_file
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

from .conftest import BASE, HERE, read_yaml

TOP = os.path.dirname(os.path.dirname(HERE))


def _specs():
    topos = [copy.deepcopy(BASE), load_file(os.path.join(HERE, "rich_topology.yml")),
             load_file(os.path.join(TOP, "playbooks", "topology.yml"))]
    out = [s for t in topos for s in hostspec.host_specs(validate.load(t)).values()]
    out += [read_yaml(p) for p in sorted(glob.glob(os.path.join(HERE, "golden*", "*", "spec.yml")))]
    return out


def test_every_spec_the_controller_makes_fits_the_schema():
    specs = _specs()
    assert len(specs) > 60
    for spec in specs:
        assert spec["version"] == hostspec.HOST_SPEC_VERSION
        assert hostspec.spec_problems(spec) == [], spec["host"]


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_a_spec_of_another_version_is_refused_saying_so(version):
    spec = copy.deepcopy(_specs()[0])
    if version is None:
        del spec["version"]
    else:
        spec["version"] = version
    problems = hostspec.spec_problems(spec)
    assert len(problems) == 1 and problems[0].startswith("spec.version: this host spec is ")
    assert "applies host specs of version 1 only" in problems[0]
    assert ("version %r" % (version,) if version is not None else "without a version") in problems[0]
    # the host side refuses it before it reads or locks anything (no kernel is needed to see that)
    with pytest.raises(ApplyError, match="applies host specs of version 1 only"):
        engine.apply(spec, state_dir="/nonexistent/netstitch-test")
    with pytest.raises(ApplyError, match="applies host specs of version 1 only"):
        engine.prepare(spec, state_dir="/nonexistent/netstitch-test")


def test_a_malformed_spec_names_each_problem_with_its_path():
    spec = copy.deepcopy(_specs()[0])
    spec["networks"][0]["mtu"] = 10
    spec["containers"][0]["interfaces"][0]["mac"] = "not-a-mac"
    spec["surprise"] = 1
    problems = hostspec.spec_problems(spec)
    assert any(p.startswith("spec.networks[0].mtu: 10 is less than the minimum") for p in problems), problems
    assert any(p.startswith("spec.containers[0].interfaces[0].mac: 'not-a-mac'") for p in problems), problems
    assert any("surprise" in p for p in problems), problems
    assert hostspec.spec_problems(["a list"]) == ["spec: a host spec is a mapping, not list"]


def test_without_a_schema_library_the_host_still_checks_what_it_needs(monkeypatch):
    # a managed host need not have jsonschema: the version and the fields the engine reads are still checked
    monkeypatch.setattr(hostspec, "schema_libraries", lambda: (None, None))
    spec = copy.deepcopy(_specs()[0])
    assert hostspec.spec_problems(spec) == []
    del spec["networks"][0]["bridge"]
    assert hostspec.spec_problems(spec) == ["spec.networks[0].bridge is missing"]
    spec["version"] = 7
    assert hostspec.spec_problems(spec)[0].startswith("spec.version: this host spec is version 7")


def test_docker_clients_link_names_go_to_the_name_service_of_the_network():
    """A Docker client's link names are answered by the network's name service too (kinds.dns), for the whole
    network (besides the block in its own hosts file, kinds.docker_hosts); a namespace client's stay in its hosts
    file, a name equal to the server's is already answered."""
    from types import SimpleNamespace
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import dns
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24"}, "h2": {"underlay": "192.0.2.2/24"}},
            "networks": {"front": {"subnet": "10.1.0.0/24", "dns": True, "overlay": {"type": "vxlan", "vni": 1}},
                         "plain": {"subnet": "10.2.0.0/24", "hosts": ["h1"]}},
            "containers": {"web": {"host": "h1", "kind": "docker", "docker": "web",
                                   "interfaces": [{"network": "front"}, {"network": "plain"}]},
                           "db": {"host": "h2", "netns": "db", "interfaces": [{"network": "front", "ip": "10.1.0.9"}]},
                           "ns": {"host": "h1", "netns": "ns", "interfaces": [{"network": "front"}]},
                           "pl": {"host": "h1", "netns": "pl", "interfaces": [{"network": "plain"}]}},
            "links": [{"client": "web", "server": "db", "name": "database"},
                      {"client": "ns", "server": "db", "name": "store"},
                      {"client": "web", "server": "ns"},
                      {"client": "web", "server": "pl"}]}
    specs = hostspec.host_specs(validate.load(topo))
    for spec in specs.values():
        assert hostspec.spec_problems(spec) == []
    front = [n for n in specs["h1"]["networks"] if n["name"] == "front"][0]
    assert front["dns"]["aliases"] == [{"name": "database", "server": {"host": "h2", "container": "db",
                                                                       "ifname": "eth0", "ip": "10.1.0.9"}}]
    assert "dns" not in [n for n in specs["h1"]["networks"] if n["name"] == "plain"][0]
    ctx = SimpleNamespace(spec=specs["h1"], addresses={}, peers={})
    assert dns.desired(ctx)["servers"]["front"]["records"] == [
        ["10.1.0.9", "database"], ["10.1.0.9", "db", "db.front"]]
    # no Docker client with a link name: the spec is as before (no aliases key)
    del topo["links"][0]
    front = [n for n in hostspec.host_specs(validate.load(topo))["h2"]["networks"] if n["name"] == "front"][0]
    assert "aliases" not in front["dns"]
