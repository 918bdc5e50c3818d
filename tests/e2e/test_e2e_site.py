"""End to end: ansible-playbook playbooks/site.yml against a lab of its own (3 namespace hosts named e2e-h1..3).

The lab, its inventory and its state live in a temporary directory; the fixture removes the lab (and every namespace
the test topologies name) whether the tests pass or not. The demo's lab ("fab") is never touched: the topology is the
example one with its names moved from fab- to e2e-.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "lab"))
import lab as labmod  # noqa: E402

pytestmark = pytest.mark.ansible

NAME = "e2e"
HOSTS = ["%s-h%d" % (NAME, i) for i in (1, 2, 3)]
VENV_BIN = os.path.join(TOP, ".venv", "bin")


def _prerequisite():
    if os.geteuid() != 0:
        return "needs root (it makes network namespaces)"
    for tool in ("ip", "nsenter", "ping", "nft"):
        if shutil.which(tool) is None:
            return "needs the %r command" % tool
    if not os.path.exists(os.path.join(VENV_BIN, "ansible-playbook")):
        return "no ansible-playbook in .venv (run scripts/setup.sh --dev)"
    return None


if _prerequisite():
    pytestmark = [pytest.mark.ansible, pytest.mark.skip(reason=_prerequisite())]


def example_topology():
    """The shipped example topology with its names moved to this test's lab."""
    with open(os.path.join(TOP, "playbooks", "topology.yml")) as f:
        return yaml.safe_load(f.read().replace("fab-", NAME + "-"))


def run(cmd, must=False, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if must and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


class Lab(object):
    def __init__(self, d):
        self.dir = d
        self.inventory = os.path.join(d, "inventory.ini")
        self.topologies = []        # every topology file a test wrote (their namespaces are removed at the end)
        self.example = None

    def write_topology(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        self.topologies.append(data)
        return path

    def env(self):
        env = dict(os.environ)
        env.update({
            "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
            "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"),
            "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.dir, "tmp"),
        })
        return env

    def playbook(self, *args, inventory=None, topology=None, outside=True):
        """Run site.yml; the topology is the example one (renamed to this lab) unless given. ``outside``: pass the
        lab's outside router as what the report checks the way out against (the product has no default)."""
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory or self.inventory,
               os.path.join(TOP, "playbooks", "site.yml"),
               "-e", "netstitch_topology_file=%s" % (topology or self.example)] + list(args)
        if outside:
            cmd += ["-e", json.dumps({"netstitch_probe_outside": labmod.OUTSIDE_SERVICES[:1]})]
        r = run(cmd, cwd=TOP, env=self.env(), timeout=240)
        return r.returncode, r.stdout + r.stderr

    def adhoc(self, pattern, module, args):
        cmd = [os.path.join(VENV_BIN, "ansible"), "-i", self.inventory, pattern, "-m", module, "-a", args]
        r = run(cmd, cwd=TOP, env=self.env(), timeout=120)
        return r.returncode, r.stdout + r.stderr

    def snapshot(self):
        """What the hosts look like from outside netstitch: `ip -d link` of every host, this lab's namespaces, and
        netstitch's nft table on every host."""
        out = {"netns": sorted(n for n in os.listdir("/run/netns") if n.startswith(NAME + "-"))}
        for h in HOSTS:
            links = run(["ip", "-n", h, "-d", "link", "show"], must=True).stdout
            out[h] = re.sub(r"(_timer)\s+[0-9.]+", r"\1 -", links)     # bridge timers tick on their own
            out[h + " nft"] = run(["ip", "netns", "exec", h, "nft", "list", "table", "inet", "netstitch"]).stdout
        return out


