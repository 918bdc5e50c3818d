"""netstitch as Docker's network + IPAM plugin, against the real engine: two nested dockerds (lab hosts h1 and h2),
one `netstitch plugin` per host in that host's namespace, `docker network create -d <plugin>` and `docker run`
there; proven with real packets across the VXLAN overlay, to a namespace container on h3, from the outside
namespace to a published port, and by what is left behind after removal.

The plugin sockets live in /run/docker/plugins (the only place a dockerd looks) under names unique to this test
run (netstitch-<id>-h1), so no other engine ever uses them; everything is removed at the end, also on failure.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import warnings

import pytest

import dockerkit
import nskit
from fabrickit import CLI, Fabric
from test_ports_links import serve

pytestmark = pytest.mark.docker

PLUGIN_DIR = "/run/docker/plugins"
OV, BACK, INT, ISO = "10.61.0.0/16", "10.62.0.0/24", "10.63.0.0/24", "10.64.0.0/24"
DN = "10.65.0.0/16"


class PluginLab(object):
    def __init__(self, tmp):
        self.id = secrets.token_hex(3)
        self.dir = str(tmp)
        self.state = os.path.join(self.dir, "state")
        self.fabric = Fabric(tmp)
        self.tag = "netstitch-test/busybox:%s" % self.id
        self.image = dockerkit.Image(self.tag, self.dir)
        self.nested = {}
        self.engines = {}
        self.plugins = {}       # host -> Popen
        self.files = 0

    def up(self):
        self.fabric.up()
        self.image.build()
        for h in ("h1", "h2"):
            d = dockerkit.NestedDockerd(self.hns(h), "%s%s" % (self.id, h))
            self.nested[h] = d
            d.start()
            d.load(self.tag)
            self.engines[h] = dockerkit.Containers(d.url)

    def down(self):
        try:
            for h, eng in self.engines.items():
                eng.remove_all()
                for net in self.docker(h, "network", "ls", "-q", "--filter", "driver=" + self.pname(h),
                                       check=False).stdout.split():
                    self.docker(h, "network", "rm", net, check=False)
            for h in list(self.plugins):
                self.stop_plugin(h)
            for d in self.nested.values():
                d.stop()
        finally:
            for h in ("h1", "h2"):
                try:
                    os.unlink(self.sock(h))
                except OSError:
                    pass
            self.image.remove()
            self.fabric.down()

    def hns(self, host):
        return self.fabric.hns(host)

    def pname(self, host):
        return "netstitch-%s-%s" % (self.id, host)

    def sock(self, host):
        return os.path.join(PLUGIN_DIR, self.pname(host) + ".sock")

    def docker(self, host, *args, check=True, timeout=60):
        return self.engines[host].docker(*args, check=check, timeout=timeout)

    def cli(self, host, *args, ok=True):
        r = subprocess.run(["nsenter", "--net=/run/netns/%s" % self.hns(host), "--"] + CLI + list(args) +
                           ["--host", host, "--state-dir", self.state] + (["--json"] if args[0] == "apply" else []),
                           capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in r.stderr, r.stderr
        if ok:
            assert r.returncode == 0, "netstitch %s on %s failed: %s" % (args[0], host, r.stderr)
            return json.loads(r.stdout)
        return r

    def apply(self, topo):
        self.files += 1
        path = os.path.join(self.dir, "topo-%d.json" % self.files)
        with open(path, "w") as f:
            json.dump(topo, f)
        return {h: self.cli(h, "apply", path) for h in topo["hosts"]}

    def start_plugin(self, host):
        log = open(os.path.join(self.dir, "plugin-%s.log" % host), "a")
        p = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % self.hns(host), "--"] + CLI +
                             ["plugin", "--host", host, "--state-dir", self.state, "--name", self.pname(host),
                              "--docker-host", self.nested[host].url],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.plugins[host] = p
        nskit.wait_until(lambda: os.path.exists(self.sock(host)) or p.poll() is not None, 30, "the plugin socket")
        assert p.poll() is None, self.log(host)
        return p

    def stop_plugin(self, host, sig=signal.SIGTERM):
        p = self.plugins.pop(host, None)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=20)

    def log(self, host):
        with open(os.path.join(self.dir, "plugin-%s.log" % host)) as f:
            return f.read()

    def events(self, host):
        return [json.loads(l) for l in self.log(host).splitlines() if l.startswith("{")]

    def netcreate(self, host, name, subnet, *extra, check=True):
        return self.docker(host, "network", "create", "-d", self.pname(host), "--ipam-driver", self.pname(host),
                           "--subnet", subnet, *extra, name, check=check)

    def run(self, host, name, *args, cmd=("sleep", "3600"), check=True, timeout=60):
        self.engines[host].names.append(name)
        return self.docker(host, "run", "-d", "--name", name, *args, self.tag, *cmd, check=check, timeout=timeout)

    def addr(self, host, name, ifname="eth0"):
        a = self.engines[host].addresses(name, ifname)
        return a[0].split("/")[0] if a else None

    def ping(self, host, name, addr):
        return self.docker(host, "exec", name, "ping", "-c", "1", "-W", "2", addr, check=False).returncode == 0

    def nc(self, host, name, addr, port):
        r = self.docker(host, "exec", name, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 %s %d"
                        % (addr, port), check=False)
        return r.stdout.strip() or None

    def reaches(self, host, name, addr, within=30.0):
        """A ping from container ``name`` to ``addr`` is answered before the deadline (on a loaded machine a new
        container's path may take a moment: ARP, the overlay's first packets); a blocked path still fails, at the
        deadline. For "does not reach", use ping() (one attempt is the answer)."""
        end = time.monotonic() + within
        while not self.ping(host, name, addr):
            if time.monotonic() > end:
                return False
        return True

    def nc_until(self, host, name, addr, port, wanted, within=30.0):
        """The first answer of a TCP request from container ``name`` that ``wanted(answer)`` accepts, else the last
        one at the deadline."""
        end = time.monotonic() + within
        while True:
            answer = self.nc(host, name, addr, port)
            if wanted(answer) or time.monotonic() > end:
                return answer

    def links(self, host):
        r = nskit.run("ip", "-n", self.hns(host), "-o", "link", "show")
        return r.stdout

    def plugin_state(self, host):
        with open(os.path.join(self.state, "%s.plugin-state" % host)) as f:
            return json.load(f)


def _held(path):
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside
    return hostside.lock_holder(path)


def topology(pl):
    return {
        "hosts": {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in ("h1", "h2", "h3")},
        "networks": {
            # learning on the overlay: Docker's endpoints get MACs no topology knows (see docs/docker-plugin.md)
            "ov": {"subnet": OV, "overlay": {"type": "vxlan", "vni": 61, "learning": True},
                   "hosts": ["h1", "h2", "h3"]},
            "back": {"subnet": BACK, "hosts": ["h1", "h2"]},
            "int": {"subnet": INT, "internal": True, "hosts": ["h1"]},
            "iso": {"subnet": ISO, "isolated": True, "hosts": ["h1"]},
        },
        "containers": {
            "n3": {"host": "h3", "netns": pl.fabric.cns("n3"), "interfaces": [{"network": "ov"}]},
            "nb": {"host": "h1", "netns": pl.fabric.cns("nb"), "interfaces": [{"network": "back"}]},
            "nov1": {"host": "h1", "netns": pl.fabric.cns("nov1"), "interfaces": [{"network": "ov"}]},
        },
    }


@pytest.fixture(scope="module")
def pl(tmp_path_factory):
    reason = dockerkit.skip_reason()
    if reason:
        warnings.warn(pytest.PytestWarning("the Docker plugin tests are skipped: %s" % reason))
        pytest.skip(reason)
    lab = PluginLab(tmp_path_factory.mktemp("dplugin"))
    try:
        lab.up()
        lab.results = lab.apply(topology(lab))
        for h in ("h1", "h2"):
            lab.start_plugin(h)
        lab.netcreate("h1", "ov", OV, "-o", "netstitch.network=ov")
        lab.netcreate("h2", "ov", OV)
        yield lab
    finally:
        nested = list(lab.nested.values())
        lab.down()
        left = [ns for ns in nskit.netns_list() if ns.startswith(lab.fabric.name)]
        assert not left, "namespaces left behind: %s" % left
        for h in ("h1", "h2"):
            assert not os.path.exists(lab.sock(h)), "plugin socket left behind"
        for d in nested:
            assert d.leftovers() == {"processes": [], "dir": False, "cgroups": []}, d.leftovers()


def ep(results, container):
    for r in results.values():
        for e in r["endpoints"]:
            if e["container"] == container:
                return nskit.addr(e["address"])
    raise AssertionError(container)


def test_containers_on_two_hosts_reach_each_other_and_a_namespace_container(pl):
    pl.run("h1", "a1", "--network", "ov")
    pl.run("h2", "a2", "--network", "ov", cmd=("httpd", "-f", "-p", "80"))
    a1, a2 = pl.addr("h1", "a1"), pl.addr("h2", "a2")
    # addresses from each host's own slice of the topology network (the same allocator as the Ansible path)
    st1, st2 = pl.plugin_state("h1"), pl.plugin_state("h2")
    assert a1 in st1["leases"]["ov"] and a2 in st2["leases"]["ov"]
    assert a1 != a2 and a1 != ep(pl.results, "nov1")
    # MTU of the network, gateway from the topology, default route via it
    r = pl.docker("h1", "exec", "a1", "ip", "route")
    assert "default via 10.61.0.1" in r.stdout, r.stdout
    assert pl.reaches("h1", "a1", a2), "no ping across the overlay"
    assert "HTTP/1" in (pl.nc_until("h1", "a1", a2, 80, lambda a: "HTTP/1" in (a or "")) or ""), \
        "no TCP across the overlay"
    n3 = ep(pl.results, "n3")
    assert pl.reaches("h2", "a2", n3), "no ping to the namespace container on h3"
    serve(pl.fabric, pl.fabric.cns("n3"), tcp=(7070,), udp=())
    answer = pl.nc_until("h1", "a1", n3, 7070, bool)
    assert answer and answer.startswith("tcp 7070 from %s" % a1), answer
    # the endpoint is netstitch's (alias), the veth on the network's bridge on the host
    links = pl.links("h1")
    assert "master nsbr-ov" in [l for l in links.splitlines() if "nsp" in l][0]
    # an Ansible apply afterwards changes nothing and removes nothing of the plugin's
    again = pl.apply(topology(pl))
    for h, res in again.items():
        assert not res["changed"], (h, res["actions"])
    assert pl.reaches("h1", "a1", a2)
    # a container the topology adds on h1 never gets an address the plugin gave out
    more = topology(pl)
    more["containers"]["nov2"] = {"host": "h1", "netns": pl.fabric.cns("nov2"), "interfaces": [{"network": "ov"}]}
    res = pl.apply(more)
    assert ep(res, "nov2") not in pl.plugin_state("h1")["leases"]["ov"]
    nskit.wait_until(lambda: nskit.ping(pl.fabric.cns("nov2"), a2, timeout=1), what="nov2 to reach a2 (new container)")
    assert pl.reaches("h1", "a1", a2)
    pl.apply(topology(pl))


def test_fixed_ip_internal_and_isolation(pl):
    pl.run("h1", "fx", "--network", "ov", "--ip", "10.61.1.77")
    assert pl.addr("h1", "fx") == "10.61.1.77"
    # an address of another host's slice, or one in use, is refused with the reason
    r = pl.run("h1", "fx2", "--network", "ov", "--ip", "10.61.1.77", check=False)
    assert r.returncode != 0 and "in use" in r.stderr, r.stderr
    # isolation: networks are closed to each other (back is another network on h1)
    nb = ep(pl.results, "nb")
    assert nskit.ping(pl.fabric.cns("nb"), "10.61.1.77") is False
    assert not pl.ping("h1", "fx", nb)
    # internal: no way out, but the network itself works
    pl.netcreate("h1", "intn", INT, "--internal")
    pl.run("h1", "i1", "--network", "intn")
    pl.run("h1", "i2", "--network", "intn")
    assert pl.reaches("h1", "i1", pl.addr("h1", "i2"))
    assert not pl.ping("h1", "i1", "198.51.100.1")
    assert "default" not in pl.docker("h1", "exec", "i1", "ip", "route").stdout
    # isolated: containers of the network do not reach each other (no link), but reach the outside
    pl.netcreate("h1", "ison", ISO)
    pl.run("h1", "s1", "--network", "ison")
    pl.run("h1", "s2", "--network", "ison")
    assert not pl.ping("h1", "s1", pl.addr("h1", "s2"))
    assert pl.reaches("h1", "s1", "198.51.100.1")
    # the outside is reachable from a non-internal network (masquerade)
    assert pl.reaches("h1", "fx", "198.51.100.1")
    # --internal on a network the topology does not make internal: refused, naming why
    r = pl.netcreate("h2", "bad", BACK, "--internal", check=False)
    assert r.returncode != 0
    # an automatic pool is never handed out (libnetwork#1386): refused at once, with what to do
    r = pl.docker("h2", "network", "create", "-d", pl.pname("h2"), "--ipam-driver", pl.pname("h2"), "auto",
                  check=False, timeout=30)
    assert r.returncode != 0 and "--subnet" in r.stderr, r.stderr


def test_published_port_from_the_outside(pl):
    def published():
        return nskit.run("ip", "netns", "exec", pl.hns("h1"), "nft", "list", "map", "inet", "netstitch",
                         "pub_any_addr", check=False).stdout

    pl.run("h1", "web", "--network", "ov", "-p", "18080:80", cmd=("httpd", "-f", "-p", "80"))
    addr = pl.addr("h1", "web")
    out = pl.fabric.name + "-out"
    r = nskit.nsexec(out, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 192.0.2.1 18080",
                     check=False)
    assert "HTTP/1" in r.stdout, (r.stdout, r.stderr)
    nft = nskit.run("ip", "netns", "exec", pl.hns("h1"), "nft", "list", "map", "inet", "netstitch",
                    "pub_any_addr").stdout
    assert addr in nft
    # netstitch.fabric.info (engine.gather) shows the port Docker's `docker port` cannot
    r = nskit.nsexec(pl.hns("h1"), nskit.PY, "-c", "import json, sys; from ansible_collections.netstitch.fabric."
                     "plugins.module_utils._netstitch import engine; print(json.dumps(engine.gather('h1', "
                     "state_dir=sys.argv[1])))", pl.state, timeout=60)
    shown = json.loads(r.stdout)["docker_plugin"]
    assert any(e["address"].startswith(addr + "/") and e["published"] == ["tcp *:18080 -> 80"]
               for e in shown.values()), shown
    assert pl.docker("h1", "port", "web").stdout.strip() == ""
    # an apply keeps the plugin's port
    res = pl.apply(topology(pl))
    assert not res["h1"]["changed"], res["h1"]["actions"]
    # the same port again: refused, naming the endpoint that has it
    r = pl.run("h1", "web2", "--network", "ov", "-p", "18080:80", check=False)
    assert r.returncode != 0 and "already published" in r.stderr, r.stderr
    # while an apply holds the host lock: a call with ports fails within seconds naming the holder; one without
    # ports does not wait at all
    lock = os.path.join(pl.state, "h1.lock")
    holder = subprocess.Popen([nskit.SYS_PY, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | "
                               "os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                               lock], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        r = pl.run("h1", "web3", "--network", "ov", "-p", "18081:80", check=False)
        assert r.returncode != 0 and "a netstitch apply is running on host h1" in r.stderr and \
            "pid %d" % holder.pid in r.stderr, r.stderr
        assert time.monotonic() - t0 < 15
        pl.docker("h1", "rm", "-f", "web3", check=False)
        t0 = time.monotonic()
        pl.run("h1", "noports", "--network", "ov")
        assert time.monotonic() - t0 < 10
        # a removal never fails for the lock: its ports leave the maps once the lock is free
        t0 = time.monotonic()
        pl.docker("h1", "rm", "-f", "web")
        assert time.monotonic() - t0 < 15
        assert addr in published()
    finally:
        holder.kill()
        holder.wait()
    nskit.wait_until(lambda: addr not in published(), 30, "the removed container's port unpublished")
    pl.run("h1", "web3b", "--network", "ov", "-p", "18081:80", cmd=("httpd", "-f", "-p", "80"))
    assert pl.addr("h1", "web3b") in published()
    r = nskit.nsexec(out, "sh", "-c", "busybox nc -w 2 192.0.2.1 18080 </dev/null", check=False)
    assert "HTTP" not in r.stdout


def test_an_automatic_host_port_is_never_one_the_plugin_publishes(pl):
    """The plugin's ports are DNAT rules in netstitch's maps, with no socket listening: an automatic host port of the
    topology (host_port omitted) must still not take one (the first port of the range here)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.ports import AUTO_RANGE
    low = AUTO_RANGE[0]
    pl.run("h1", "pweb", "--network", "ov", "-p", "%d:80" % low, cmd=("httpd", "-f", "-p", "80"))
    topo = topology(pl)
    topo["containers"]["nb"]["publish"] = [{"container_port": 80}]
    out = pl.fabric.name + "-out"
    try:
        res = pl.apply(topo)
        got = [(p["host_port"], p["auto"]) for p in res["h1"]["published"] if p["container"] == "nb"]
        assert len(got) == 1 and got[0][1] and got[0][0] != low and low < got[0][0] <= AUTO_RANGE[1], got
        # the plugin's port still leads to its container, and the apply keeps its choice
        r = nskit.nsexec(out, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 192.0.2.1 %d" % low,
                         check=False)
        assert "HTTP/1" in r.stdout, (r.stdout, r.stderr)
        assert not pl.apply(topo)["h1"]["changed"]
    finally:
        pl.docker("h1", "rm", "-f", "pweb", check=False)
        pl.apply(topology(pl))


