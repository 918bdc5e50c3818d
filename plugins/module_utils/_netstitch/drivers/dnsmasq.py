"""Name-service driver (kinds.dns): one dnsmasq per network and host, in this host's network namespace, with its
configuration, names file and pid file under <state_dir>/dns/<host>/. Changed names: the file is rewritten and
dnsmasq re-reads it on SIGHUP; a changed address, or a server that is gone: it is (re)started. Also writes
/etc/netns/<netns>/resolv.conf of namespace containers."""

import os
import signal
import subprocess
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.durable import atomic_write
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

ETC_NETNS = "/etc/netns"
START_TIMEOUT = 5.0


class DnsMasq(object):
    def __init__(self, state_dir, host):
        self.dir = os.path.join(state_dir, "dns", host)
        self.writes = 0

    def _path(self, net, ext):
        return os.path.join(self.dir, "%s.%s" % (net, ext))

    def _pid(self, net):
        try:
            with open(self._path(net, "pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            with open("/proc/%d/comm" % pid) as f:
                return pid if f.read().strip() == "dnsmasq" else None
        except (OSError, ValueError):
            return None

    def read(self, resolv_namespaces):
        """{"servers": {network: {"listen", "records", "running"}}, "resolv": {netns: text or None}}."""
        servers = {}
        names = sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []
        for name in names:
            if not name.endswith(".conf"):
                continue
            net = name[:-len(".conf")]
            listen, records, domains = None, [], []
            with open(os.path.join(self.dir, name)) as f:
                for line in f.read().splitlines():
                    if line.startswith("listen-address="):
                        listen = line.split("=", 1)[1]
                    elif line.startswith("local=/"):
                        domains.append(line.split("/")[1])
            try:
                with open(self._path(net, "hosts")) as f:
                    records = sorted(line.split() for line in f.read().splitlines() if line and line[0] != "#")
            except OSError:
                pass
            servers[net] = {"listen": listen, "records": records, "domains": sorted(domains),
                            "running": self._pid(net) is not None}
        resolv = {}
        for ns in resolv_namespaces:
            try:
                with open(os.path.join(ETC_NETNS, ns, "resolv.conf")) as f:
                    resolv[ns] = f.read()
            except OSError:
                resolv[ns] = None
        return {"servers": servers, "resolv": resolv}

    def execute(self, a):
        self.writes += 1
        if a["op"] == "resolv_write" and a["content"] is None:
            try:
                os.unlink(os.path.join(ETC_NETNS, a["netns"], "resolv.conf"))
            except FileNotFoundError:
                pass
            return
        if a["op"] == "resolv_write":
            os.makedirs(os.path.join(ETC_NETNS, a["netns"]), exist_ok=True)
            atomic_write(os.path.join(ETC_NETNS, a["netns"], "resolv.conf"), a["content"])
            return
        net = a["network"]
        if a["op"] == "dns_stop":
            self._stop(net)
            for ext in ("conf", "hosts", "pid"):
                try:
                    os.unlink(self._path(net, ext))
                except OSError:
                    pass
            return
        if a["op"] != "dns_write":
            raise ApplyError("the name-service driver has no operation %r" % a["op"])
        os.makedirs(self.dir, exist_ok=True)
        lines = ["# netstitch: the name service of network %s (kinds.dns); rewritten by every apply" % net,
                 "listen-address=%s" % a["listen"], "bind-interfaces", "except-interface=lo", "no-hosts",
                 "addn-hosts=%s" % self._path(net, "hosts"), "pid-file=%s" % self._path(net, "pid"),
                 "local-ttl=5", "cache-size=0", "domain-needed",
                 # the names file stays netstitch's (the state directory is root's): dnsmasq keeps root to re-read it
                 "user=root"]
        # the networks' own names are answered here only, never asked upstream
        lines += ["local=/%s/" % d for d in a["domains"]]
        conf = "".join("%s\n" % line for line in lines)
        hosts = "# netstitch: names of network %s\n" % net + "".join("%s\n" % " ".join(r) for r in a["records"])
        old_conf = None
        try:
            with open(self._path(net, "conf")) as f:
                old_conf = f.read()
        except OSError:
            pass
        atomic_write(self._path(net, "hosts"), hosts)
        atomic_write(self._path(net, "conf"), conf)
        pid = self._pid(net)
        if pid is not None and old_conf == conf:
            os.kill(pid, signal.SIGHUP)     # dnsmasq re-reads its names file
            return
        self._stop(net)
        r = subprocess.run(["dnsmasq", "--conf-file=%s" % self._path(net, "conf")], capture_output=True, text=True,
                           check=False)
        if r.returncode != 0:
            raise ApplyError("%s: dnsmasq did not start: %s" % (a["text"], (r.stderr or r.stdout).strip()))
        end = time.monotonic() + START_TIMEOUT
        while self._pid(net) is None:
            if time.monotonic() > end:
                raise ApplyError("%s: dnsmasq wrote no pid file within %gs" % (a["text"], START_TIMEOUT))
            time.sleep(0.02)

    def _stop(self, net):
        pid = self._pid(net)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + START_TIMEOUT
        while self._pid(net) is not None and time.monotonic() < end:
            time.sleep(0.02)
