"""Every example scenario applied to a namespace lab of its own (2 hosts), through the playbooks a user runs:
site.yml (the role, then connectivity by real pings that must all be as the topology says), a second run that
changes nothing, the drift check finding a change made by hand and repairing it, and the teardown leaving nothing.

The scenarios run one after another on the same lab, so each apply also moves the hosts from the previous scenario
to the next (what one removes, the next must not find). The Docker scenario runs against a second Docker daemon
inside the first lab host's namespace (tests/integration/dockerkit.py), so Docker's bridge driver and firewall act
there and nothing reaches the machine's own Docker networks; it is skipped, with the reason, without an engine.
"""

import os
import re
import subprocess
import uuid

import sys

import pytest
import yaml

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import graph

from test_e2e_site import _prerequisite, labmod, recap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
import dockerkit  # noqa: E402 pylint: disable=wrong-import-position

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(TOP, "examples")
VENV_BIN = os.path.join(TOP, ".venv", "bin")
APPLIED = ["single-host", "multi-host-vxlan", "routed", "tinc", "ports-links"]

pytestmark = pytest.mark.ansible
if _prerequisite():
    pytestmark = [pytest.mark.ansible, pytest.mark.skip(reason=_prerequisite())]


class ExLab(object):
    def __init__(self, base):
        self.name = "ex" + uuid.uuid4().hex[:6]
        self.dir = os.path.join(base, "lab")
        self.inventory = os.path.join(self.dir, "inventory.ini")
        self.containers = set()

    def topology(self, scenario, docker_host=None):
        """The scenario's topology with the lab's names (fab- -> <lab>-), written next to the inventory; the first
        host's Docker Engine at docker_host when given."""
        with open(os.path.join(EX, scenario, "topology.yml")) as f:
            data = yaml.safe_load(f.read().replace("fab-", self.name + "-"))
        if docker_host:
            data["hosts"]["%s-h1" % self.name]["docker_host"] = docker_host
        self.containers |= {c for c, cd in (data.get("containers") or {}).items() if cd.get("kind") != "docker"}
        path = os.path.join(self.dir, "%s.yml" % scenario)
        with open(path, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        return path

    def playbook(self, playbook, *extra):
        env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".build", "collections"),
                   ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.dir, "tmp"))
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", self.inventory, playbook] + list(extra)
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=TOP, env=env, timeout=400, check=False)
        return r.returncode, r.stdout + r.stderr

    def site(self, topology, *extra):
        return self.playbook(os.path.join(TOP, "playbooks", "site.yml"), "-e", "netstitch_topology_file=" + topology,
                             "-e", "netstitch_unknown_host=skip", *extra)


@pytest.fixture(scope="module")
def exlab(tmp_path_factory):
    lab = ExLab(str(tmp_path_factory.mktemp("examples")))
    try:
        labmod.up(lab.name, 2, lab.dir)
        os.makedirs(os.path.join(lab.dir, "tmp"), exist_ok=True)
        yield lab
    finally:
        labmod.down(lab.name, lab.dir)
        for c in lab.containers:
            if os.path.exists("/run/netns/" + c):
                subprocess.run(["ip", "netns", "del", c], check=False)
    left = [n for n in os.listdir("/run/netns") if n.startswith(lab.name + "-")]
    assert not left, "namespaces left behind: %s" % left