def test_plugin_killed_docker_run_fails_naming_it_then_recovers_and_stale_endpoints_go(pl):
    pl.run("h2", "keep", "--network", "ov")
    pl.run("h2", "gone", "--network", "ov")
    keep, gone = pl.addr("h2", "keep"), pl.addr("h2", "gone")
    gone_eid = pl.docker("h2", "inspect", "-f", "{{.NetworkSettings.Networks.ov.EndpointID}}", "gone").stdout.strip()
    pl.stop_plugin("h2", signal.SIGKILL)
    os.unlink(pl.sock("h2"))        # a killed plugin leaves its socket file; systemd's socket unit would keep it
    # running containers keep working (kernel state)
    assert pl.reaches("h1", pl.engines["h1"].names[0], keep)
    t0 = time.monotonic()
    r = pl.run("h2", "down1", "--network", "ov", check=False, timeout=90)
    assert r.returncode != 0 and pl.pname("h2") in r.stderr, r.stderr
    took = time.monotonic() - t0
    # a container stopped while the plugin is down: Docker forgets it, the plugin's endpoint is stale
    pl.docker("h2", "rm", "-f", "gone", timeout=120)
    pl.docker("h2", "rm", "-f", "down1", check=False)
    pl.start_plugin("h2")
    # recovered: a new container works, and the stale endpoint (veth, lease) is cleaned up in the background
    pl.run("h2", "back", "--network", "ov")
    assert pl.reaches("h2", "back", keep)
    nskit.wait_until(lambda: gone_eid not in pl.plugin_state("h2")["endpoints"], 30, "stale endpoint cleanup")
    assert "nsp" + gone_eid[:11] not in pl.links("h2")
    assert gone not in pl.plugin_state("h2")["leases"].get("ov", {}) or gone == pl.addr("h2", "back")
    assert any(e.get("event") == "reconciled" and gone_eid[:12] in e.get("removed", []) for e in pl.events("h2"))
    print("docker run with the plugin down failed after %.1fs" % took)


