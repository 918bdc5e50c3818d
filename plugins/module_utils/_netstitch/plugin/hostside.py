# -*- coding: utf-8 -*-
# Copyright: netstitch contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the Docker plugin and the Ansible path meet, on one host: the plugin's state file, the short lease lock,
the view of the host the plugin answers from, and what info shows. The apply reads the plugin's state with the
host's current state (host.machine) and the planner keeps plugin endpoints owned but never planned (plugin.core:
their addresses reserved, their published ports in netstitch's maps).

    <state_dir>/<host>.json          the apply's host state (leases, last applied spec): read here, never written
    <state_dir>/<host>.plugin-state  the plugin's state (Docker networks, endpoints, pools, leases): written by the
                                     plugin only, read by the apply
    <state_dir>/<host>.lease.lock    flock taken around a lease read-modify-write by both sides (milliseconds)
"""

import fcntl
import ipaddress
import json
import os
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import core

LEASE_LOCK_TIMEOUT = 30.0


def state_path(state_dir, host):
    return os.path.join(state_dir, "%s.plugin-state" % host)


def load(state_dir, host):
    """The plugin's state ({} parts filled in), or an empty one when there is none (no plugin on this host)."""
    try:
        with open(state_path(state_dir, host)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    out = core.empty_state()
    for k in list(out) + ["leases6"]:
        if isinstance(data.get(k), dict):
            out[k] = data[k]
    return out


def save(state_dir, host, state):
    os.makedirs(state_dir, exist_ok=True)
    path = state_path(state_dir, host)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, sort_keys=True, indent=1)
    os.rename(tmp, path)


class FileLock(object):
    """An exclusive flock with a deadline; ``busy`` builds the error message (it may name the holder)."""

    def __init__(self, path, timeout, busy=None):
        self.path = path
        self.timeout = timeout
        self.busy = busy
        self.fd = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        end = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > end:
                    holder = lock_holder(self.path)
                    os.close(self.fd)
                    self.fd = None
                    raise ApplyError(self.busy(holder) if self.busy else "%s is held by %s for more than %gs"
                                     % (self.path, holder or "another process", self.timeout))
                time.sleep(0.02)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def lease_lock(state_dir, host, timeout=LEASE_LOCK_TIMEOUT):
    return FileLock(os.path.join(state_dir, "%s.lease.lock" % host), timeout)


def lock_holder(path):
    """'pid N (command line)' of the process holding a flock on ``path`` (from /proc/locks), or None."""
    try:
        ino = os.stat(path).st_ino
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[4] == "->":
            continue
        try:
            pid, inode = int(parts[4]), int(parts[5].split(":")[2])
        except (ValueError, IndexError):
            continue
        if inode != ino or pid == os.getpid():
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            cmd = "?"
        return "pid %d (%s)" % (pid, cmd[:160])
    return None


# -- the view the plugin answers from --------------------------------------------------------------------------------
def fixed_addresses(spec):
    """{(container, ifname): address} of the spec's interfaces with a fixed address."""
    return {(c["name"], i["name"]): i["ip"] for c in spec["containers"] for i in c["interfaces"] if i["ip"]}


def applied_addresses(spec, leases):
    """({(container, ifname): IPv4Address}, {(container, ifname): IPv6Address}) of the apply's containers: their
    leases (an IPv6 one under "<container>/<ifname>/6", ipam.lease_key6) and their fixed addresses."""
    addresses, addresses6 = {}, {}
    for ls in (leases or {}).values():
        for k, ip in ls.items():
            c, _sep, ifn = k.partition("/")
            if ifn.endswith("/6"):
                addresses6[(c, ifn[:-2])] = ipaddress.IPv6Address(ip)
            else:
                addresses[(c, ifn)] = ipaddress.IPv4Address(ip)
    for k, ip in fixed_addresses(spec).items():
        addresses[k] = ipaddress.IPv4Address(ip)
    addresses6.update({(c["name"], i["name"]): ipaddress.IPv6Address(i["ip6"]) for c in spec["containers"]
                       for i in c["interfaces"] if i.get("ip6")})
    return addresses, addresses6


def view(host, spec, leases):
    """What the protocol core needs from the apply's host state: networks by name, the addresses the Ansible path
    holds per network, and the ports the topology publishes here. None when nothing was applied."""
    if spec is None:
        return {"host": host, "networks": None}
    taken = {}
    for net, ls in (leases or {}).items():
        taken.setdefault(net, set()).update(ls.values())
    for c in spec["containers"]:
        for i in c["interfaces"]:
            if i["ip"]:
                taken.setdefault(i["network"], set()).add(i["ip"])
            if i.get("ip6"):
                taken.setdefault(i["network"], set()).add(i["ip6"])
    for n in spec["networks"]:
        rng = (n.get("docker") or {}).get("ip_range")
        if rng:     # the range the bridge driver allocates from, where the network is also offered that way
            taken.setdefault(n["name"], set()).update(str(a) for a in ipaddress.IPv4Network(rng))
    published = {(p["protocol"], p["host_ip"], p["host_port"]): p["container"] for p in spec.get("publish", [])
                 if not p["container"].startswith(core.PLUGIN_CONTAINER)}
    return {"host": host, "networks": {n["name"]: n for n in spec["networks"]}, "taken": taken,
            "published": published}


# -- what info shows --------------------------------------------------------------------------------------------
def summary(state):
    """The plugin's endpoints for netstitch.fabric.info (Docker's `docker port` stays empty for remote drivers)."""
    out = {}
    for eid, rec in sorted(state["endpoints"].items()):
        out[eid[:12]] = {"network": rec["network"], "address": rec["address"], "mac": rec["mac"],
                         "host_ifname": rec["host_ifname"],
                         "published": [_port_text(p) for p in rec["ports"]]}
        if rec.get("address6"):
            out[eid[:12]]["address6"] = rec["address6"]
    return out


def _port_text(p):
    return "%s %s:%d -> %d" % (p["protocol"], p["host_ip"] or "*", p["host_port"], p["container_port"])
