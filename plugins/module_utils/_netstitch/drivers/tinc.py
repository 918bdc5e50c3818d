"""tinc driver: an encrypted layer-2 overlay in user space (tinc 1.0, switch mode, one TAP per host and network).

Each host keeps one tinc instance per tinc network under <state_dir>/tinc/<host>/<network>/: tinc.conf, hosts/<node>
for itself and every peer (underlay address, port, public key), and rsa_key.priv, which is generated on the host and
never leaves it (never read into results, never logged). tincd runs as a supervised daemon:
  - "systemd": a unit netstitch-tinc-<host>-<network>.service (real hosts with systemd, in the root namespace);
  - "process": tincd's own daemon mode with a pid file (the lab, where hosts are namespaces; it outlives the run).
Configuration changes reach a running tincd by SIGHUP (it rereads its configuration and host files).
"""

import os
import re
import shutil
import signal
import subprocess
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.durable import atomic_write
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.tinc import node_name, render

KEY_BITS = 2048
# tincd's log level: its default (0: start, stop, errors). tinc 1.0's signal handlers write to the log themselves
# (localtime() and stdio inside the handler); at a higher level the main loop logs all the time, and a SIGTERM or
# SIGHUP that arrives while it is inside localtime() deadlocks tincd on glibc's lock (seen here at levels 2 and 5:
# a tincd asleep on a futex in its TERM handler). SIGUSR1/SIGUSR2 still make tincd dump its connections and its
# nodes (reachable, validkey, PMTU), edges and subnets into the log, which is what a failed test prints.
DEBUG_LEVEL = 0
PEM_RE = re.compile(r"-----BEGIN RSA PUBLIC KEY-----.*?-----END RSA PUBLIC KEY-----\n?", re.S)


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def public_key(confdir, host):
    text = read_text(os.path.join(confdir, "hosts", node_name(host)))
    m = PEM_RE.search(text or "")
    return m.group(0) if m else None


def _pid_alive(pid, confdir):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        return False
    return any(c.endswith(b"tincd") for c in cmd[:1]) and confdir.encode() in b" ".join(cmd)


def running_pid(confdir):
    text = read_text(os.path.join(confdir, "tinc.pid"))
    try:
        pid = int((text or "").split()[0])
    except (ValueError, IndexError):
        return None
    return pid if _pid_alive(pid, confdir) else None


UNIT_DIR = "/etc/systemd/system"