def test_dockerd_restart_keeps_containers_working(pl):
    pl.run("h2", "rs", "--network", "ov", "--restart", "always", "--ip", "10.61.2.140")
    d = pl.nested["h2"]
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=60)
    d.start()
    nskit.wait_until(lambda: pl.addr("h2", "rs") == "10.61.2.140", 60, "the container back with its fixed address")
    assert pl.reaches("h2", "rs", ep(pl.results, "n3"))
    assert pl.reaches("h1", pl.engines["h1"].names[0], "10.61.2.140")


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"), reason="needs systemd-socket-activate")
def test_socket_activation(pl):
    """As under the role's socket unit: the socket exists before the plugin runs; the first call starts it, and it
    serves from the socket it was handed (fd 3), with its state from the state file."""
    pl.stop_plugin("h1")
    assert not os.path.exists(pl.sock("h1"))
    log = open(os.path.join(pl.dir, "plugin-h1.log"), "a")
    p = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % pl.hns("h1"), "--", "systemd-socket-activate", "-l",
                          pl.sock("h1"), "--"] + CLI + ["plugin", "--host", "h1", "--state-dir", pl.state, "--name",
                                                        pl.pname("h1"), "--docker-host", pl.nested["h1"].url],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pl.plugins["h1"] = p
    nskit.wait_until(lambda: os.path.exists(pl.sock("h1")), 30, "the activation socket")
    serving = len([e for e in pl.events("h1") if e.get("event") == "serving"])
    pl.run("h1", "act", "--network", "ov")
    assert pl.addr("h1", "act", ) is not None
    assert len([e for e in pl.events("h1") if e.get("event") == "serving"]) == serving + 1
    assert pl.reaches("h1", "act", "10.61.2.140")


