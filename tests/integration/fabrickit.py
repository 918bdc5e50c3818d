"""A three-host lab for the multi-host tests (overlays, ports, links): switch, outside router and three hosts,
named ``ovl<random>``, with netstitch applied on every host through its CLI inside the host's namespace; the
``fabric`` fixture builds one per test and removes everything it made, also on failure."""

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess

import pytest

import nskit

CLI = [nskit.PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"]
HOSTS = ("h1", "h2", "h3")
SUBNET = {"vxlan": "10.81.0.0/24", "routed": "10.82.0.0/16", "tinc": "10.83.0.0/24"}


class Fabric(object):
    def __init__(self, tmp):
        self.name = "ovl" + secrets.token_hex(2)
        self.dir = os.path.join(str(tmp), "lab")
        self.procs = []
        self.files = 0

    def up(self):
        nskit.labmod.up(self.name, 3, d=self.dir, python=nskit.PY)

    def down(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
        # the name servers (kinds.dns) netstitch started for this fabric: by the pids in its own state directory
        # and the BGP speakers (kinds.bgp: BIRD)
        for pidfile, comm in [(p, "dnsmasq") for p in glob.glob(os.path.join(self.dir, "state", "dns", "*", "*.pid"))] \
                + [(p, "bird") for p in glob.glob(os.path.join(self.dir, "state", "bird", "*", "bird.pid"))]:
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() == comm:
                        os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
        nskit.labmod.down(self.name, d=self.dir)
        for ns in nskit.netns_list():
            if ns.startswith(self.name + "-"):
                nskit.del_netns(ns)
        # hosts files of link names (/etc/netns/<netns>/hosts) made for this fabric's containers
        if os.path.isdir("/etc/netns"):
            for d in os.listdir("/etc/netns"):
                if d.startswith(self.name + "-"):
                    shutil.rmtree(os.path.join("/etc/netns", d), ignore_errors=True)

    def diagnose(self):
        """What a failed connectivity wait prints: each host's links, bridge FDB and neighbours, and the tail of each
        tinc daemon's log (its connections, and on request its nodes, edges, subnets and connections)."""
        out = []
        for h in HOSTS:
            for cmd in (("ip", "-br", "link"), ("bridge", "fdb", "show"), ("ip", "neigh")):
                r = nskit.nsexec(self.hns(h), *cmd, check=False, timeout=10)
                out.append("--- %s: %s\n%s" % (h, " ".join(cmd), (r.stdout or "")[-1500:]))
        logs = sorted(glob.glob(os.path.join(self.dir, "state", "tinc", "*", "*", "tinc.log")))
        dumped = [log for log in logs if self._tinc_dump(os.path.dirname(log))]
        for log in dumped:
            try:
                nskit.wait_until(lambda log=log: "End of connections" in open(log, errors="replace").read()[-20000:],
                                 timeout=5, what="tincd's dump in %s" % log)
            except AssertionError as e:
                out.append(str(e))
        for log in logs:
            with open(log, errors="replace") as f:
                out.append("--- %s\n%s" % (os.path.relpath(log, self.dir), f.read()[-8000:]))
        return "\n".join(out)

    @staticmethod
    def _tinc_dump(confdir):
        """Ask this fabric's tincd (by the pid file in its own configuration directory) to log its nodes (status bits
        with reachable and validkey, nexthop, via, PMTU), edges, subnets (SIGUSR2) and connections (SIGUSR1)."""
        try:
            with open(os.path.join(confdir, "tinc.pid")) as f:
                pid = int(f.read().split()[0])
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if confdir.encode() not in f.read():
                    return False
            os.kill(pid, signal.SIGUSR2)
            os.kill(pid, signal.SIGUSR1)
            return True
        except (OSError, ValueError, IndexError):
            return False

    def hns(self, host):
        return "%s-%s" % (self.name, host)

    def cns(self, short):
        return "%s-%s" % (self.name, short)

    def topology(self, kind, hosts=HOSTS, extra=None):
        ov = {"type": kind}
        if kind == "vxlan":
            ov["vni"] = 4242
        topo = {
            "hosts": {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in HOSTS},
            "networks": {"ov": {"subnet": SUBNET[kind], "overlay": ov}},
            "containers": {"c%s" % h[1:]: {"host": h, "netns": self.cns("c" + h[1:]),
                                           "interfaces": [{"network": "ov"}]} for h in hosts},
        }
        if extra:
            extra(topo)
        return topo

    def _write(self, obj):
        self.files += 1
        path = os.path.join(self.dir, "in-%d.json" % self.files)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def cli(self, host, *args, ok=True):
        r = subprocess.run(["nsenter", "--net=/run/netns/%s" % self.hns(host), "--"] + CLI + list(args) +
                           ["--host", host, "--state-dir", os.path.join(self.dir, "state")] +
                           (["--json"] if args[0] == "apply" else []),
                           capture_output=True, text=True, timeout=120, check=False)
        if ok:
            # apply --check exits 2 when changes are pending
            assert r.returncode == 0 or (r.returncode == 2 and "--check" in args), \
                "netstitch %s on %s failed: %s" % (args[0], host, r.stderr)
            assert "Traceback" not in r.stderr
            return json.loads(r.stdout)
        return r

    def apply_all(self, topo, hosts=None, prepare=None):
        """Apply on each host (default: every host of the topology); first gather every host's facts (tinc keys,
        addresses) when the topology needs them, as the role does."""
        hosts = hosts or tuple(topo["hosts"])
        path = self._write(topo)
        if prepare is None:
            prepare = bool(topo.get("links")) or any(
                (n.get("overlay") or {}).get("type") == "tinc" for n in topo["networks"].values())
        args = ["apply", path]
        if prepare:
            peers = {h: self.cli(h, "prepare", path)["facts"] for h in hosts}
            args += ["--peers", self._write(peers)]
        return {h: self.cli(h, *args) for h in hosts}


@pytest.fixture
def fabric(tmp_path):
    f = Fabric(tmp_path)
    try:
        f.up()
        yield f
    finally:
        f.down()
    left = [ns for ns in nskit.netns_list() if ns.startswith(f.name)]
    assert not left, "namespaces left behind: %s" % left
