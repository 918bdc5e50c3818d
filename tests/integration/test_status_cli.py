"""The command line on a lab host (run inside the host's namespace, as an operator runs it there): drift made by
hand for every kind of object shows in `netstitch status` (exit 2) and in info's drift, and a run repairs it; the
exit status of every command (0 done or nothing pending, 1 error, 2 pending/drift/failed checks); readable output
grouped by kind by default, JSON with --json; the probe."""

import json
import os
import re
import shutil
import signal
import subprocess

import yaml

import nskit
from nskit import nsexec
from test_diff import PEER, _link, fabric

CLI = [nskit.PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"]


def cli(env, *args, host=True):
    extra = ["--host", env.HOST, "--state-dir", env.state_dir] if host else []
    r = subprocess.run(["nsenter", "--net=/run/netns/%s" % env.hostns, "--"] + CLI + list(args) + extra,
                       capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def write(env, topo, name="topo.yml"):
    path = os.path.join(os.path.dirname(env.state_dir), name)
    with open(path, "w") as f:
        yaml.safe_dump(topo, f)
    return path


def test_status_names_drift_of_every_kind_and_exits_2(env):
    topo = fabric(env)
    _link(topo, name="webby")
    topo["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80}]
    tinc = bool(shutil.which("tincd"))
    if tinc:
        topo["networks"]["sec"] = {"subnet": "10.76.0.0/24", "overlay": {"type": "tinc"}}
        topo["containers"]["sc"] = {"host": env.HOST, "netns": env.ns("sc"), "interfaces": [{"network": "sec"}]}
    nsexec(env.hostns, "iptables", "-N", "DOCKER-USER")
    path = write(env, topo)
    r = cli(env, "apply", path)
    assert r.returncode == 0, r.stderr
    try:
        r = cli(env, "status")
        assert r.returncode == 0 and "in sync with the last applied topology" in r.stdout, r.stdout + r.stderr

        # drift, by hand, one object of every kind
        h = env.hostns
        env.ip("link", "set", "nsbr-front", "mtu", "1400")                                  # bridge
        env.ip("addr", "flush", "dev", "eth0", ns=env.ns("db"))                             # endpoint
        nskit.del_netns(env.ns("api"))                                                      # namespace
        fdb = [l for l in nsexec(h, "bridge", "fdb", "show", "dev", "nsvx178").stdout.splitlines()
               if "dst %s" % PEER in l and not l.startswith("00:00:00:00:00:00")][0].split()[0]
        nsexec(h, "bridge", "fdb", "del", fdb, "dev", "nsvx178", "dst", PEER)               # fdb
        env.ip("route", "del", "10.79.2.0/24")                                              # routed overlay
        env.nft("delete", "element", "inet", "netstitch", "pub_any_addr", "{ tcp . 8080 }")  # published port
        env.nft("delete", "element", "inet", "netstitch", "pub_any_port", "{ tcp . 8080 }")
        env.nft("flush", "chain", "inet", "netstitch", "forward")                  # links, isolation, internal
        env.nft("flush", "chain", "inet", "netstitch", "postrouting")              # masquerade
        with open("/etc/netns/%s/hosts" % env.ns("web2"), "w") as f:                        # hosts file
            f.write("127.0.0.1\tlocalhost\n")
        nsexec(h, "iptables", "-D", "DOCKER-USER", "-i", "nsbr-front", "-m", "comment", "--comment",
               "netstitch nsbr-front out", "-j", "ACCEPT")                                   # DOCKER-USER
        if tinc:
            pid = int(open(os.path.join(env.state_dir, "tinc", env.HOST, "sec", "tinc.pid")).read().split()[0])
            os.kill(pid, signal.SIGTERM)
            nskit.wait_until(lambda: not os.path.exists("/proc/%d" % pid), what="tincd to stop")

        r = cli(env, "status")
        assert r.returncode == 2, r.stdout + r.stderr
        out = r.stdout
        assert re.search(r"^host node: drifted from the last applied topology \(\d+ differences\)$", out, re.M), out
        want = [
            "bridge nsbr-front (network front) drifted: now mtu 1400, applied mtu 1500",
            "endpoint db/eth0 (network vault) drifted: now -, applied address 10.77.3.20/24",
            "namespace %s missing" % env.ns("api"),
            "endpoint api/eth0 (network back) missing",
            "fdb %s dst %s on nsvx178 missing" % (fdb, PEER),
            "route 10.79.2.0/24 missing: via %s, host peer, network rt" % PEER,
            "published port 8080/tcp -> web:80 missing",
            "link web2 -> web tcp/80 missing",
            "isolation of network front missing",
            "network vault internal (nothing leaves it) missing",
            "masquerade of network front missing",
            "hosts file /etc/netns/%s/hosts missing: webby 10.77.1.10" % env.ns("web2"),
            "DOCKER-USER accept from bridge nsbr-front missing",
        ] + (["tinc network sec drifted: now daemon stopped, applied bridge nsbr-sec, mtu 1420, daemon running"]
             if tinc else [])      # the tap goes with its daemon
        for w in want:
            assert w in out, (w, out)
        for kind in ("bridge:", "endpoint:", "namespace:", "fdb:", "route:", "published port:", "link:",
                     "isolation:", "masquerade/internal:", "hosts file:", "DOCKER-USER:") + (("tinc:",) if tinc else ()):
            assert re.search(r"^%s$" % re.escape(kind), out, re.M), (kind, out)
        # the same through the info module's engine call, and as JSON
        g = env.gather()
        assert g["in_sync"] is False and "bridge nsbr-front (network front) drifted: now mtu 1400, applied mtu 1500" \
            in g["drift"]["bridge"]
        r = cli(env, "status", "--json")
        assert r.returncode == 2 and json.loads(r.stdout)["drift"] == g["drift"]

        # a run repairs every kind of drift
        r = cli(env, "apply", path)
        assert r.returncode == 0, r.stderr
        r = cli(env, "status")
        assert r.returncode == 0, r.stdout
    finally:
        cli(env, "down")


def test_exit_codes_and_output_of_every_command(env):
    topo = nskit.base_topology(env)
    path = write(env, topo)

    # validate: 0 / 1 with every problem, never a traceback
    r = cli(env, "validate", path, host=False)
    assert r.returncode == 0 and "valid (1 hosts, 3 networks, 4 containers)" in r.stdout
    bad = dict(topo, networks=dict(topo["networks"], back={"subnet": "10.77.1.0/25"}))
    r = cli(env, "validate", write(env, bad, "bad.yml"), host=False)
    assert r.returncode == 1 and "networks.back.subnet" in r.stderr, r.stderr
    r = cli(env, "plan", "/nonexistent.yml")
    assert r.returncode == 1 and r.stderr
    r = cli(env, "plan", path, "--host", "nohost", host=False)
    assert r.returncode == 1 and "host 'nohost' is not in the topology" in r.stderr, r.stderr

    # plan: readable, grouped by kind, nothing changed; --detailed-exitcode 2 when changes are pending
    r = cli(env, "plan", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("host node: 17 changes planned\n") and "\nbridge:\n  bridge nsbr-back " in r.stdout \
        and "\n  bridge nsbr-front (network front) added: mtu 1500" in r.stdout, r.stdout
    assert not env.link("nsbr-front")
    assert cli(env, "plan", path, "--detailed-exitcode").returncode == 2

    # apply --check: 2 while changes are pending, nothing changed
    r = cli(env, "apply", path, "--check")
    assert r.returncode == 2 and "pending (check mode: nothing was changed)" in r.stdout, r.stdout
    assert not env.link("nsbr-front") and not env.mine()

    # apply: readable by default, JSON with --json; then --check exits 0
    r = cli(env, "apply", path)
    assert r.returncode == 0, r.stderr
    assert re.match(r"host node: \d+ changes applied \(.*netlink \d+.*\) in [0-9.]+s\n", r.stdout), r.stdout
    assert "\nendpoint:\n  endpoint " in r.stdout and "masquerade of network front added" in r.stdout
    r = cli(env, "apply", path, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["changed"] is False
    r = cli(env, "apply", path, "--check")
    assert r.returncode == 0 and r.stdout.strip() == "host node: nothing to do", r.stdout
    assert cli(env, "plan", path, "--detailed-exitcode").returncode == 0

    # status: 0 in sync, 2 after drift
    assert cli(env, "status").returncode == 0
    env.ip("link", "set", "nsbr-back", "mtu", "1400")
    r = cli(env, "status")
    assert r.returncode == 2 and "bridge nsbr-back (network back) drifted" in r.stdout, r.stdout

    # probe: pings from this host's containers; 0 when every check holds
    cli(env, "apply", path)
    r = cli(env, "probe", path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^\d+ checks, \d+ as expected, 0 mismatched$", r.stdout, re.M), r.stdout
    nskit.del_netns(env.ns("web2"))                  # a container gone: its checks fail
    r = cli(env, "probe", path)
    assert r.returncode == 2 and re.search(r"[1-9]\d* mismatched$", r.stdout, re.M), r.stdout
    nskit.wait_until(lambda: env.link(nskit.endpoints(env.apply(topo, check=True))["web2/eth0"]["host_ifname"])
                     is None, what="web2's veth to go with its namespace")

    # down: --check 2 and nothing changed; down 0; again 0 with nothing to do
    r = cli(env, "down", "--check")
    assert r.returncode == 2 and "\n  bridge nsbr-front (network front) removed: " in r.stdout, r.stdout
    assert env.link("nsbr-front")
    r = cli(env, "down")
    assert r.returncode == 0 and "removed" in r.stdout, r.stdout + r.stderr
    assert not env.link("nsbr-front") and not env.mine()
    r = cli(env, "down")
    assert r.returncode == 0 and r.stdout.strip() == "host node: nothing to do", r.stdout
    r = cli(env, "status")
    assert r.returncode == 0 and "has not applied a topology here" in r.stdout

    # --version, and a short example in every --help
    r = cli(env, "--version", host=False)
    assert r.returncode == 0 and re.match(r"netstitch \d+\.\d+", r.stdout)
    for sub in ("validate", "plan", "apply", "status", "down", "probe", "watch", "compile", "prepare"):
        r = cli(env, sub, "--help", host=False)
        assert r.returncode == 0 and "example:\n  netstitch %s" % sub in r.stdout, (sub, r.stdout)