def test_apply_creates_keeps_and_removes_plugin_networks(pl):
    """networks.N.docker with driver netstitch: the apply itself creates the Docker network with the host's plugin
    (Docker calls the plugin meanwhile: no deadlock with the apply's locks), a rerun leaves it, dropping the offer
    removes it."""
    def topo(offered=True):
        t = topology(pl)
        for h in ("h1", "h2"):
            t["hosts"][h].update(docker_host=pl.nested[h].url, docker_plugin=pl.pname(h))
        t["networks"]["dn"] = {"subnet": DN, "overlay": {"type": "vxlan", "vni": 65, "learning": True},
                               "hosts": ["h1", "h2"]}
        if offered:
            t["networks"]["dn"]["docker"] = {"driver": "netstitch"}
        return t

    res = pl.apply(topo())
    for h in ("h1", "h2"):
        assert "create Docker network dn with netstitch's plugin %s (subnet %s, gateway 10.65.0.1, network dn)" \
            % (pl.pname(h), DN) in res[h]["actions"], res[h]["actions"]
        d = json.loads(pl.docker(h, "network", "inspect", "dn").stdout)[0]
        assert (d["Driver"], d["IPAM"]["Driver"]) == (pl.pname(h), pl.pname(h)), d
        assert d["Options"] == {"netstitch.network": "dn"} and d["Labels"]["netstitch.host"] == h, d
        assert [(c["Subnet"], c["Gateway"]) for c in d["IPAM"]["Config"]] == [(DN, "10.65.0.1")], d
        assert "dn" in {p["network"] for p in pl.plugin_state(h)["pools"].values()}
    pl.run("h1", "d1", "--network", "dn")
    pl.run("h2", "d2", "--network", "dn")
    d1, d2 = pl.addr("h1", "d1"), pl.addr("h2", "d2")
    assert d1 in pl.plugin_state("h1")["leases"]["dn"] and d2 in pl.plugin_state("h2")["leases"]["dn"]
    assert pl.reaches("h1", "d1", d2) and pl.reaches("h2", "d2", d1), "no ping across the overlay"
    # a rerun changes nothing, the containers keep working
    for h, r in pl.apply(topo()).items():
        assert not r["changed"], (h, r["actions"])
    assert pl.reaches("h1", "d1", d2)
    # dropped from the topology (its containers gone first): the apply removes the Docker network it made
    for h, name in (("h1", "d1"), ("h2", "d2")):
        pl.docker(h, "rm", "-f", name)
    res = pl.apply(topo(offered=False))
    for h in ("h1", "h2"):
        assert any(a.startswith("remove Docker network dn") for a in res[h]["actions"]), res[h]["actions"]
        assert "dn" not in pl.docker(h, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert "dn" not in {p["network"] for p in pl.plugin_state(h)["pools"].values()}
    for h, r in pl.apply(topo(offered=False)).items():
        assert not r["changed"], (h, r["actions"])
    pl.apply(topology(pl))


def test_network_rm_leaves_nothing(pl):
    pl.netcreate("h2", "bk", BACK)
    pl.run("h2", "b1", "--network", "bk", "-p", "18090:80")
    assert "nsp" in pl.links("h2")
    for h in ("h1", "h2"):
        pl.engines[h].remove_all()
        for net in ("ov", "bk", "intn", "ison"):
            pl.docker(h, "network", "rm", net, check=False)
    for h in ("h1", "h2"):
        assert "nsp" not in pl.links(h) and "nsq" not in pl.links(h)
        st = pl.plugin_state(h)
        assert st["endpoints"] == {} and st["networks"] == {} and st["pools"] == {}, st
        assert all(not v for v in st["leases"].values()), st["leases"]
        nft = nskit.run("ip", "netns", "exec", pl.hns(h), "nft", "list", "map", "inet", "netstitch",
                        "pub_any_addr", check=False).stdout
        assert "18090" not in nft
    # and an apply has nothing to do
    for h, res in pl.apply(topology(pl)).items():
        assert not res["changed"], (h, res["actions"])
