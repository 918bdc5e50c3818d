"""Container hosts (lab/chosts.py: separate Debian hosts with systemd as PID 1) surviving a reboot.

One lab for the module (``chr<random>``: three hosts, underlay switch, outside router), the fabric of
tests/containerhosts/topology.yml (VXLAN, tinc, an isolated VXLAN network with a link, a published port) applied by
playbooks/site.yml. Then every host is rebooted (`docker restart`: all runtime network state gone, files kept) and,
without any playbook run, the boot unit the role installed must bring back pings, the published port and the link
within a bounded time; a following playbook run changes nothing. Also: tinc's systemd units (running, restarted by the
reboot, removed with their network), and the CLI under `ip netns exec` on a host where PID 1's mount namespace can be
entered. The hosts, the switch and the outside router are removed whether the tests pass or not.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "lab"))
import chosts  # noqa: E402

VENV_BIN = os.path.join(TOP, ".venv", "bin")
RESTORE_DEADLINE = 60.0


def _prerequisite():
    if os.geteuid() != 0:
        return "needs root (network namespaces, Docker)"
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "needs a Docker Engine"
    if shutil.which("mmdebstrap") is None and not chosts.image_exists(chosts.image_tag()):
        return "needs mmdebstrap to build the host image (scripts/setup.sh installs it)"
    if not os.path.exists(os.path.join(VENV_BIN, "ansible-playbook")):
        return "no ansible-playbook in .venv (run scripts/setup.sh --dev)"
    return None


pytestmark = [pytest.mark.containerhosts, pytest.mark.timeout(900)]
if _prerequisite():
    pytestmark.append(pytest.mark.skip(reason=_prerequisite()))


def run(cmd, check=False, timeout=120, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def recap(output):
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", output, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(0.2)


class Fabric(object):
    def __init__(self, name, d):
        self.name = name
        self.dir = d
        self.hosts = chosts.host_names(name, 3)
        self.h1, self.h2, self.h3 = self.hosts
        self.inventory = os.path.join(d, "inventory.ini")
        self.topology = None

    def write_topology(self, data, fname="topology.yml"):
        path = os.path.join(self.dir, fname)
        with open(path, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        return path

    def env(self):
        env = dict(os.environ)
        env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
                    "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"),
                    "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_LOCAL_TEMP": os.path.join(self.dir, "tmp")})
        return env

    def playbook(self, topology=None, extra=None):
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", self.inventory,
               os.path.join(TOP, "playbooks", "site.yml"), "-e",
               "netstitch_topology_file=%s" % (topology or self.topology),
               "-e", json.dumps(dict({"netstitch_probe_outside": chosts.nslab.OUTSIDE_SERVICES[:1]}, **(extra or {})))]
        r = run(cmd, cwd=TOP, env=self.env(), timeout=300)
        return r.returncode, r.stdout + r.stderr

    def sh(self, host, *cmd, check=False, timeout=30):
        return run(["docker", "exec", host] + list(cmd), check=check, timeout=timeout)

    def in_ns(self, host, netns, *cmd, timeout=30):
        return self.sh(host, "ip", "netns", "exec", netns, *cmd, timeout=timeout)

    def ping(self, host, netns, addr):
        return self.in_ns(host, netns, "ping", "-n", "-q", "-c", "1", "-W", "1", addr).returncode == 0

    def connect(self, host, netns, addr, port):
        code = "import socket; socket.create_connection((%r, %d), 2).close()" % (addr, port)
        return self.in_ns(host, netns, "python3", "-c", code).returncode == 0

    def listen(self, host, netns, port, bind="0.0.0.0"):
        """A TCP server in a container namespace, as a transient unit of the host (gone with a reboot)."""
        unit = "lab-listen-%d" % port
        self.sh(host, "systemctl", "stop", unit)
        self.sh(host, "systemd-run", "--unit", unit, "--collect", "ip", "netns", "exec", netns, "python3", "-m",
                "http.server", "--bind", bind, str(port), check=True)

    def from_outside(self, addr, port):
        code = "import urllib.request; urllib.request.urlopen('http://%s:%d/', timeout=2).read()" % (addr, port)
        return run(["ip", "netns", "exec", "%s-out" % self.name, "python3", "-c", code]).returncode == 0

    def tinc_unit(self, host):
        return "netstitch-tinc-%s-sec.service" % host.replace("-", "_")

    def restored(self):
        """What the fabric must do again after a reboot, all of it: pings over VXLAN and tinc (both families), the
        published port from outside, the link web -> vault:5432 (and api, without a link, refused)."""
        return (self.ping(self.h2, "api", "10.81.0.10")                     # VXLAN front, h2 -> h1
                and self.ping(self.h2, "api", "10.82.0.30")                 # tinc sec, h2 -> h3
                and self.ping(self.h2, "api", "2001:db8:81::a")             # the same over IPv6
                and self.ping(self.h2, "api", "2001:db8:82::30")
                and self.ping(self.h1, "web", chosts.nslab.OUTSIDE_SERVICES[0])   # masquerade out
                and self.from_outside(chosts.nslab.UNDERLAY % 1, 8080)      # published port
                and self.connect(self.h1, "web", "10.83.0.30", 5432))       # the link


@pytest.fixture(scope="module")
def fabric(tmp_path_factory):
    name = "chr" + secrets.token_hex(2)
    d = str(tmp_path_factory.mktemp(name) / "lab")
    os.makedirs(os.path.join(d, "tmp"))
    chosts.collections()
    fab = Fabric(name, d)
    try:
        chosts.up(name, 3, d)
        with open(os.path.join(HERE, "topology.yml")) as f:
            fab.topology = fab.write_topology(yaml.safe_load(f.read().replace("ch-h", name + "-h")))
        yield fab
    finally:
        chosts.down(name, d)
    left = run(["docker", "ps", "-aq", "--filter", "label=netstitch.lab=%s" % name]).stdout.split()
    assert not left, "containers left behind: %s" % left
    assert not [n for n in os.listdir("/run/netns") if n.startswith(name + "-")]


# The tests build on each other in file order: apply, reboot, tinc's removal, then the teardown.

def test_apply_and_idempotence(fabric):
    rc, out = fabric.playbook()
    assert rc == 0, out
    for h, counts in recap(out).items():
        assert counts["failed"] == 0 and counts["changed"] > 0, (h, counts, out)
    for h in fabric.hosts:
        assert re.search(r"pings from the containers on %s: (\d+) checks, \1 as expected, 0 mismatched" % h, out), out
    rc, out = fabric.playbook()
    assert rc == 0, out
    assert set(recap(out)) == set(fabric.hosts), out
    for h, counts in recap(out).items():
        assert counts["failed"] == 0 and counts["changed"] == 0, (h, counts, out)
    # the units the role installed: the boot unit on every host, tinc as systemd units where sec is
    for h in fabric.hosts:
        assert fabric.sh(h, "systemctl", "is-enabled", "netstitch-boot.service").stdout.strip() == "enabled"
    for h in (fabric.h2, fabric.h3):
        assert fabric.sh(h, "systemctl", "is-active", fabric.tinc_unit(h)).stdout.strip() == "active"
    assert fabric.sh(fabric.h1, "systemctl", "cat", fabric.tinc_unit(fabric.h1)).returncode != 0
    # packets: the link allowed, an unlinked client refused, the published port from outside
    fabric.listen(fabric.h3, "vault", 5432, bind="10.83.0.30")
    fabric.listen(fabric.h1, "web", 80)
    wait_for(lambda: fabric.connect(fabric.h1, "web", "10.83.0.30", 5432), 10, "the link web -> vault:5432")
    assert not fabric.connect(fabric.h2, "api", "10.83.0.30", 5432)
    wait_for(lambda: fabric.from_outside(chosts.nslab.UNDERLAY % 1, 8080), 10, "the published port")
    # IPv6 across separate hosts: over VXLAN (h2 -> h1) and over tinc (h2 -> h3; keys exchanged by then)
    wait_for(lambda: fabric.ping(fabric.h2, "api", "2001:db8:81::a") and fabric.ping(fabric.h2, "api", "2001:db8:82::30"),
             RESTORE_DEADLINE, "ping6 over vxlan and tinc between container hosts")


def test_reboot_restores_everything_without_a_playbook_run(fabric):
    t0 = time.monotonic()
    run(["docker", "restart", "-t", "10"] + fabric.hosts, check=True)
    # the lab plugs each rebooted host's NIC back in (a real host's NIC is there at boot; lab-underlay.service in
    # the image holds network-online.target until it is)
    chosts.rewire(fabric.name, fabric.dir)
    # the applications come back with their hosts (their namespaces are made again by the boot unit)
    wait_for(lambda: fabric.sh(fabric.h3, "ip", "netns", "pids", "vault").returncode == 0, RESTORE_DEADLINE,
             "vault's namespace on %s" % fabric.h3)
    wait_for(lambda: fabric.sh(fabric.h1, "ip", "netns", "pids", "web").returncode == 0, RESTORE_DEADLINE,
             "web's namespace on %s" % fabric.h1)
    fabric.listen(fabric.h3, "vault", 5432, bind="10.83.0.30")
    fabric.listen(fabric.h1, "web", 80)
    wait_for(fabric.restored, RESTORE_DEADLINE, "pings, the published port and the link after the reboot")
    elapsed = time.monotonic() - t0
    assert not fabric.connect(fabric.h2, "api", "10.83.0.30", 5432)      # still refused without a link
    # from each host's own clock: systemd's start to the end of the boot unit
    boot_to_restored = []
    for h in fabric.hosts:
        props = dict(line.split("=", 1) for line in fabric.sh(
            h, "systemctl", "show", "-p", "ExecMainExitTimestampMonotonic", "-p", "ExecMainStatus",
            "netstitch-boot.service").stdout.split())
        props.update(line.split("=", 1) for line in fabric.sh(
            h, "systemctl", "show", "-p", "UserspaceTimestampMonotonic").stdout.split())
        assert props["ExecMainStatus"] == "0", (h, props, fabric.sh(h, "journalctl", "-u", "netstitch-boot").stdout)
        boot_to_restored.append((int(props["ExecMainExitTimestampMonotonic"])
                                 - int(props["UserspaceTimestampMonotonic"])) / 1e6)
        journal = fabric.sh(h, "journalctl", "-b", "-u", "netstitch-boot", "-o", "cat").stdout
        restored = [json.loads(line) for line in journal.splitlines() if line.startswith("{")]
        # the boot unit did the work (the reboot had lost it all), not a later run
        assert restored and restored[-1]["event"] == "restored" and restored[-1]["changed"], journal
        assert restored[-1]["actions"] > 5, journal
    print("\nreboot of 3 hosts: restored %.1fs after `docker restart` began; boot unit finished %s s after systemd "
          "started" % (elapsed, ", ".join("%.2f" % t for t in boot_to_restored)))
    # tinc: restarted by the reboot (a new tincd), and the tinc overlay carries traffic (keys exchanged)
    for h in (fabric.h2, fabric.h3):
        assert fabric.sh(h, "systemctl", "is-active", fabric.tinc_unit(h)).stdout.strip() == "active"
    # and the next playbook run finds nothing to do
    rc, out = fabric.playbook()
    assert rc == 0, out
    for h, counts in recap(out).items():
        assert counts["failed"] == 0 and counts["changed"] == 0, (h, counts, out)


def test_cli_under_ip_netns_exec_on_a_host_with_systemd(fabric):
    """PID 1's mount namespace can be entered here: namespaces made under `ip netns exec` are made there and live on."""
    h = fabric.h1
    topo = {"version": 1, "hosts": {"inner": {}}, "networks": {"n": {"subnet": "10.99.0.0/24"}},
            "containers": {"inner-c1": {"host": "inner", "interfaces": [{"network": "n"}]}}}
    fabric.sh(h, "ip", "netns", "add", "inner", check=True)
    run(["docker", "exec", "-i", h, "sh", "-c", "cat > /tmp/inner.yml"], input=yaml.safe_dump(topo), check=True)
    cli = ("import sys; sys.path.insert(0, '/usr/local/lib/netstitch'); "
           "from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli import main; sys.exit(main())")
    try:
        r = fabric.sh(h, "ip", "netns", "exec", "inner", "python3", "-c", cli, "apply", "/tmp/inner.yml", "--host",
                      "inner", "--state-dir", "/tmp/inner-state", "--json")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        listing = fabric.sh(h, "ip", "netns", "list").stdout
        assert "inner-c1" in listing and "invalid" not in listing, listing
        assert fabric.ping(h, "inner-c1", "10.99.0.1")
        r = fabric.sh(h, "ip", "netns", "exec", "inner", "python3", "-c", cli, "apply", "/tmp/inner.yml", "--host",
                      "inner", "--state-dir", "/tmp/inner-state", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["changed"] is False, r.stdout + r.stderr
    finally:
        fabric.sh(h, "ip", "netns", "del", "inner-c1")
        fabric.sh(h, "ip", "netns", "del", "inner")


def test_tinc_units_go_with_their_network(fabric):
    with open(fabric.topology) as f:
        topo = yaml.safe_load(f)
    del topo["networks"]["sec"]
    topo["containers"]["api"]["interfaces"] = [i for i in topo["containers"]["api"]["interfaces"]
                                               if i["network"] != "sec"]
    topo["containers"]["vault"]["interfaces"] = [{"network": "front"}] + [
        i for i in topo["containers"]["vault"]["interfaces"] if i["network"] != "sec"]
    rc, out = fabric.playbook(fabric.write_topology(topo, "no-tinc.yml"))
    assert rc == 0, out
    for h in (fabric.h2, fabric.h3):
        unit = fabric.tinc_unit(h)
        assert fabric.sh(h, "systemctl", "is-active", unit).stdout.strip() != "active"
        assert fabric.sh(h, "test", "-e", "/etc/systemd/system/" + unit).returncode != 0
        assert fabric.sh(h, "pgrep", "-x", "tincd").returncode != 0
        assert fabric.sh(h, "test", "-e", "/var/lib/netstitch/tinc/%s/sec" % h).returncode != 0
    assert fabric.ping(fabric.h2, "api", "10.81.0.10")


def test_teardown_removes_the_boot_unit(fabric):
    """netstitch_state=absent: everything netstitch made goes, the boot pieces included (a torn-down host must not
    restore anything at its next boot)."""
    for h in fabric.hosts:
        assert fabric.sh(h, "systemctl", "is-enabled", "netstitch-boot.service").stdout.strip() == "enabled"
    rc, out = fabric.playbook(extra={"netstitch_state": "absent"})
    assert rc == 0, out
    for h in fabric.hosts:
        assert fabric.sh(h, "systemctl", "is-enabled", "netstitch-boot.service").returncode != 0
        for path in ("/etc/systemd/system/netstitch-boot.service", "/etc/systemd/system/netstitch-watch.service",
                     "/usr/local/sbin/netstitch", "/var/lib/netstitch/%s.json" % h):
            assert fabric.sh(h, "test", "-e", path).returncode != 0, (h, path)
        left = fabric.sh(h, "find", "/usr/local/lib/netstitch", "-name", "*.py").stdout.split()
        assert left == [], (h, left[:5])
        assert fabric.sh(h, "ip", "netns", "list").stdout.strip() == "", h
    rc, out = fabric.playbook(extra={"netstitch_state": "absent"})          # and a second teardown changes nothing
    assert rc == 0, out
    for h, counts in recap(out).items():
        assert counts["failed"] == 0 and counts["changed"] == 0, (h, counts, out)
