"""`netstitch boot` (what a host without systemd runs at boot, and what netstitch-boot.service runs): after everything
netstitch made in the kernel is gone, as after a reboot, it applies the last applied spec again from the state
directory alone (leases, the spec, the peers' facts): the same addresses, namespaces made again, nftables back; a
second boot changes nothing. Here the "reboot" removes the lab host's bridges, container namespaces and nft table."""

import json
import subprocess

from nskit import PY, base_topology, endpoints, ping

# the checkout's command line with the venv's Python (it has the libnftables binding)
CLI = [PY, "-m", "ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.cli"]


def boot(env, *extra):
    cmd = ["nsenter", "--net=/run/netns/%s" % env.hostns] + CLI + [
        "boot", "--host", env.HOST, "--state-dir", env.state_dir, "--json"] + list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return r.returncode, lines[-1] if lines else None


def reboot(env):
    """What a reboot takes away: the container namespaces, netstitch's links and its nftables table."""
    for ns in env.mine():
        subprocess.run(["ip", "netns", "del", ns], check=True)
    for name, link in env.links().items():
        if name.startswith("nsbr-") or link.get("linkinfo", {}).get("info_kind") == "veth" and name != "eth0":
            env.ip("link", "del", name, check=False)
    env.nft("delete", "table", "inet", "netstitch", check=False)
    env.nft("delete", "table", "bridge", "netstitch", check=False)
    assert not env.mine() and not env.has_netstitch_table()
    assert not [n for n in env.links() if n.startswith("nsbr-")], env.links()


def test_boot_restores_the_last_applied_spec(env):
    code, line = boot(env)
    assert code == 0 and line["event"] == "skip", line          # nothing applied yet: nothing to do, no failure
    text = subprocess.run(CLI + ["boot", "--host", env.HOST, "--state-dir", env.state_dir], capture_output=True,
                          text=True, timeout=60, check=False)   # readable by default
    assert text.returncode == 0 and "host %s: nothing applied on this host yet" % env.HOST in text.stdout, text
    topo = base_topology(env)
    before = endpoints(env.apply(topo))
    assert ping(env.ns("web"), "10.77.1.1")
    reboot(env)
    code, line = boot(env, "--without-docker")
    assert code == 0 and line["event"] == "restored" and line["changed"] and line["actions"] > 5, line
    assert sorted(env.mine()) == sorted(env.ns(c) for c in ("web", "web2", "api", "db"))
    assert ping(env.ns("web"), "10.77.1.1") and ping(env.ns("web2"), "10.77.1.10")
    assert env.has_netstitch_table()
    after = env.gather()
    assert after["in_sync"] is True, after["pending"]
    for key, ep in before.items():                               # the same addresses, from the leases
        assert after["endpoints"][key]["address"] == ep["address"], (key, after["endpoints"][key], ep)
    code, line = boot(env)
    assert code == 0 and line["changed"] is False, line