def recap(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP."""
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", output, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def ns_addr(ns, dev="eth0"):
    r = run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev], must=True)
    return r.stdout.split()[3].split("/")[0]


def ping(ns, addr):
    return run(["nsenter", "--net=/run/netns/%s" % ns, "ping", "-n", "-q", "-c", "1", "-W", "1", addr]).returncode == 0


def assert_unreachable(ns, addr, routed=True):
    """``ns`` cannot reach ``addr``: the namespace exists, and it has a route there (``routed``; the packet is sent
    and something drops it) or, for an internal network, none at all; a namespace that was never made cannot pass."""
    assert os.path.exists("/run/netns/%s" % ns), "namespace %s does not exist" % ns
    r = run(["ip", "-n", ns, "-4", "route", "get", addr])
    assert (r.returncode == 0) == routed, "route from %s to %s: %s%s" % (ns, addr, r.stdout, r.stderr)
    assert not ping(ns, addr), "%s reaches %s" % (ns, addr)


def reaches(ns, addr, tries=3):
    return any(ping(ns, addr) for attempt in range(tries))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("e2e") / "lab")
    the_lab = Lab(d)
    # a lab of this name left by a run that was killed (no finally) goes first
    labmod.down(NAME, d)
    for c in (example_topology().get("containers") or {}):
        if os.path.exists("/run/netns/" + c):
            run(["ip", "netns", "del", c])
    try:
        labmod.up(NAME, 3, d)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        the_lab.example = the_lab.write_topology("topology.yml", example_topology())
        yield the_lab
    finally:
        labmod.down(NAME, d)
        # anything an interrupted apply made before it could record it
        for topo in the_lab.topologies:
            for c in (topo.get("containers") or {}):
                if os.path.exists("/run/netns/" + c):
                    run(["ip", "netns", "del", c])
    left = [n for n in os.listdir("/run/netns") if n.startswith(NAME + "-")]
    assert not left, "namespaces left behind: %s" % left


# The tests of this module build on each other in file order: the invalid topology first (nothing applied yet), then
# the first and the second run, then checks against the applied fabric.

def test_invalid_topology_fails_before_any_host_is_touched(lab):
    topo = example_topology()
    topo["networks"]["back"]["subnet"] = "198.51.100.96/27"          # overlaps front 198.51.100.64/26
    topo["containers"][NAME + "-web1"]["interfaces"][0]["ip"] = "203.0.113.5"   # outside front's subnet
    path = lab.write_topology("invalid.yml", topo)
    before = lab.snapshot()
    rc, out = lab.playbook(topology=path)
    assert rc != 0, out
    assert "networks.back.subnet" in out, out
    assert "containers.%s-web1.interfaces[0].ip" % NAME in out, out
    assert "Traceback" not in out, out
    # the apply task never ran on any host, and every host is failed in the recap
    assert "Apply this host's part" not in out, out
    rc_by_host = recap(out)
    assert set(rc_by_host) == set(HOSTS), out
    for h in HOSTS:
        assert rc_by_host[h]["changed"] == 0, out
    assert lab.snapshot() == before
    assert not [f for f in os.listdir(os.path.join(lab.dir, "state")) if f.endswith(".json")]


def test_first_run_changes_second_run_is_idempotent(lab):
    rc, out = lab.playbook()
    assert rc == 0, out
    first = recap(out)
    assert set(first) == set(HOSTS), out
    for h in HOSTS:
        assert first[h]["failed"] == 0 and first[h]["changed"] > 0, (h, first, out)
    # the connectivity play ran and every expectation held
    for h in HOSTS:
        assert re.search(r"pings from the containers on %s: (\d+) checks, \1 as expected, 0 mismatched" % h, out), out
    # the way out was checked against the outside the lab passed: web1 (front, masqueraded) reaches it
    assert re.search(r"%s-web1@%s-h1\s+outside\s+198\.51\.100\.1\s+outside\s+reach\s+reach\s+ok" % (NAME, NAME), out), out
    assert "outside: not tested" not in out, out
    rc, out = lab.playbook()
    assert rc == 0, out
    second = recap(out)
    for h in HOSTS:
        assert second[h]["failed"] == 0 and second[h]["changed"] == 0, (h, second, out)


def test_pings_between_containers(lab):
    p = NAME + "-"
    web1, web2, web3 = ns_addr(p + "web1"), ns_addr(p + "web2"), ns_addr(p + "web3")
    db1, db2 = ns_addr(p + "db1"), ns_addr(p + "db2")
    assert web1 == "198.51.100.70"                   # the fixed address
    # same network, same host
    assert reaches(p + "web1", web2)
    assert reaches(p + "web2", web1)
    assert reaches(p + "web1", db1)
    # same network across hosts (front is a VXLAN overlay)
    assert reaches(p + "web3", web1)
    assert reaches(p + "web1", web3)
    # the way out: front masquerades, back is internal
    assert reaches(p + "web1", "198.51.100.1")
    assert_unreachable(p + "db1", "198.51.100.1", routed=False)
    # nothing opens a connection into another network
    assert_unreachable(p + "web2", db1)
    assert_unreachable(p + "mon", web1)
    # back is host-local: db1 (h1) and db2 (h2) are on separate segments
    assert_unreachable(p + "db2", db1)
    assert db2


def test_check_mode_on_a_modified_topology_changes_nothing(lab):
    topo = example_topology()
    topo["networks"]["mgmt"]["mtu"] = 1300
    del topo["containers"][NAME + "-web2"]
    topo["containers"][NAME + "-new"] = {"host": NAME + "-h2", "interfaces": [{"network": "mgmt"}]}
    path = lab.write_topology("modified.yml", topo)
    before = lab.snapshot()
    rc, out = lab.playbook("--check", "--diff", topology=path)
    assert rc == 0, out
    counts = recap(out)
    # every host would change (h1 loses web2, h2 gains a container, h3's mgmt MTU changes), yet nothing did
    for h in HOSTS:
        assert counts[h]["changed"] > 0, (h, counts, out)
    assert "%s-new/eth0" % NAME in out, out        # the diff shows the endpoint to come
    assert lab.snapshot() == before
    assert not os.path.exists("/run/netns/%s-new" % NAME)


def test_info_reports_in_sync(lab):
    rc, out = lab.adhoc("fabric", "netstitch.fabric.info",
                        "host={{ inventory_hostname }} state_dir={{ netstitch_state_dir }}")
    assert rc == 0, out
    for h in HOSTS:
        m = re.search(r"^%s \| SUCCESS => (\{.*?^\})" % re.escape(h), out, re.M | re.S)
        assert m, out
        facts = json.loads(m.group(1))["netstitch"]
        assert facts["in_sync"] is True and facts["pending"] == [], facts
    facts = json.loads(re.search(r"^%s \| SUCCESS => (\{.*?^\})" % HOSTS[0], out, re.M | re.S).group(1))["netstitch"]
    assert "%s-web1/eth0" % NAME in facts["endpoints"], facts
    assert facts["endpoints"]["%s-web1/eth0" % NAME]["address"] == "198.51.100.70/26"


def test_probe_fails_on_a_wrong_expectation(lab):
    checks = json.dumps({"checks": [
        {"from_netns": NAME + "-db1", "to": "198.51.100.1", "expect": True},      # back is internal: no way out
        {"from_netns": NAME + "-web1", "to": "198.51.100.1", "expect": True},
    ]})
    rc, out = lab.adhoc(HOSTS[0], "netstitch.fabric.probe", checks)
    assert rc != 0, out
    assert "1 of 2 connectivity checks did not hold" in out, out
    assert "Traceback" not in out, out


def test_host_not_in_topology_fails_before_any_host_is_touched(lab):
    topo = example_topology()
    topo["networks"]["mgmt"]["mtu"] = 1280            # a change that would be applied if anything ran
    path = lab.write_topology("modified2.yml", topo)
    inventory = os.path.join(lab.dir, "inventory-extra.ini")
    with open(lab.inventory) as f:
        text = f.read()
    extra = re.search(r"^%s (.*)$" % HOSTS[2], text, re.M).group(1)
    with open(inventory, "w") as f:
        f.write(text.replace("[fabric:vars]", "%s-stray %s\n\n[fabric:vars]" % (NAME, extra)))
    before = lab.snapshot()
    rc, out = lab.playbook(topology=path, inventory=inventory)
    assert rc != 0, out
    assert "%s-stray is in the play but not under hosts of the topology" % NAME in out, out
    assert "Apply this host's part" not in out, out
    assert lab.snapshot() == before


def test_two_phase_run_with_tinc_isolation_and_a_link(lab):
    """A topology whose hosts must exchange facts first (tinc keys, a linked container's address on another host):
    the role prepares on every host, then applies with the peers' facts. Runs last: it replaces the example fabric."""
    p = NAME + "-"
    topo = {
        "version": 1,
        "hosts": {h: {"underlay": "192.0.2.%d/24" % (i + 1)} for i, h in enumerate(HOSTS)},
        "networks": {
            "sec": {"subnet": "203.0.113.128/26", "overlay": {"type": "tinc", "slice_len": 28}},
            "iso": {"subnet": "198.51.100.64/26", "isolated": True,
                    "overlay": {"type": "vxlan", "vni": 9, "slice_len": 28}},
        },
        "containers": {
            p + "t1": {"host": HOSTS[0], "interfaces": [{"network": "sec"}, {"network": "iso"}]},
            p + "t2": {"host": HOSTS[1], "interfaces": [{"network": "sec"}]},
            p + "i3": {"host": HOSTS[1], "interfaces": [{"network": "iso"}]},
        },
        "links": [{"client": p + "t1", "server": p + "i3", "protocol": "any"}],
    }
    path = lab.write_topology("two-phase.yml", topo)
    rc, out = lab.playbook(topology=path)
    assert rc == 0, out
    assert re.search(r"TASK \[netstitch\.fabric\.fabric : Work out the facts[^\n]*\n(changed|ok): ", out), out
    for h in HOSTS:
        assert re.search(r"pings from the containers on %s: (\d+) checks, \1 as expected, 0 mismatched" % h, out), out
    assert not os.path.exists("/run/netns/%sweb1" % p)              # the example fabric was pruned
    t1_iso = ns_addr(p + "t1", "eth1")
    assert reaches(p + "t2", ns_addr(p + "t1"))                    # over tinc, h2 -> h1
    assert reaches(p + "t1", ns_addr(p + "i3"))                    # the link, across hosts on the isolated overlay
    assert_unreachable(p + "i3", t1_iso)                           # a link is one-way
    rc, out = lab.playbook(topology=path)
    assert rc == 0, out
    for h, counts in recap(out).items():
        assert counts["changed"] == 0 and counts["failed"] == 0, (h, counts, out)


def test_site_passes_on_a_fabric_that_is_not_the_labs_without_an_outside(lab):
    """No lab value in the product: a correct fabric of other addresses, whose internal network's gateway is the very
    address the probe once checked as "outside" by default (198.51.100.1), passes site.yml when no outside is given,
    and the report says the way out was not tested. Runs after the two-phase test: it replaces that fabric."""
    p = NAME + "-"
    topo = {
        "version": 1,
        "hosts": {h: {"underlay": "192.0.2.%d/24" % (i + 1)} for i, h in enumerate(HOSTS)},
        "networks": {
            "app": {"subnet": "10.61.0.0/24", "overlay": {"type": "vxlan", "vni": 61}},
            "db": {"subnet": "198.51.100.0/24", "gateway": "198.51.100.1", "internal": True},
        },
        "containers": {
            p + "x-app1": {"host": HOSTS[0], "interfaces": [{"network": "app"}, {"network": "db"}]},
            p + "x-app3": {"host": HOSTS[2], "interfaces": [{"network": "app"}]},
            p + "x-db": {"host": HOSTS[2], "interfaces": [{"network": "db"}]},
        },
    }
    path = lab.write_topology("not-the-lab.yml", topo)
    for attempt in (1, 2):
        rc, out = lab.playbook(topology=path, outside=False)
        assert rc == 0, out
        assert "outside: not tested" in out, out
        assert "MISMATCH" not in out, out
        for h in HOSTS:
            assert re.search(r"pings from the containers on %s: (\d+) checks, \1 as expected, 0 mismatched" % h, out), out
    for h, counts in recap(out).items():
        assert counts["changed"] == 0 and counts["failed"] == 0, (h, counts, out)
