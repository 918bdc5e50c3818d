"""Helpers for the kernel integration tests: a lab host per test, engine runs inside it, packets between namespaces,
and byte-for-byte snapshots of kernel state. Every command that changes the kernel runs inside a namespace the tests
created (``ip -n``, ``ip netns exec``, ``nsenter --net=``); nothing is made in the machine's own namespace, even for
a moment (only entries of /run/netns, one per test namespace)."""

import importlib.util
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
VENV_PY = os.path.join(TOP, ".venv", "bin", "python")
PY = VENV_PY if os.path.exists(VENV_PY) else sys.executable
SYS_PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
HELPER = os.path.join(HERE, "nshelper.py")
ETC_NETNS = "/etc/netns"
OUTSIDE = "198.51.100.1"        # lab.py puts it on lo of <lab>-out, reached through the hosts' default route


def load_lab_module():
    spec = importlib.util.spec_from_file_location("netstitch_lab", os.path.join(TOP, "lab", "lab.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


labmod = load_lab_module()


def run(*args, check=True, timeout=30, input=None):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (" ".join(args), r.returncode, (r.stderr or r.stdout).strip()))
    return r


def netns_list():
    try:
        return sorted(os.listdir("/run/netns"))
    except OSError:
        return []


def netns_exists(name):
    return os.path.exists("/run/netns/" + name)


def del_netns(name):
    if netns_exists(name):
        run("ip", "netns", "del", name, check=False)


def nsexec(ns, *cmd, check=True, timeout=30, input=None):
    return run("nsenter", "--net=/run/netns/%s" % ns, "--", *cmd, check=check, timeout=timeout, input=input)


def add_netns(name):
    """A namespace made by the tests (not by netstitch). IPv6 duplicate address detection is off in it, so its
    `ip addr` output does not change by itself a second after an interface appears (snapshots compare bytes)."""
    run("ip", "netns", "add", name)
    nsexec(name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")


# the daemons netstitch may start for a test (name server, tinc, BIRD): stopped by the test's state directory
DAEMONS = (b"dnsmasq", b"tincd", b"bird")


# -- the lab -----------------------------------------------------------------------------------------------------------
class Lab(object):
    """One lab per test module (lab.py builds the switch and the outside router); one fresh host namespace per test,
    built with lab.py's own recipe, so tests never see each other's leftovers."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        self.count = 0
        self.out = "%s-out" % name
        self.sw = "%s-sw" % name

    def up(self):
        labmod.up(self.name, 0, d=self.dir, python=PY)

    def new_host(self):
        self.count += 1
        k = self.count
        ns = "%s-h%d" % (self.name, k)
        add_netns(ns)
        labmod._add_port(self.sw, "%s-%d" % (self.name[:10], k), ns, "eth0", labmod.UNDERLAY % k + "/24")
        run("ip", "-n", ns, "route", "add", "default", "via", labmod.OUTSIDE_IP)
        return ns, labmod.UNDERLAY % k

    def mine(self):
        return [n for n in netns_list() if n == self.name or n.startswith(self.name + "-")]

    def down(self):
        try:
            labmod.down(self.name, d=self.dir)
        finally:
            for ns in self.mine():
                del_netns(ns)


# -- one test's host ---------------------------------------------------------------------------------------------------
class Env(object):
    HOST = "node"     # the host's name in the topologies

    def __init__(self, lab, state_dir):
        self.lab = lab
        self.hostns, self.underlay = lab.new_host()
        self.state_dir = state_dir
        self.procs = []
        self.worker = None
        self.helper_log = os.path.join(os.path.dirname(state_dir), "helper.log")

    # names
    def ns(self, short):
        """A container namespace name unique to this test (removed by the teardown whoever made it)."""
        return "%s-%s" % (self.hostns, short)

    def mine(self):
        return [n for n in netns_list() if n.startswith(self.hostns + "-")]

    def cleanup(self):
        if self.worker is not None and self.worker.poll() is None:
            self.worker.stdin.close()
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=0.5 if p is self.worker else 0)
                except subprocess.TimeoutExpired:
                    p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        labmod.stop_state_daemons(self.state_dir, DAEMONS)
        for ns in self.mine() + [self.hostns]:
            del_netns(ns)
        # names written for this test's namespaces (/etc/netns/<netns>/), by netstitch or by the test itself:
        # `ip netns del` leaves them
        if os.path.isdir(ETC_NETNS):
            for d in os.listdir(ETC_NETNS):
                if d == self.hostns or d.startswith(self.hostns + "-"):
                    shutil.rmtree(os.path.join(ETC_NETNS, d), ignore_errors=True)

    # running the engine in the host namespace
    def _request(self, op, topology=None, check=False, lock_timeout=None, fail_at=None, vanish=None, group=None,
                 **extra):
        return json.dumps(dict({"op": op, "topology": topology, "host": self.HOST, "state_dir": self.state_dir,
                                "check": check, "lock_timeout": lock_timeout, "fail_at": fail_at, "vanish": vanish,
                                "group": group}, **extra))

    def _cmd(self):
        return ["nsenter", "--net=/run/netns/%s" % self.hostns, "--", PY, HELPER]

    def call(self, op, topology=None, check=False, lock_timeout=None, ok=True, fail_at=None, vanish=None, group=None,
             **extra):
        """One engine run in the host namespace, through a helper process kept for the test (see nshelper)."""
        if self.worker is None or self.worker.poll() is not None:
            with open(self.helper_log, "a") as log:
                self.worker = subprocess.Popen(self._cmd() + ["--serve"], stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, stderr=log, text=True)
            self.procs.append(self.worker)
        req = self._request(op, topology, check, lock_timeout, fail_at, vanish, group, **extra)
        self.worker.stdin.write(req + "\n")
        self.worker.stdin.flush()
        line = self.worker.stdout.readline()
        if not line:
            self.worker.wait(timeout=5)
            with open(self.helper_log) as f:
                raise AssertionError("the helper died (rc %s): %s" % (self.worker.returncode, f.read()[-3000:]))
        return self._reply(self.worker.returncode, line, "", ok)

    @staticmethod
    def _reply(rc, stdout, stderr, ok):
        try:
            reply = json.loads(stdout)
        except ValueError:
            raise AssertionError("helper failed (rc %d): %s %s" % (rc, stdout, stderr)) from None
        if ok is True and not reply["ok"]:
            raise AssertionError("apply failed: %s\n%s" % (reply["error"], reply.get("traceback", "")))
        if ok is False:
            assert not reply["ok"], "expected a failure, got %s" % json.dumps(reply.get("result"), indent=1)[:2000]
            assert reply["type"] != "crash", "expected a clean error, got a crash:\n%s" % reply.get("traceback")
            return reply
        return reply if ok is None else reply["result"]

    def apply(self, topology, check=False, **kw):
        return self.call("apply", topology, check=check, **kw)

    def gather(self):
        return self.call("gather")

    def teardown(self, check=False, **kw):
        """state: absent on this host (everything netstitch owns here goes)."""
        return self.call("teardown", check=check, **kw)

    def start_apply(self, topology, lock_timeout=None):
        p = subprocess.Popen(self._cmd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.procs.append(p)
        p.stdin.write(self._request("apply", topology, lock_timeout=lock_timeout))
        p.stdin.close()
        return p

    @staticmethod
    def wait_locking(p, timeout=30):
        """Wait until a started apply asks for the host lock (the helper says so on stderr)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = p.stderr.readline()
            if line.strip() == "locking":
                return
            if not line:
                break
        raise AssertionError("the apply never asked for the host lock (exit %s)" % p.poll())

    def finish(self, p, ok=None, timeout=60):
        out = p.stdout.read()
        err = p.stderr.read()
        rc = p.wait(timeout=timeout)
        return self._reply(rc, out, err, ok)

    # reading the host
    def ip(self, *args, ns=None, check=True):
        return run("ip", "-n", ns or self.hostns, *args, check=check).stdout

    def link(self, name, ns=None):
        """{"index", "mtu", "mac", "master", "kind", "alias", "addresses"} of one link, or None if missing."""
        r = run("ip", "-n", ns or self.hostns, "-j", "-d", "addr", "show", "dev", name, check=False)
        found = json.loads(r.stdout or "[]") if r.returncode == 0 else []
        if not found:
            return None     # missing; or gone between ip's look-up of the name and its dump (exit 0, "[]")
        d = found[0]
        return {"index": d["ifindex"], "mtu": d["mtu"], "mac": d.get("address"), "master": d.get("master"),
                "kind": (d.get("linkinfo") or {}).get("info_kind"), "alias": d.get("ifalias"),
                "up": "UP" in d.get("flags", []),
                "addresses": sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in d.get("addr_info", [])
                                    if a["family"] == "inet")}

    def links(self, ns=None):
        return {d["ifname"]: d for d in json.loads(run("ip", "-n", ns or self.hostns, "-j", "-d", "link").stdout)}

    def nft(self, *args, ns=None, check=True):
        return nsexec(ns or self.hostns, "nft", *args, check=check)

    def has_netstitch_table(self):
        return self.nft("list", "table", "inet", "netstitch", check=False).returncode == 0

    def snapshot(self, namespaces):
        """Byte-for-byte kernel state of the given namespaces (and which of ours exist), for before/after checks.
        Bridge timers (gc_timer and friends) tick on their own, so their values are blanked."""
        out = {"netns": sorted(self.mine())}
        for ns in namespaces:
            if not netns_exists(ns):
                out[ns] = None
                continue
            out[ns] = {
                "link": _untick(run("ip", "-n", ns, "-d", "link").stdout),
                "addr": _untick(run("ip", "-n", ns, "-d", "addr").stdout),
                "route": run("ip", "-n", ns, "route", "show", "table", "all").stdout,
                "nft": nsexec(ns, "nft", "list", "ruleset").stdout,
                "forward": nsexec(ns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout,
            }
        return out

    def wait_settled(self, namespaces, timeout=30.0):
        """Wait until no IPv6 address is tentative (DAD changes `ip addr` output on its own a moment later)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not any("tentative" in run("ip", "-n", ns, "addr").stdout for ns in namespaces if netns_exists(ns)):
                return
            time.sleep(0.1)


_TIMER = re.compile(r"\b(\w+_timer) +[0-9.]+")


def _untick(text):
    return _TIMER.sub(r"\1 -", text)


# -- packets -----------------------------------------------------------------------------------------------------------
def ping(ns, addr, timeout=1):
    return nsexec(ns, "ping", "-n", "-q", "-c", "1", "-W", str(timeout), addr, check=False).returncode == 0


def assert_no_ping(ns, addr, timeout=0.5):
    """``ns`` cannot reach ``addr``, although the namespace exists and has a route there (so the packet is sent and
    something on the way drops it): a namespace that was never made, or one without a route, cannot pass."""
    assert netns_exists(ns), "namespace %s does not exist" % ns
    route = nsexec(ns, "ip", "-6" if ":" in addr else "-4", "route", "get", addr, check=False)
    assert route.returncode == 0 and " dev " in route.stdout, "%s has no route to %s: %s" % (ns, addr, route.stderr)
    assert not ping(ns, addr, timeout=timeout), "%s reaches %s" % (ns, addr)


# both scripts take either family: the address says which (an IPv6 listener on "::" takes IPv4 as well)
_CONNECT = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b"hello\\n"); s.close(); print("connected")
except OSError as e:
    print("failed: %s" % e); sys.exit(1)
"""

_LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[1] == "::":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8); s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
while True:
    try:
        c, peer = s.accept()
    except socket.timeout:
        break
    print("peer %s" % peer[0], flush=True); c.close()
"""


def connect(ns, addr, port, timeout=1.0):
    """A TCP connection from namespace ``ns``: True when it is accepted within ``timeout`` seconds."""
    return nsexec(ns, SYS_PY, "-c", _CONNECT, addr, str(port), str(timeout), check=False,
                  timeout=timeout + 10).returncode == 0


class Listener(object):
    """A TCP listener in a namespace that records the source address of every connection it accepts."""

    def __init__(self, env, ns, addr, port, lifetime=20.0):
        self.p = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % ns, "--", SYS_PY, "-c", _LISTEN, addr,
                                   str(port), str(lifetime)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        env.procs.append(self.p)
        line = self.p.stdout.readline()
        assert line.strip() == "ready", "listener in %s did not start: %s %s" % (ns, line, self.p.stderr.read())

    def next_peer(self, timeout=5.0):
        """The source address of the next connection the listener accepts, or None when none comes in ``timeout``."""
        if not select.select([self.p.stdout], [], [], timeout)[0]:
            return None
        line = self.p.stdout.readline()
        return line.split()[1] if line.startswith("peer ") else None

    def peers(self):
        """Stop the listener and return the source addresses it saw."""
        self.p.kill()
        out = self.p.stdout.read()
        self.p.wait(timeout=5)
        return [l.split()[1] for l in out.splitlines() if l.startswith("peer ")]


# -- the topology most tests start from ---------------------------------------------------------------------------------
WEB_MAC = "02:00:5e:77:01:0a"


def base_topology(env):
    """Three networks on one host: ``front`` (masquerading), ``back`` (routed out without NAT), ``vault`` (internal);
    four containers, with fixed and allocated addresses, a fixed MAC, and one container on two networks."""
    return {
        "version": 1,
        "hosts": {env.HOST: {"underlay": env.underlay}},
        "networks": {
            "front": {"subnet": "10.77.1.0/24"},
            "back": {"subnet": "10.77.2.0/24", "masquerade": False},
            "vault": {"subnet": "10.77.3.0/24", "internal": True},
        },
        "containers": {
            "web": {"host": env.HOST, "netns": env.ns("web"),
                    "interfaces": [{"network": "front", "ip": "10.77.1.10", "mac": WEB_MAC}]},
            "web2": {"host": env.HOST, "netns": env.ns("web2"), "interfaces": [{"network": "front"}]},
            "api": {"host": env.HOST, "netns": env.ns("api"),
                    "interfaces": [{"network": "back", "name": "eth0"}, {"network": "vault", "name": "eth1"}]},
            "db": {"host": env.HOST, "netns": env.ns("db"),
                   "interfaces": [{"network": "vault", "ip": "10.77.3.20"}]},
        },
    }


def endpoints(result):
    """{"container/ifname": endpoint} from an apply result."""
    return {"%s/%s" % (e["container"], e["interface"]): e for e in result["endpoints"]}


def addr(cidr):
    return cidr.split("/")[0]


def assert_noop(res):
    """A rerun that finds nothing to do: not changed, no actions, not one kernel write (netlink, nft, any other)."""
    assert res["changed"] is False, res["actions"]
    assert res["actions"] == []
    assert res["writes"]["netlink"] == 0 and res["writes"]["nft"] == 0, res["writes"]
    assert not any(res["writes"].values()), res["writes"]


def wait_until(cond, timeout=30.0, what="condition"):
    """Poll ``cond`` until it holds (the kernel tears a deleted namespace down asynchronously, for example). The
    deadline is generous: it costs nothing when the condition comes true, and a loaded machine (the kernel's namespace
    clean-up runs in a shared work queue) can take seconds where an idle one takes milliseconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(0.05)