def detect_supervisor():
    """systemd on a host that runs it, when we are in its root network namespace; else tincd's own daemon mode."""
    if not os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"):
        return "process"
    try:
        same = os.stat("/proc/1/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return "process"
    return "systemd" if same else "process"


class Tinc(object):
    def __init__(self, state_dir, host, supervisor=None):
        self.root = os.path.join(state_dir, "tinc", host)
        self.host = host
        self.writes = 0
        self.supervisor = supervisor or detect_supervisor()
        self.stopped = {}       # network -> time.time() when this run stopped its tincd

    def unit(self, network):
        return "netstitch-tinc-%s-%s.service" % (node_name(self.host), re.sub(r"[^A-Za-z0-9_.-]", "_", network))

    def _systemctl(self, *args):
        r = subprocess.run(("systemctl",) + args, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise ApplyError("systemctl %s failed: %s" % (" ".join(args), r.stderr.strip()[-300:]))

    def execute(self, action, netlink):
        """One tinc action of the plan (netlink configures the TAP port once tincd has made it)."""
        op, net = action["op"], action["network"]
        if op == "tinc_keygen":
            self.ensure_key(net)
        elif op == "tinc_write":
            r = action["render"]
            self.write(net, render(pubkey=public_key(self.confdir(net), r["host"]), **r))
        elif op == "tinc_start":
            if action.get("restart"):
                self.stop(net)
            self.start(net, action["device"], exists=netlink.link_exists)
            netlink.execute({"op": "link_set", "text": action["text"], "ns": None, "name": action["device"],
                             "changes": action["changes"]})
        elif op == "tinc_reload":
            self.reload(net)
        elif op == "tinc_stop":
            self.stop(net, remove=True)
        else:
            raise ApplyError("unknown tinc action %r" % op)

    def confdir(self, network):
        return os.path.join(self.root, network)

    def read(self, networks):
        """{network: {"pubkey", "files": {relpath: text}, "pid"}} for the desired networks plus any present."""
        names = set(networks)
        if os.path.isdir(self.root):
            names.update(os.listdir(self.root))
        out = {}
        for net in sorted(names):
            d = self.confdir(net)
            if not os.path.isdir(d):
                continue
            files = {}
            hosts = os.path.join(d, "hosts")
            peers = sorted(os.listdir(hosts)) if os.path.isdir(hosts) else []
            for rel in ["tinc.conf"] + ["hosts/" + h for h in peers]:
                files[rel] = read_text(os.path.join(d, rel))
            out[net] = {"pubkey": public_key(d, self.host), "has_key": os.path.exists(os.path.join(d, "rsa_key.priv")),
                        "files": files, "pid": running_pid(d)}
        return out

    def ensure_key(self, network):
        """Generate the host's key pair for a network if it has none; return (public key, generated?)."""
        d = self.confdir(network)
        key = public_key(d, self.host)
        if key and os.path.exists(os.path.join(d, "rsa_key.priv")):
            return key, False
        faults.point("tinc dir %s" % d)
        os.makedirs(os.path.join(d, "hosts"), mode=0o700, exist_ok=True)
        conf = os.path.join(d, "tinc.conf")
        if not os.path.exists(conf):
            atomic_write(conf, "Name = %s\n" % node_name(self.host))
        self.writes += 1
        faults.point("tinc keygen %s" % network)
        r = subprocess.run(["tincd", "-c", d, "-K%d" % KEY_BITS], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        key = public_key(d, self.host)
        if r.returncode != 0 or not key:
            raise ApplyError("tinc key generation for network %s failed: %s" % (network, r.stderr.strip()[-300:]))
        return key, True

    def write(self, network, files):
        d = self.confdir(network)
        os.makedirs(os.path.join(d, "hosts"), mode=0o700, exist_ok=True)
        wanted = set(files)
        for rel, text in files.items():
            path = os.path.join(d, rel)
            # only what changes: on SIGHUP tincd closes the connection to every peer whose host file is newer than
            # its last reload (net.c main_loop), so rewriting an unchanged one would cut a working connection
            if read_text(path) != text:
                atomic_write(path, text)
        hdir = os.path.join(d, "hosts")
        for h in os.listdir(hdir):
            if "hosts/" + h not in wanted and not h.endswith(".tmp"):
                faults.point("tinc unlink %s" % h)
                os.unlink(os.path.join(hdir, h))
        self.writes += 1

    def start(self, network, device, exists, timeout=10.0):
        d = self.confdir(network)
        # tincd seeds its random numbers with the current second (net.c main_loop: srand(now)) and peers drop a
        # request whose text, random nonce included, they have already seen (protocol.c seen_request): a tincd
        # started within the second its predecessor started would repeat its ADD_EDGE nonces, and peers would
        # ignore them. So a restart begins in a later second than the stop.
        stopped = self.stopped.pop(network, None)
        while stopped is not None and int(time.time()) <= int(stopped):
            time.sleep(0.05)
        self.writes += 1
        faults.point("tinc start %s" % network)
        args = [shutil.which("tincd") or "tincd", "-c", d, "--pidfile=%s" % os.path.join(d, "tinc.pid"),
                "--logfile=%s" % os.path.join(d, "tinc.log"), "--debug=%d" % DEBUG_LEVEL]
        if self.supervisor == "systemd":
            unit = os.path.join(UNIT_DIR, self.unit(network))
            with open(unit, "w") as f:
                f.write("[Unit]\nDescription=netstitch tinc overlay %s on %s\nAfter=network-online.target\n\n"
                        "[Service]\nType=simple\nExecStart=%s -D\nExecReload=/bin/kill -HUP $MAINPID\n"
                        "Restart=always\nRestartSec=2\n\n[Install]\nWantedBy=multi-user.target\n"
                        % (network, self.host, " ".join(args)))
            self._systemctl("daemon-reload")
            self._systemctl("enable", "--now", self.unit(network))
        else:
            r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, check=False)
            if r.returncode != 0:
                raise ApplyError("tincd for network %s did not start: %s (log: %s)"
                                 % (network, r.stderr.strip()[-300:], os.path.join(d, "tinc.log")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if exists(device):
                return
            time.sleep(0.05)
        raise ApplyError("tincd for network %s started but its interface %s did not appear (log: %s)"
                         % (network, device, os.path.join(d, "tinc.log")))

    def reload(self, network):
        pid = running_pid(self.confdir(network))
        if pid:
            self.writes += 1
            faults.point("tinc reload %s" % network)
            os.kill(pid, signal.SIGHUP)

    @staticmethod
    def _gone(pid, confdir, timeout=5.0):
        deadline = time.monotonic() + timeout
        while _pid_alive(pid, confdir):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, network, remove=False):
        d = self.confdir(network)
        unit = os.path.join(UNIT_DIR, self.unit(network))
        if self.supervisor == "systemd" and os.path.exists(unit):
            self.writes += 1
            self._systemctl("disable", "--now", self.unit(network))
            self.stopped[network] = time.time()
            if remove:
                os.unlink(unit)
                self._systemctl("daemon-reload")
        pid = running_pid(d)
        if pid:
            self.writes += 1
            faults.point("tinc stop %s" % network)
            os.kill(pid, signal.SIGTERM)
            if not self._gone(pid, d):
                # stuck (tinc 1.0 can deadlock in its own signal handler): it holds the TAP device, so it must go
                os.kill(pid, signal.SIGKILL)
                self._gone(pid, d)
            self.stopped[network] = time.time()
        if remove:
            faults.point("tinc remove %s" % d)
            shutil.rmtree(d, ignore_errors=True)
