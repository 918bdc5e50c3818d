"""Every scenario of examples/ validates and compiles, names only the two lab hosts, is listed in examples/README.md,
and its playbooks pass ansible-playbook --syntax-check. (tests/e2e/test_examples.py applies them to a lab.)"""

import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(TOP, "examples")
SCENARIOS = sorted(d for d in os.listdir(EX) if os.path.isdir(os.path.join(EX, d)))
WANTED = {"single-host", "multi-host-vxlan", "routed", "tinc", "ports-links", "docker", "teardown", "drift-check"}


def test_the_eight_scenarios_are_there():
    assert WANTED <= set(SCENARIOS)
    with open(os.path.join(EX, "README.md")) as f:
        readme = f.read()
    for d in SCENARIOS:
        assert "(%s/)" % d in readme, "examples/README.md does not list %s" % d


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_topology_validates_and_compiles(scenario):
    with open(os.path.join(EX, scenario, "topology.yml")) as f:
        data = yaml.safe_load(f)
    topo = validate.load(data)
    specs = comp.host_specs(topo)
    assert set(specs) == set(data["hosts"]) <= {"fab-h1", "fab-h2"}
    for c in data.get("containers") or {}:
        assert c.startswith("fab-"), "container names are lab namespace names: %s" % c


KIND = {"multi-host-vxlan": "vxlan", "routed": "routed", "tinc": "tinc"}


@pytest.mark.parametrize("scenario,kind", sorted(KIND.items()))
def test_overlay_scenarios_use_their_overlay(scenario, kind):
    with open(os.path.join(EX, scenario, "topology.yml")) as f:
        topo = validate.load(yaml.safe_load(f))
    assert [n.overlay.type for n in topo.networks.values() if n.overlay] == [kind]


def load(scenario):
    with open(os.path.join(EX, scenario, "topology.yml")) as f:
        return validate.load(yaml.safe_load(f))


def test_feature_scenarios_use_their_features():
    pl = load("ports-links")
    assert pl.links and any(c.publish for c in pl.containers.values())
    assert any(n.isolated for n in pl.networks.values())
    dk = load("docker")
    assert any(c.kind == "docker" for c in dk.containers.values()) and any(n.docker for n in dk.networks.values())
    assert not load("teardown").containers


@pytest.mark.parametrize("playbook", sorted(os.path.join(d, p) for d in SCENARIOS
                                            for p in os.listdir(os.path.join(EX, d))
                                            if p.endswith(".yml") and p != "topology.yml"))
def test_playbook_syntax(playbook):
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if not os.path.exists(exe):
        pytest.skip("no ansible-playbook")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"))
    r = subprocess.run([exe, "--syntax-check", "-i", "localhost,", os.path.join(EX, playbook)], capture_output=True,
                       text=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
