"""Namespaces and topologies for the benchmarks. Everything made here carries the run's unique prefix (``bn`` +
random hex) and is removed by ``Run.cleanup`` (called from a finally block), whatever failed. Nothing outside the
namespaces (and Docker objects) the benchmark created is ever changed: every `ip` command runs with ``-n`` or inside
``nsenter --net=/run/netns/<ours>``."""

import json
import math
import os
import secrets
import subprocess
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(TOP, ".venv", "bin", "python")
WORKER = os.path.join(TOP, "bench", "nsworker.py")
NETNS_DIR = "/run/netns"
PER_BRIDGE = 250           # endpoints per bridge (a bridge takes at most 1,024 ports)


def run(*args, input=None, timeout=600, check=True):
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args[:6]), r.returncode, (r.stderr or r.stdout)[-2000:]))
    return r


def timed(*args, input=None, timeout=600):
    t0 = time.monotonic()
    r = run(*args, input=input, timeout=timeout)
    return time.monotonic() - t0, r


def netns_list():
    try:
        return os.listdir(NETNS_DIR)
    except OSError:
        return []


def ip_batch(lines, ns=None, timeout=600):
    """One `ip -batch` process (optionally `ip -n NS -batch`); returns its wall time."""
    args = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    return timed(*args, input="\n".join(lines) + "\n", timeout=timeout)[0]


class Run(object):
    """One benchmark run: a unique prefix and the namespaces made under it."""

    def __init__(self, workdir):
        self.prefix = "bn" + secrets.token_hex(3)
        self.workdir = workdir
        self.seq = 0
        os.makedirs(workdir, exist_ok=True)

    def name(self, what):
        self.seq += 1
        return "%s%s%d" % (self.prefix, what, self.seq)

    def add_netns(self, names):
        """Create namespaces in one `ip -batch` (not timed by the callers: containers exist before networking)."""
        for i in range(0, len(names), 500):
            ip_batch(["netns add %s" % n for n in names[i:i + 500]])

    def del_netns(self, names):
        names = [n for n in names if os.path.exists(os.path.join(NETNS_DIR, n))]
        for i in range(0, len(names), 500):
            run("ip", "-batch", "-", input="".join("netns del %s\n" % n for n in names[i:i + 500]), check=False)

    def mine(self):
        return sorted(n for n in netns_list() if n.startswith(self.prefix))

    def cleanup(self):
        stop_daemons(self.prefix)
        self.del_netns(self.mine())

    def host(self):
        """A fresh, empty "host" namespace with loopback up."""
        ns = self.name("h")
        self.add_netns([ns])
        run("ip", "-n", ns, "link", "set", "lo", "up")
        return ns


def stop_daemons(prefix):
    """Kill processes the benchmark started inside its namespaces (iperf3, tincd), found by their namespace file."""
    import signal
    mine = set()
    for n in netns_list():
        if n.startswith(prefix):
            try:
                mine.add(os.stat(os.path.join(NETNS_DIR, n)).st_ino)
            except OSError:
                pass
    if not mine:
        return
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % pid).st_ino in mine:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


# -- topologies ------------------------------------------------------------------------------------------------------
def endpoints_topology(host, containers, per_bridge=PER_BRIDGE):
    """N single-interface containers (namespace names given) on one host, split over ceil(N/per_bridge) host-local
    networks 10.(100+k).0.0/22 (masquerade on, as by default)."""
    nb = max(1, math.ceil(len(containers) / per_bridge))
    nets = {"n%d" % k: {"subnet": "10.%d.0.0/22" % (100 + k)} for k in range(nb)}
    conts = {c: {"host": host, "interfaces": [{"network": "n%d" % (i // per_bridge)}]}
             for i, c in enumerate(containers)}
    return {"version": 1, "hosts": {host: {}}, "networks": nets, "containers": conts}


def empty_topology(host):
    return {"version": 1, "hosts": {host: {}}, "networks": {}, "containers": {}}


def host_spec(topology, host):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec as comp
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
    return comp.host_specs(validate.load(topology))[host]


def engine_apply(hostns, spec_path, state_dir, profile=None, check=False):
    """engine.apply in a fresh Python process inside the host namespace (as the apply module runs): returns the
    engine's result plus ``process`` (wall time of the whole process, interpreter start and imports included)."""
    args = ["nsenter", "--net=%s/%s" % (NETNS_DIR, hostns), "--", PY, WORKER, spec_path, state_dir]
    if profile:
        args += ["--profile", profile]
    if check:
        args.append("--check")
    t, r = timed(*args, timeout=900)
    out = json.loads(r.stdout)
    out["process"] = round(t, 4)
    return out


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f)
    return path


# -- the machine ------------------------------------------------------------------------------------------------------
def _cpu_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def settle(max_wait=8.0, busy_below=0.5, window=0.5):
    """Wait (at most ``max_wait`` s) until the machine is quiet: less than ``busy_below`` of a CPU busy over
    ``window`` s (the kernel frees removed namespaces and links in the background). Returns the last load seen."""
    ncpu = os.cpu_count() or 1
    end = time.monotonic() + max_wait
    while True:
        b0, t0 = _cpu_busy()
        time.sleep(window)
        b1, t1 = _cpu_busy()
        busy = (b1 - b0) / max(1, t1 - t0) * ncpu
        if busy < busy_below or time.monotonic() > end:
            return round(busy, 2)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine():
    import platform
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(*cmd):
        try:
            return run(*cmd, check=False, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    return {"kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "iproute2": version("ip", "-V"), "docker": version("docker", "version", "--format", "{{.Server.Version}}"),
            "iperf3": version("iperf3", "--version"), "tincd": version("tincd", "--version"),
            "ansible": version(os.path.join(TOP, ".venv", "bin", "ansible-playbook"), "--version"),
            "loadavg_start": loadavg()}


def links_of(ns):
    """Names of the links in a namespace (one `ip -j link`)."""
    return sorted(d["ifname"] for d in json.loads(run("ip", "-n", ns, "-j", "link", "show").stdout))


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2.0