@pytest.mark.parametrize("scenario", APPLIED)
def test_scenario_applies_reaches_and_is_idempotent(exlab, scenario):
    topo = exlab.topology(scenario)
    report = os.path.join(exlab.dir, "%s-report.json" % scenario)
    rc, out = exlab.site(topo, "-e", "netstitch_report_file=" + report)
    assert rc == 0, out[-6000:]
    # the picture coloured by this run's report: something reached, nothing mismatched
    r = subprocess.run([os.path.join(TOP, "bin", "netstitch"), "graph", topo, "--report", report], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert graph.GREEN in r.stdout and graph.RED not in r.stdout, r.stdout
    assert "TASK [Connectivity report]" in out and "Every expectation held" in out, out[-3000:]
    first = recap(out)
    assert first and all(v["failed"] == 0 for v in first.values()), first
    assert any(v["changed"] > 0 for v in first.values()), first
    rc, out = exlab.site(topo)
    assert rc == 0, out[-6000:]
    second = recap(out)
    assert all(v["changed"] == 0 and v["failed"] == 0 for v in second.values()), (second, out[-4000:])
    with open(topo) as f:
        for c in (yaml.safe_load(f).get("containers") or {}):
            assert os.path.exists("/run/netns/" + c), "container %s of %s was not made" % (c, scenario)


def test_docker_scenario(exlab):
    reason = dockerkit.skip_reason()
    if reason:
        pytest.skip(reason)
    tag = "netstitch-test/busybox:%s" % exlab.name
    image = dockerkit.Image(tag, exlab.dir)
    nested = dockerkit.NestedDockerd("%s-h1" % exlab.name, exlab.name)
    conts = None
    try:
        image.build()
        nested.start()
        nested.load(tag)
        conts = dockerkit.Containers(nested.url)
        web = conts.start("%s-dweb" % exlab.name, tag, "httpd", "-f", "-p", "80")
        topo = exlab.topology("docker", docker_host=nested.url)
        rc, out = exlab.site(topo)
        assert rc == 0, out[-6000:]
        assert "Every expectation held" in out, out[-3000:]
        rc, out = exlab.site(topo)
        assert rc == 0 and all(v["changed"] == 0 for v in recap(out).values()), out[-4000:]
        # the Docker container got its interface on the fabric; the Docker network is bound to netstitch's bridge
        addrs = conts.addresses(web, "eth1")
        assert addrs and addrs[0].startswith("198.51.100."), addrs
        net = dockerkit.api(nested.url).inspect_network("apps")
        assert net["Options"].get("com.docker.network.bridge.name") == "nsbr-apps", net["Options"]
        # a container Docker puts on that network reaches the netstitch container on the other host
        joined = conts.start("%s-djoin" % exlab.name, tag, "sleep", "600", network="apps")
        peer_ip = subprocess.run(["ip", "-n", "%s-peer" % exlab.name, "-4", "-o", "addr", "show", "dev", "eth0"],
                                 capture_output=True, text=True, check=True).stdout.split()[3].split("/")[0]
        ok = any(conts.exec(joined, "ping", "-c", "1", "-W", "2", peer_ip, check=False).returncode == 0
                 for _n in range(3))
        assert ok, "a container on Docker's network apps does not reach %s across the VXLAN" % peer_ip
        conts.remove_all()
        # remove the Docker network netstitch made, through the same engine
        rc, out = exlab.site(exlab.topology("teardown", docker_host=nested.url))
        assert rc == 0, out[-4000:]
        assert not [n for n in dockerkit.api(nested.url).networks() if n["Name"] == "apps"]
    finally:
        if conts is not None:
            conts.remove_all()
        nested.stop()
        image.remove()


def test_drift_check_finds_and_repairs(exlab):
    topo = exlab.topology("drift-check")
    rc, out = exlab.site(topo)
    assert rc == 0, out[-6000:]
    drift = os.path.join(EX, "drift-check", "drift.yml")
    rc, out = exlab.playbook(drift, "-e", "netstitch_topology_file=" + topo)
    assert rc == 0 and "in sync" in out, out[-4000:]
    subprocess.run(["ip", "-n", "%s-h1" % exlab.name, "link", "del", "nsvx100"], check=True)
    rc, out = exlab.playbook(drift, "-e", "netstitch_topology_file=" + topo)
    assert rc != 0 and re.search(r"%s-h1 drifted" % exlab.name, out), out[-4000:]
    assert "nsvx100" in out, out[-4000:]
    rc, out = exlab.playbook(drift, "-e", "netstitch_topology_file=" + topo, "-e", "netstitch_repair=true")
    assert rc == 0, out[-4000:]
    assert subprocess.run(["ip", "-n", "%s-h1" % exlab.name, "link", "show", "nsvx100"], capture_output=True,
                          check=False).returncode == 0


def test_teardown_leaves_nothing(exlab):
    teardown = os.path.join(EX, "teardown", "teardown.yml")
    rc, out = exlab.playbook(teardown)
    assert rc == 0, out[-6000:]
    left = [c for c in exlab.containers if os.path.exists("/run/netns/" + c)]
    assert not left, left
    for h in ("h1", "h2"):
        links = subprocess.run(["ip", "-n", "%s-%s" % (exlab.name, h), "-o", "link", "show"], capture_output=True,
                               text=True, check=True).stdout
        assert "netstitch" not in links and "nsbr" not in links, links
    rc, out = exlab.playbook(teardown)
    assert rc == 0 and all(v["changed"] == 0 for v in recap(out).values()), out[-4000:]
