"""The built-in multi-host lab: several "hosts" on one machine, each a network namespace on a shared underlay switch.

    lab.py up   [--name fab] [--hosts 3] [--dir .lab/fab]    build it (idempotent) and write an Ansible inventory
    lab.py down [--name fab] [--dir .lab/fab]                remove it, with every namespace netstitch made for it
    lab.py env  [--name fab]                                 print the inventory path

Layout (documentation ranges only; nothing has a route off the machine):
  <name>-sw    the underlay switch (bridge sw0)
  <name>-hN    host N: eth0 192.0.2.N/24 on the switch, default route via the outside router
  <name>-out   the "outside world": eth0 192.0.2.254/24 on the switch, 198.51.100.1/32 and 203.0.113.1/32 on lo
Ansible reaches a host through the local connection and an interpreter wrapper that enters its namespace with
nsenter (network namespace only, so namespaces made inside are visible to the whole machine).
"""

import argparse
import json
import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNDERLAY = "192.0.2.%d"
OUTSIDE_IP = "192.0.2.254"
OUTSIDE_SERVICES = ["198.51.100.1", "203.0.113.1"]


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r


def netns_exists(name):
    return os.path.exists("/run/netns/" + name)


def ns_names(name, hosts):
    return ["%s-sw" % name, "%s-out" % name] + ["%s-h%d" % (name, i) for i in range(1, hosts + 1)]


def lab_dir(name, d=None):
    return os.path.abspath(d or os.path.join(TOP, ".lab", name))


def _add_port(sw, port, ns, ifname, addr):
    # made inside the switch namespace: nothing, not even for a moment, in the machine's own namespace
    sh("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
    sh("ip", "-n", sw, "link", "set", port, "master", "sw0", "up")
    sh("ip", "-n", ns, "addr", "add", addr, "dev", ifname)
    sh("ip", "-n", ns, "link", "set", ifname, "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def up(name, hosts, d=None, python=None):
    d = lab_dir(name, d)
    python = python or os.path.join(TOP, ".venv", "bin", "python")
    os.makedirs(os.path.join(d, "bin"), exist_ok=True)
    os.makedirs(os.path.join(d, "state"), exist_ok=True)
    sw = "%s-sw" % name
    if not netns_exists(sw):
        sh("ip", "netns", "add", sw)
        sh("ip", "-n", sw, "link", "add", "sw0", "type", "bridge")
        sh("ip", "-n", sw, "link", "set", "sw0", "up")
    out = "%s-out" % name
    if not netns_exists(out):
        sh("ip", "netns", "add", out)
        _add_port(sw, "%s-o" % name[:10], out, "eth0", OUTSIDE_IP + "/24")
        for a in OUTSIDE_SERVICES:
            sh("ip", "-n", out, "addr", "add", a + "/32", "dev", "lo")
    inv = ["[fabric]"]
    for i in range(1, hosts + 1):
        h = "%s-h%d" % (name, i)
        if not netns_exists(h):
            sh("ip", "netns", "add", h)
            _add_port(sw, "%s-%d" % (name[:10], i), h, "eth0", UNDERLAY % i + "/24")
            sh("ip", "-n", h, "route", "add", "default", "via", OUTSIDE_IP)
        wrapper = os.path.join(d, "bin", "%s-python" % h)
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s \"$@\"\n" % (h, python))
        os.chmod(wrapper, 0o755)
        inv.append("%s ansible_connection=local ansible_python_interpreter=%s netstitch_underlay=%s"
                   % (h, wrapper, UNDERLAY % i))
    # the hosts are namespaces of this machine: no boot unit (it would land on the machine's own filesystem)
    inv += ["", "[fabric:vars]", "netstitch_state_dir=%s" % os.path.join(d, "state"), "netstitch_boot=false", ""]
    with open(os.path.join(d, "inventory.ini"), "w") as f:
        f.write("\n".join(inv))
    with open(os.path.join(d, "lab.json"), "w") as f:
        json.dump({"name": name, "hosts": hosts, "namespaces": ns_names(name, hosts)}, f)
    return d


def owned_namespaces(d):
    """Namespaces netstitch created for this lab's hosts (from their state files)."""
    out = set()
    sd = os.path.join(d, "state")
    for fn in os.listdir(sd) if os.path.isdir(sd) else []:
        if fn.endswith(".json"):
            try:
                with open(os.path.join(sd, fn)) as f:
                    out.update(json.load(f).get("owned_netns", []))
            except (OSError, ValueError):
                pass
    return out


def stop_daemons(d):
    """Stop the daemons netstitch started for this lab's hosts (tincd), found by their configuration path."""
    stop_state_daemons(os.path.join(d, "state"), (b"tincd",))


def stop_state_daemons(state_dir, names, timeout=5.0):
    """Stop the processes named ``names`` (program basenames) that have ``state_dir`` on their command line: the
    daemons netstitch started under that state directory, and nothing another lab, test or the machine runs. One
    that ignores SIGTERM for ``timeout`` seconds is killed (tinc 1.0 can deadlock in its own signal handler)."""
    import signal
    import time
    mark = state_dir.encode()
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if mark in cmd and os.path.basename(cmd.split(b"\0")[0]) in names:
            pids.append(int(pid))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + timeout
    while any(os.path.exists("/proc/%d" % p) for p in pids) and time.monotonic() < end:
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def down(name, d=None):
    d = lab_dir(name, d)
    stop_daemons(d)
    hosts = 0
    try:
        with open(os.path.join(d, "lab.json")) as f:
            hosts = json.load(f)["hosts"]
    except (OSError, ValueError, KeyError):
        hosts = 16
    owned = sorted(owned_namespaces(d))
    for ns in owned + ns_names(name, hosts):
        if netns_exists(ns):
            sh("ip", "netns", "del", ns, check=False)
    try:    # and the names netstitch wrote for those namespaces (/etc/netns/<netns>/hosts)
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import hostsfile
        for ns in owned:
            hostsfile.write_block(ns, [])
    except ImportError:
        pass
    sh("rm", "-rf", d)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("cmd", choices=["up", "down", "env"])
    p.add_argument("--name", default="fab")
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--dir")
    a = p.parse_args(argv)
    if a.cmd == "up":
        d = up(a.name, a.hosts, a.dir)
        print(os.path.join(d, "inventory.ini"))
    elif a.cmd == "down":
        down(a.name, a.dir)
    else:
        print(os.path.join(lab_dir(a.name, a.dir), "inventory.ini"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
