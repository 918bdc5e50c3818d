"""Day-2 operations through ansible-playbook, on a two-host lab of its own (random name ``dtw<hex>``): --check --diff
names a change, a host dropped from the topology is purged (netstitch_unknown_host=purge) or left alone (skip),
netstitch_state=absent tears a host down, and playbooks/drift.yml reports drift by hand and exits non-zero.

The tests build on each other in file order."""

import os
import re
import secrets
import shutil
import subprocess
import sys

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "lab"))
import lab as labmod  # noqa: E402

pytestmark = pytest.mark.ansible
VENV_BIN = os.path.join(TOP, ".venv", "bin")
NAME = "dtw" + secrets.token_hex(2)
H1, H2 = NAME + "-h1", NAME + "-h2"

if os.geteuid() != 0 or not os.path.exists(os.path.join(VENV_BIN, "ansible-playbook")):
    pytestmark = [pytest.mark.ansible, pytest.mark.skip(reason="needs root and .venv's ansible-playbook")]

ROLE_PLAY = """
- hosts: fabric
  gather_facts: false
  roles:
    - role: netstitch.fabric.fabric
"""


def topology(hosts=(H1, H2)):
    return {
        "version": 1,
        "hosts": {h: {"underlay": "192.0.2.%d/24" % (i + 1)} for i, h in enumerate((H1, H2)) if h in hosts},
        "networks": {"front": {"subnet": "10.66.0.0/24"}},
        "containers": {"%s-c%d" % (NAME, i + 1): {"host": h, "interfaces": [{"network": "front"}]}
                       for i, h in enumerate((H1, H2)) if h in hosts},
    }


class Lab(object):
    def __init__(self, d):
        self.dir = d
        self.inventory = os.path.join(d, "inventory.ini")
        self.play = os.path.join(d, "role.yml")
        with open(self.play, "w") as f:
            f.write(ROLE_PLAY)

    def env(self):
        env = dict(os.environ)
        env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
                    "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"),
                    "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_LOCAL_TEMP": os.path.join(self.dir, "tmp")})
        return env

    def topo_file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            yaml.safe_dump(data, f)
        return path

    def playbook(self, play, *args):
        r = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", self.inventory, play] + list(args),
                           capture_output=True, text=True, cwd=TOP, env=self.env(), timeout=300, check=False)
        return r.returncode, r.stdout + r.stderr

    def role(self, topo, *args):
        return self.playbook(self.play, "-e", "netstitch_topology_file=%s" % topo, *args)

    def state(self, host):
        return os.path.exists(os.path.join(self.dir, "state", host + ".json"))


def owned_links(host):
    out = subprocess.run(["ip", "-n", host, "-d", "link"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"alias (netstitch [^\n]+)", out)


def has_table(host):
    return subprocess.run(["ip", "netns", "exec", host, "nft", "list", "table", "inet", "netstitch"],
                          capture_output=True, check=False).returncode == 0


def recap(out):
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", out, re.M)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = str(tmp_path_factory.mktemp(NAME) / "lab")
    try:
        labmod.up(NAME, 2, d)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        yield Lab(d)
    finally:
        labmod.down(NAME, d)
        for i in (1, 2):
            c = "%s-c%d" % (NAME, i)
            if os.path.exists("/run/netns/" + c):
                subprocess.run(["ip", "netns", "del", c], check=False)
            shutil.rmtree("/etc/netns/" + c, ignore_errors=True)


def test_apply_then_check_diff_names_a_change(lab):
    both = lab.topo_file("both.yml", topology())
    rc, out = lab.role(both)
    assert rc == 0, out
    assert lab.state(H1) and lab.state(H2) and owned_links(H2)
    changed = topology()
    changed["containers"][NAME + "-c1"]["publish"] = [{"host_port": 8080, "container_port": 80}]
    changed["networks"]["front"]["mtu"] = 1400
    rc, out = lab.role(lab.topo_file("changed.yml", changed), "--check", "--diff")
    assert rc == 0, out
    assert "+published port 8080/tcp -> %s-c1:80: container address 10.66.0." % NAME in out, out
    assert "-bridge nsbr-front (network front): mtu 1500," in out, out
    assert "+bridge nsbr-front (network front): mtu 1400," in out, out
    rc, out = lab.role(both, "--check", "--diff")
    assert rc == 0 and all(v["changed"] == 0 for v in recap(out).values()), out


def test_drift_playbook_reports_drift_by_kind_and_fails(lab):
    drift = os.path.join(TOP, "playbooks", "drift.yml")
    rc, out = lab.playbook(drift)
    assert rc == 0, out
    subprocess.run(["ip", "-n", H2, "link", "set", "nsbr-front", "mtu", "1400"], check=True)
    subprocess.run(["ip", "netns", "exec", H2, "nft", "flush", "chain", "inet", "netstitch", "postrouting"],
                   check=True)
    rc, out = lab.playbook(drift)
    assert rc != 0, out
    assert "bridge nsbr-front (network front) drifted: now mtu 1400, applied mtu 1500" in out, out
    assert "masquerade of network front missing" in out, out
    assert recap(out)[H1]["failed"] == 0 and recap(out)[H2]["failed"] == 1, out
    rc, out = lab.role(lab.topo_file("both.yml", topology()))     # a run repairs it
    assert rc == 0, out
    rc, out = lab.playbook(drift)
    assert rc == 0, out


def test_a_host_dropped_from_the_topology_fails_is_skipped_or_purged(lab):
    only1 = lab.topo_file("only1.yml", topology(hosts=(H1,)))
    rc, out = lab.role(only1)                                         # default: fail, before any host is touched
    assert rc != 0 and "not under hosts of the topology" in out, out
    assert owned_links(H2) and lab.state(H2)
    rc, out = lab.role(only1, "-e", "netstitch_unknown_host=skip")
    assert rc == 0, out
    assert owned_links(H2) and has_table(H2) and lab.state(H2)
    rc, out = lab.role(only1, "-e", "netstitch_unknown_host=purge", "--check", "--diff")
    assert rc == 0 and owned_links(H2), out
    assert "-bridge nsbr-front (network front)" in out, out
    rc, out = lab.role(only1, "-e", "netstitch_unknown_host=purge")
    assert rc == 0, out
    assert recap(out)[H1]["changed"] == 0 and recap(out)[H2]["changed"] == 1, out
    assert owned_links(H2) == [] and not has_table(H2) and not lab.state(H2)
    assert not os.path.exists("/run/netns/%s-c2" % NAME)
    assert owned_links(H1) and has_table(H1) and lab.state(H1)       # the host still listed is untouched
    rc, out = lab.role(only1, "-e", "netstitch_unknown_host=purge")  # and again: nothing left to do
    assert rc == 0 and all(v["changed"] == 0 for v in recap(out).values()), out


def test_state_absent_tears_down_without_a_topology(lab):
    rc, out = lab.playbook(lab.play, "-e", "netstitch_state=absent")
    assert rc == 0, out
    for h in (H1, H2):
        assert owned_links(h) == [] and not has_table(h) and not lab.state(h), h
    assert not os.path.exists("/run/netns/%s-c1" % NAME)
