"""Real Docker containers and Docker networks on the fabric, proven with real packets and real Docker state.

One lab for the module (three hosts on an underlay switch, outside router), the lab image built from busybox-static
on the system engine under a unique tag, and a second dockerd inside lab host h1's namespace (own data root, exec
root, socket, cgroup parent, vfs, --iptables=true: Docker's real firewall, FORWARD policy DROP, lives in h1). The
system engine's containers are started with --network none and attached by netstitch to lab hosts (host end of the
veth in the lab host, container end in the container). Everything the tests make (containers, networks, image,
daemon, namespaces, temporary directories) is removed at the end, also on failure.
"""

import copy
import json
import os
import re
import secrets
import subprocess
import time
import warnings

import pytest

import dockerkit
import nskit
from fabrickit import CLI, Fabric
from test_ports_links import serve, talk

pytestmark = pytest.mark.docker

HOSTS = ("h1", "h2", "h3")
SYSTEM = dockerkit.SYSTEM_URL


class DockerLab(object):
    def __init__(self, tmp):
        self.id = secrets.token_hex(3)
        self.fabric = Fabric(tmp)
        self.tag = "netstitch-test/busybox:%s" % self.id
        self.image = dockerkit.Image(self.tag, str(tmp))
        self.nested = None
        self.sys = dockerkit.Containers(SYSTEM)
        self.nest = None
        self.files = 0
        self.dir = str(tmp)

    def up(self):
        self.fabric.up()
        self.image.build()
        self.nested = dockerkit.NestedDockerd(self.fabric.hns("h1"), self.id).start()
        self.nested.load(self.tag)
        self.nest = dockerkit.Containers(self.nested.url)

    def down(self):
        try:
            self.sys.remove_all()
            if self.nested is not None:
                self.nested.stop()
        finally:
            self.image.remove()
            self.fabric.down()

    def name(self, short):
        return "nst-%s-%s" % (self.id, short)

    def hns(self, host):
        return self.fabric.hns(host)

    def cns(self, short):
        return self.fabric.cns(short)

    # netstitch, as an operator runs it: the CLI inside the lab host's namespace
    def cli(self, host, *args, ok=True, env=None):
        r = subprocess.run(["nsenter", "--net=/run/netns/%s" % self.hns(host), "--"] + CLI + list(args) +
                           ["--host", host, "--state-dir", os.path.join(self.dir, "state")] +
                           (["--json"] if args[0] == "apply" else []),
                           capture_output=True, text=True, timeout=120, env=env, check=False)
        assert "Traceback" not in r.stderr, r.stderr
        if ok:
            # apply --check exits 2 when changes are pending
            assert r.returncode == 0 or (r.returncode == 2 and "--check" in args), \
                "netstitch %s on %s failed: %s" % (args[0], host, r.stderr)
            return json.loads(r.stdout)
        return r

    def write(self, obj):
        self.files += 1
        path = os.path.join(self.dir, "topo-%d.json" % self.files)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def apply(self, topo, hosts=None, extra=()):
        path = self.write(topo)
        return {h: self.cli(h, "apply", path, *extra) for h in (hosts or tuple(topo["hosts"]))}

    def reset(self, topo):
        """Remove the test's containers, then everything netstitch made (Docker networks included)."""
        self.sys.remove_all()
        if self.nest is not None:
            self.nest.remove_all()
        empty = {"hosts": copy.deepcopy(topo["hosts"]), "networks": {}, "containers": {}}
        self.apply(empty, extra=("--docker-force",))


@pytest.fixture(scope="module")
def dl(tmp_path_factory):
    reason = dockerkit.skip_reason()
    if reason:
        # skipped with the reason, and said aloud (the warnings summary shows it even without -rs)
        warnings.warn(pytest.PytestWarning("the Docker tests are skipped: %s" % reason))
        pytest.skip(reason)
    lab = DockerLab(tmp_path_factory.mktemp("docker"))
    try:
        lab.up()
        yield lab
    finally:
        nested = lab.nested
        lab.down()
        left = [ns for ns in nskit.netns_list() if ns.startswith(lab.fabric.name)]
        assert not left, "namespaces left behind: %s" % left
        r = dockerkit.run("docker", "-H", SYSTEM, "ps", "-a", "--filter", "name=nst-%s-" % lab.id, "-q")
        assert r.stdout.strip() == "", "containers left behind"
        assert dockerkit.run("docker", "-H", SYSTEM, "images", "-q", lab.tag).stdout.strip() == "", "image left behind"
        if nested is not None:
            assert nested.leftovers() == {"processes": [], "dir": False, "cgroups": []}, nested.leftovers()


def hosts_of(dl, nested_on_h1=False):
    out = {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in HOSTS}
    if nested_on_h1:
        out["h1"]["docker_host"] = dl.nested.url
    return out


def ep(results, container, network=None):
    """The address (without prefix) netstitch gave a container on a network, from apply results."""
    for r in results.values():
        for e in r["endpoints"]:
            if e["container"] == container and (network is None or e["network"] == network):
                return nskit.addr(e["address"])
    raise AssertionError("no endpoint of %s in %s" % (container, results))


def dping(cont, engine, addr):
    return engine.exec(cont, "ping", "-c", "1", "-W", "2", addr, check=False).returncode == 0


def dtalk(cont, engine, addr, port):
    """A TCP exchange from inside a Docker container (busybox nc) with a test server: its answer or None."""
    r = engine.exec(cont, "sh", "-c", "nc -w 2 %s %d </dev/null" % (addr, port), check=False)
    return r.stdout.strip() or None


def noop(results):
    for r in results.values():
        nskit.assert_noop(r)


# -- 1. Docker containers attached to lab hosts, across hosts, restarts ---------------------------------------------------
def overlay_topology(dl, web, cli):
    return {
        "hosts": hosts_of(dl),
        "networks": {"ov": {"subnet": "10.71.0.0/24", "overlay": {"type": "vxlan", "vni": 71}}},
        "containers": {
            "web": {"host": "h1", "kind": "docker", "docker": web,
                    "interfaces": [{"network": "ov", "ip": "10.71.0.10", "mac": "02:00:5e:71:00:0a", "name": "fab0"}]},
            "n2": {"host": "h2", "netns": dl.cns("n2"), "interfaces": [{"network": "ov"}]},
            "cli": {"host": "h3", "kind": "docker", "docker": cli, "interfaces": [{"network": "ov"}]},
        },
    }


def test_docker_containers_attached_across_hosts_and_restarted(dl):
    web = dl.sys.start(dl.name("web"), dl.tag, "httpd", "-f", "-p", "80")
    cli = dl.sys.start(dl.name("cli"), dl.tag, "sleep", "3600")
    topo = overlay_topology(dl, web, cli)
    try:
        res = dl.apply(topo)
        n2, ncli = ep(res, "n2"), ep(res, "cli")
        # fixed address, MAC and name; an allocated address on eth1 (the Docker default, eth0 stays Docker's);
        # the default route through the network's gateway (no Docker network: nothing to yield to)
        assert dl.sys.addresses(web, "fab0") == ["10.71.0.10/24"]
        assert "02:00:5e:71:00:0a" in dl.sys.exec(web, "ip", "link", "show", "fab0").stdout
        assert dl.sys.exec(web, "ip", "route").stdout.splitlines()[0].split()[:5] == \
            ["default", "via", "10.71.0.1", "dev", "fab0"]
        assert dl.sys.addresses(cli, "eth1") == ["%s/24" % ncli]
        assert dl.sys.addresses(cli, "eth0") is None
        assert [e["netns"] for e in res["h1"]["endpoints"]] == ["/proc/%d/ns/net" % dl.sys.pid(web)]
        # real packets: namespace container on h2 <-> Docker container on h1, Docker on h3 -> Docker on h1
        serve(dl.fabric, dl.cns("n2"), tcp=(7000,), udp=())
        assert nskit.ping(dl.cns("n2"), "10.71.0.10", timeout=2)
        assert nskit.connect(dl.cns("n2"), "10.71.0.10", 80, timeout=2)          # busybox httpd in the container
        assert dtalk(web, dl.sys, n2, 7000) == "tcp 7000 from 10.71.0.10"
        assert dping(cli, dl.sys, "10.71.0.10") and dping(cli, dl.sys, n2)
        assert dtalk(cli, dl.sys, n2, 7000) == "tcp 7000 from %s" % ncli
        noop(dl.apply(topo))

        # a restarted container has a new namespace: the next apply attaches it again, with the same address
        old = dl.sys.pid(web)
        dl.sys.docker("restart", "-t", "0", web)
        assert dl.sys.pid(web) != old and dl.sys.addresses(web, "fab0") is None
        again = dl.apply(topo, hosts=("h1",))["h1"]
        assert any("container end fab0 in /proc/%d/ns/net" % dl.sys.pid(web) in a for a in again["actions"])
        assert dl.sys.addresses(web, "fab0") == ["10.71.0.10/24"]
        assert dtalk(web, dl.sys, n2, 7000) == "tcp 7000 from 10.71.0.10"
        noop(dl.apply(topo, hosts=("h1",)))

        # a stopped container: the host is applied without it and the warning names it; started again, it gets
        # its allocated address back (the lease is kept while it is away)
        dl.sys.docker("stop", "-t", "0", cli)
        away = dl.apply(topo, hosts=("h3",))["h3"]
        assert away["endpoints"] == []
        assert len(away["warnings"]) == 1 and "containers.cli: Docker container %r is not running (exited) on host " \
            "h3" % cli in away["warnings"][0], away["warnings"]
        dl.sys.docker("start", cli)
        back = dl.apply(topo, hosts=("h3",))["h3"]
        assert ep({"h3": back}, "cli") == ncli and back["warnings"] == []
        assert dl.sys.addresses(cli, "eth1") == ["%s/24" % ncli]
        assert dping(cli, dl.sys, "10.71.0.10")

        # a container that does not exist: a warning naming it, the rest of the host is applied
        gone = copy.deepcopy(topo)
        gone["containers"]["ghost"] = {"host": "h3", "kind": "docker", "docker": dl.name("ghost"),
                                       "interfaces": [{"network": "ov"}]}
        r = dl.apply(gone, hosts=("h3",))["h3"]
        assert any("containers.ghost: there is no Docker container %r on host h3" % dl.name("ghost") in w
                   for w in r["warnings"]), r["warnings"]
        assert dl.sys.addresses(cli, "eth1") == ["%s/24" % ncli]
    finally:
        dl.reset(topo)


def test_watcher_reattaches_a_restarted_container_within_seconds(dl):
    web = dl.sys.start(dl.name("wweb"), dl.tag, "httpd", "-f", "-p", "80")
    topo = {
        "hosts": hosts_of(dl),
        "networks": {"ov": {"subnet": "10.74.0.0/24", "overlay": {"type": "vxlan", "vni": 74}}},
        "containers": {
            "web": {"host": "h2", "kind": "docker", "docker": web, "interfaces": [{"network": "ov"}]},
            "n1": {"host": "h1", "netns": dl.cns("wn1"), "interfaces": [{"network": "ov"}]},
        },
    }
    watcher = None
    try:
        addr = ep(dl.apply(topo, hosts=("h1", "h2")), "web")
        log = os.path.join(dl.dir, "watch.log")
        with open(log, "w") as out:
            watcher = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % dl.hns("h2"), "--"] + CLI +
                                       ["watch", "--host", "h2", "--state-dir", os.path.join(dl.dir, "state")],
                                       stdout=out, stderr=subprocess.STDOUT)
        dl.fabric.procs.append(watcher)

        def events():
            with open(log) as f:
                return [json.loads(l) for l in f if l.startswith("{")]
        nskit.wait_until(lambda: any(e["event"] == "applied" for e in events()), 30, "the watcher's first apply")
        assert [e["changed"] for e in events() if e["event"] == "applied"] == [False]    # nothing had drifted
        seen = []
        for how in (("restart", "-t", "0", web), ("stop", "-t", "0", web), ("start", web)):
            dl.sys.docker(*how)
            if how[0] == "stop":
                # the kernel tears the stopped container's namespace (and its veth) down asynchronously
                nskit.wait_until(lambda: not nskit.ping(dl.cns("wn1"), addr, timeout=0.3), 30, "the stopped container to go")
                continue
            t0 = time.monotonic()
            nskit.wait_until(lambda: dl.sys.addresses(web, "eth1") == ["%s/24" % addr], 30, "the watcher to re-attach")
            seen.append(time.monotonic() - t0)
            assert nskit.ping(dl.cns("wn1"), addr, timeout=2) and nskit.connect(dl.cns("wn1"), addr, 80)
        applied = [e for e in events() if e["event"] == "applied"]
        assert [e["trigger"].split(" (")[0] for e in applied[1:]] == ["container web", "container web"], applied
        assert all(e["changed"] and not e["warnings"] for e in applied[1:]), applied
        print("watcher re-attached in %s s" % ", ".join("%.2f" % s for s in seen))
        assert max(seen) < 5
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=10)
        dl.reset(topo)


# -- 2. Docker's firewall, Docker's own networks and ports beside netstitch (the nested dockerd in h1) -----------------
def iptables_docker(ns):
    """Docker's rules as iptables-save prints them (counters dropped), without netstitch's DOCKER-USER rules."""
    out = nskit.nsexec(ns, "iptables-save").stdout
    return [re.sub(r"\[\d+:\d+\]", "[-]", l) for l in out.splitlines()
            if not l.startswith("#") and "netstitch" not in l]


def test_beside_dockers_firewall_ports_and_networks(dl):
    h1 = dl.hns("h1")
    nest = dl.nest
    nest.docker("network", "create", "--subnet", "172.28.5.0/24", "dnet-%s" % dl.id)
    app = nest.start(dl.name("app"), dl.tag, "httpd", "-f", "-p", "80", network="dnet-%s" % dl.id,
                     extra=("-p", "8081:80"))
    both = nest.start(dl.name("both"), dl.tag, "httpd", "-f", "-p", "80", network="dnet-%s" % dl.id)
    topo = {
        "hosts": hosts_of(dl, nested_on_h1=True),
        "networks": {"ov": {"subnet": "10.72.0.0/24", "overlay": {"type": "vxlan", "vni": 72}},
                     "front": {"subnet": "10.75.0.0/24"}},
        "containers": {
            "both": {"host": "h1", "kind": "docker", "docker": both, "interfaces": [{"network": "ov"}]},
            "pub": {"host": "h1", "netns": dl.cns("pub"), "interfaces": [{"network": "front"}],
                    "publish": [{"host_port": 8080, "container_port": 80}]},
            "n2": {"host": "h2", "netns": dl.cns("fn2"), "interfaces": [{"network": "ov"}]},
        },
    }
    try:
        before = iptables_docker(h1)
        assert "-P FORWARD DROP" in nskit.nsexec(h1, "iptables", "-S", "FORWARD").stdout
        eth0_before = nest.addresses(both, "eth0")
        assert eth0_before and eth0_before[0].startswith("172.28.5.")
        res = dl.apply(topo, hosts=("h1", "h2"))
        assert any(a.startswith("add to DOCKER-USER: -i nsbr-ov") for a in res["h1"]["actions"])
        ov = ep(res, "both")
        # netstitch's interface is eth1; Docker's eth0 and Docker's default route are left alone
        assert nest.addresses(both, "eth1") == ["%s/24" % ov]
        assert nest.addresses(both, "eth0") == eth0_before
        assert nest.exec(both, "ip", "route").stdout.splitlines()[0].startswith("default via 172.28.5.1 dev eth0")
        # netstitch traffic through Docker's FORWARD DROP: across hosts to the Docker container, published port
        serve(dl.fabric, dl.cns("fn2"), tcp=(7000,), udp=())
        serve(dl.fabric, dl.cns("pub"), tcp=(80,), udp=())
        n2 = ep(res, "n2")
        assert nskit.ping(dl.cns("fn2"), ov, timeout=2) and nskit.connect(dl.cns("fn2"), ov, 80, timeout=2)
        assert dtalk(both, nest, n2, 7000) == "tcp 7000 from %s" % ov
        out = "%s-out" % dl.fabric.name
        assert talk(out, "192.0.2.1", 8080) == "tcp 80 from 192.0.2.254"
        # Docker's own -p port and its own network keep working beside netstitch's
        assert nskit.connect(out, "192.0.2.1", 8081, timeout=2)
        assert dping(app, nest, "198.51.100.1") and dping(app, nest, nest.addresses(both, "eth0")[0].split("/")[0])
        assert nskit.connect(h1, nest.addresses(app, "eth0")[0].split("/")[0], 80)
        # Docker's rules are as Docker made them; netstitch only added its marked DOCKER-USER rules
        assert iptables_docker(h1) == before
        noop(dl.apply(topo, hosts=("h1", "h2")))
        dl.apply({"hosts": topo["hosts"], "networks": {}, "containers": {}}, hosts=("h1", "h2"))
        assert iptables_docker(h1) == before
        assert nskit.nsexec(h1, "iptables", "-S", "DOCKER-USER").stdout.splitlines()[1:] == ["-A DOCKER-USER -j RETURN"]
        assert nskit.connect(out, "192.0.2.1", 8081, timeout=2)
        assert nest.addresses(both, "eth1") is None and nest.addresses(both, "eth0") == eth0_before
    finally:
        dl.reset(topo)
        nest.docker("network", "rm", "dnet-%s" % dl.id, check=False)


# -- 3. A Docker network on the fabric ---------------------------------------------------------------------------------
def fabric_topology(dl, **docker):
    return {
        "hosts": hosts_of(dl, nested_on_h1=True),
        "networks": {"fab": {"subnet": "10.73.0.0/24", "overlay": {"type": "vxlan", "vni": 73},
                             "hosts": ["h1", "h2"], "docker": dict({"name": "fab-%s" % dl.id, "hosts": ["h1"]},
                                                                   **docker)}},
        "containers": {"n2": {"host": "h2", "netns": dl.cns("dn2"), "interfaces": [{"network": "fab"}]},
                       "n1": {"host": "h1", "netns": dl.cns("dn1"), "interfaces": [{"network": "fab"}]}},
    }


def test_docker_network_on_the_fabric(dl):
    nest, api = dl.nest, dockerkit.api(dl.nested.url)
    dname = "fab-%s" % dl.id
    topo = fabric_topology(dl)
    try:
        res = dl.apply(topo, hosts=("h1", "h2"))
        assert [a for a in res["h1"]["actions"] if "Docker" in a] == [
            "create Docker network %s on bridge nsbr-fab (subnet 10.73.0.0/24, gateway 10.73.0.1, ip_range "
            "10.73.0.24/29, mtu 1450)" % dname]
        assert not any("Docker" in a for a in res["h2"]["actions"])
        net = api.inspect_network(dname)
        assert net["Driver"] == "bridge"
        assert net["IPAM"]["Config"] == [{"Subnet": "10.73.0.0/24", "IPRange": "10.73.0.24/29",
                                          "Gateway": "10.73.0.1"}]
        assert net["Options"]["com.docker.network.bridge.name"] == "nsbr-fab"
        assert net["Options"]["com.docker.network.driver.mtu"] == "1450"
        assert net["Labels"] == {"netstitch.host": "h1", "netstitch.network": "fab"}
        # netstitch's own container on h1 is outside Docker's range
        n1, n2 = ep(res, "n1"), ep(res, "n2")
        assert n1 == "10.73.0.16"
        # docker run --network: an address in h1's Docker range, and the fabric reaches it from h2
        d1 = nest.start(dl.name("d1"), dl.tag, "httpd", "-f", "-p", "80", network=dname)
        d2 = nest.start(dl.name("d2"), dl.tag, "httpd", "-f", "-p", "80", network=dname, extra=("--ip", "10.73.0.30"))
        a1 = nest.addresses(d1, "eth0")[0]
        assert a1.endswith("/24") and 24 <= int(a1.split("/")[0].split(".")[3]) < 32, a1
        a1 = a1.split("/")[0]
        assert nest.addresses(d2, "eth0") == ["10.73.0.30/24"]
        assert "mtu 1450" in nest.exec(d1, "ip", "link", "show", "eth0").stdout
        serve(dl.fabric, dl.cns("dn2"), tcp=(7000,), udp=())
        assert nskit.ping(dl.cns("dn2"), a1, timeout=2) and nskit.connect(dl.cns("dn2"), a1, 80, timeout=2)
        assert nskit.connect(dl.cns("dn2"), "10.73.0.30", 80, timeout=2)
        assert dtalk(d1, nest, n2, 7000) == "tcp 7000 from %s" % a1
        assert dping(d1, nest, n1)
        noop(dl.apply(topo, hosts=("h1", "h2")))
        net_id = net["Id"]

        # options netstitch enforces itself: the Docker network stays, with its containers
        kept = copy.deepcopy(topo)
        kept["networks"]["fab"]["masquerade"] = False
        r = dl.apply(kept, hosts=("h1", "h2"))
        assert r["h1"]["changed"] and not any("Docker network" in a for a in r["h1"]["actions"])
        assert r["h1"]["writes"]["docker"] == 0
        assert api.inspect_network(dname)["Id"] == net_id and len(api.inspect_network(dname)["Containers"]) == 2
        assert nskit.connect(dl.cns("dn2"), a1, 80, timeout=2)

        # what Docker cannot change: the plan says so first, and with containers connected it refuses
        moved = copy.deepcopy(kept)
        moved["networks"]["fab"]["docker"]["range_len"] = 30
        path = dl.write(moved)
        plan = dl.cli("h1", "apply", path, "--check", "--docker-force")     # what force would do, nothing done
        recreate = [a for a in plan["actions"] if "Docker network" in a]
        assert recreate == ["re-create Docker network %s (Docker cannot change ip_range 10.73.0.24/29 -> "
                            "10.73.0.28/30); containers connected again: %s (%s), %s (10.73.0.30)"
                            % (dname, d1, a1, d2)], plan["actions"]
        refused = dl.cli("h1", "apply", path, ok=False)
        assert refused.returncode == 1
        assert ("networks.fab.docker: Docker network %s must be re-created (Docker cannot change ip_range "
                "10.73.0.24/29 -> 10.73.0.28/30) but containers %s, %s are connected to it" % (dname, d1, d2)
                ) in refused.stderr, refused.stderr
        assert api.inspect_network(dname)["Id"] == net_id
        forced = dl.cli("h1", "apply", path, "--docker-force")
        assert recreate[0] in forced["actions"]
        net2 = api.inspect_network(dname)
        assert net2["Id"] != net_id and net2["IPAM"]["Config"][0]["IPRange"] == "10.73.0.28/30"
        assert sorted(c["IPv4Address"] for c in net2["Containers"].values()) == sorted(["%s/24" % a1,
                                                                                        "10.73.0.30/24"])
        assert nskit.ping(dl.cns("dn2"), a1, timeout=2) and nskit.connect(dl.cns("dn2"), "10.73.0.30", 80)
        # an address Docker holds outside its new range is never handed out by netstitch
        more = copy.deepcopy(moved)
        for i in range(3, 12):
            more["containers"]["x%d" % i] = {"host": "h1", "netns": dl.cns("dx%d" % i),
                                             "interfaces": [{"network": "fab"}]}
        res_more = dl.apply(more, hosts=("h1", "h2"))
        got = {ep(res_more, "x%d" % i) for i in range(3, 12)}
        assert a1 not in got and len(got) == 9
        noop(dl.apply(more, hosts=("h1", "h2")))
        dl.apply(moved, hosts=("h1", "h2"))

        # no longer offered: refused while containers are connected; removed once they are gone
        plain = copy.deepcopy(moved)
        del plain["networks"]["fab"]["docker"]
        r = dl.cli("h1", "apply", dl.write(plain), ok=False)
        assert "Docker network %s is no longer offered on host h1 but containers" % dname in r.stderr
        nest.remove_all()
        r = dl.apply(plain, hosts=("h1", "h2"))
        assert r["h1"]["actions"][0].startswith("remove Docker network %s" % dname)
        assert dname not in [n["Name"] for n in api.networks()]
        assert nskit.ping(dl.cns("dn2"), n1, timeout=2)       # netstitch's bridge stays, and so does its network
        noop(dl.apply(plain, hosts=("h1", "h2")))
    finally:
        dl.reset(topo)


def test_docker_network_drift_and_teardown(dl):
    """A labelled Docker network removed by hand is drift (`netstitch status`, exit 2) and a run puts it back;
    `netstitch down` removes it and leaves a Docker network netstitch did not make exactly as it was."""
    api = dockerkit.api(dl.nested.url)
    dname = "fab-%s" % dl.id
    topo = fabric_topology(dl)
    foreign = "other-%s" % dl.id
    try:
        dl.apply(topo, hosts=("h1", "h2"))
        api.remove_network(dname)
        r = dl.cli("h1", "status", "--json", ok=False)
        assert r.returncode == 2, r.stdout + r.stderr
        drift = json.loads(r.stdout)["drift"]
        assert drift["Docker network"] == ["Docker network %s missing: bridge nsbr-fab, subnet 10.73.0.0/24, "
                                           "gateway 10.73.0.1, ip_range 10.73.0.24/29, mtu 1450" % dname], drift
        dl.apply(topo, hosts=("h1",))
        assert dl.cli("h1", "status", ok=False).returncode == 0
        from docker.types import IPAMConfig, IPAMPool
        api.create_network(foreign, driver="bridge", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.74.9.0/24")]))
        before = api.inspect_network(foreign)
        r = dl.cli("h1", "down", "--check", ok=False)
        assert r.returncode == 2 and "Docker network %s removed: bridge nsbr-fab" % dname in r.stdout, r.stdout
        assert dname in [n["Name"] for n in api.networks()]
        r = dl.cli("h1", "down", ok=False)
        assert r.returncode == 0, r.stdout + r.stderr
        names = [n["Name"] for n in api.networks()]
        assert dname not in names and foreign in names
        assert api.inspect_network(foreign) == before
        assert dl.cli("h1", "down", ok=False).stdout.strip() == "host h1: nothing to do"
    finally:
        if foreign in [n["Name"] for n in api.networks()]:
            api.remove_network(foreign)
        dl.reset(topo)


# -- 4. Hosts without Docker ---------------------------------------------------------------------------------------------
NO_SDK = """
import sys
sys.modules["docker"] = None      # as on a host without the Docker SDK: importing it fails
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_hosts_without_docker(dl):
    plain = {"hosts": hosts_of(dl), "networks": {"lan": {"subnet": "10.76.0.0/24"}},
             "containers": {"a": {"host": "h3", "netns": dl.cns("na"), "interfaces": [{"network": "lan"}]}}}
    with_docker = copy.deepcopy(plain)
    with_docker["containers"]["web"] = {"host": "h3", "kind": "docker", "docker": dl.name("nosdk"),
                                        "interfaces": [{"network": "lan"}]}
    state = os.path.join(dl.dir, "state")
    try:
        def run(topo, *extra):
            return subprocess.run(["nsenter", "--net=/run/netns/%s" % dl.hns("h3"), "--", nskit.PY, "-c", NO_SDK,
                                   "apply", dl.write(topo), "--host", "h3", "--state-dir", state, "--json"] + list(extra),
                                  capture_output=True, text=True, timeout=60, check=False)
        # a topology without Docker: neither the SDK nor the engine is needed
        r = run(plain)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["changed"] is True
        # with a Docker container on the host: a clear error naming the host, the container and what is missing
        r = run(with_docker)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.strip().startswith("host h3: the Docker SDK for Python (package 'docker'), needed for Docker "
                                           "container web, is not installed for"), r.stderr
        # an engine that does not answer
        away = copy.deepcopy(with_docker)
        away["hosts"]["h3"]["docker_host"] = "unix://%s/nothing.sock" % dl.dir
        r = dl.cli("h3", "apply", dl.write(away), ok=False)
        assert r.returncode == 1
        assert r.stderr.strip().startswith("host h3: cannot reach the Docker Engine at unix://%s/nothing.sock, needed "
                                           "for Docker container web:" % dl.dir), r.stderr
    finally:
        dl.reset(plain)


# -- 6. names: a Docker container asks the network's name service (docker run --dns <gateway>) ---------------------------
def lookup(cont, engine, name):
    """The addresses busybox nslookup (its own resolver, the container's /etc/resolv.conf) gets for a name."""
    r = engine.exec(cont, "nslookup", name, check=False, timeout=15)
    answer = r.stdout.split("Name:", 1)[1] if "Name:" in r.stdout else ""
    return sorted({line.split()[1] for line in answer.splitlines() if line.startswith("Address:")})


def test_docker_container_resolves_names_across_hosts_and_its_link_names(dl):
    dc = dl.sys.start(dl.name("dc"), dl.tag, "sleep", "3600", extra=("--dns", "10.75.0.1"))
    topo = {
        "hosts": hosts_of(dl),
        "networks": {"nm": {"subnet": "10.75.0.0/24", "dns": True, "overlay": {"type": "vxlan", "vni": 75}}},
        "containers": {
            "dc": {"host": "h1", "kind": "docker", "docker": dc, "interfaces": [{"network": "nm"}]},
            "nb": {"host": "h2", "netns": dl.cns("nb"), "interfaces": [{"network": "nm"}]},
        },
        "links": [{"client": "dc", "server": "nb", "name": "backend"}],
    }

    def apply_all(t):
        path = dl.write(t)
        peers = dl.write({h: dl.cli(h, "prepare", path)["facts"] for h in t["hosts"]})
        return {h: dl.cli(h, "apply", path, "--peers", peers) for h in t["hosts"]}

    try:
        res = apply_all(topo)
        nb, ndc = ep(res, "nb"), ep(res, "dc")
        # Docker wrote the container's resolv.conf from --dns: the gateway, where h1's dnsmasq of nm listens
        assert "nameserver 10.75.0.1" in dl.sys.exec(dc, "cat", "/etc/resolv.conf").stdout
        # a container on another host, by its name and its qualified name; the link name (Docker owns /etc/hosts)
        assert lookup(dc, dl.sys, "nb") == [nb]
        assert lookup(dc, dl.sys, "nb.nm") == [nb]
        assert lookup(dc, dl.sys, "backend") == [nb]
        # and in the container's hosts file as well (netstitch's block in Docker's file), on any network
        assert hosts_block(dc, dl.sys) == ["%s\tbackend" % nb]
        assert dping(dc, dl.sys, lookup(dc, dl.sys, "backend")[0])
        assert lookup(dc, dl.sys, "nothing.nm") == []                               # the network's names only
        # the other way: the namespace container on h2 finds the Docker container by name
        r = nskit.run("ip", "netns", "exec", dl.cns("nb"), "getent", "hosts", "dc.nm", check=False)
        assert r.stdout.split()[:1] == [ndc], r.stdout
        # a link name is answered for the whole network (never isolated when it has a name service)
        r = nskit.run("ip", "netns", "exec", dl.cns("nb"), "getent", "hosts", "backend", check=False)
        assert r.stdout.split()[:1] == [nb], r.stdout
        noop(apply_all(topo))

        # Docker rewrites the container's files on restart: its resolv.conf comes from --dns again, the next apply
        # re-attaches it, and the names are answered as before
        dl.sys.docker("restart", "-t", "0", dc)
        assert dl.sys.addresses(dc, "eth1") is None
        apply_all(topo)
        assert dl.sys.addresses(dc, "eth1") == ["%s/24" % ndc]
        assert lookup(dc, dl.sys, "backend") == [nb] and lookup(dc, dl.sys, "nb") == [nb]

        # the link renamed: the old name goes, the new one is answered
        topo["links"][0]["name"] = "db"
        apply_all(topo)
        nskit.wait_until(lambda: lookup(dc, dl.sys, "db") == [nb], 5, "dc resolves db")
        assert lookup(dc, dl.sys, "backend") == []
        assert hosts_block(dc, dl.sys) == ["%s\tdb" % nb]
    finally:
        dl.reset(topo)


def test_container_on_a_bound_docker_network_asks_the_name_service(dl):
    """A container Docker starts on a Docker network bound to netstitch's bridge: Docker's embedded resolver
    (127.0.0.11) answers Docker's own names and forwards the others to the server given with --dns, the network's
    gateway, where netstitch's name service answers the fabric's names across hosts."""
    nest, dname = dl.nest, "fab-%s" % dl.id
    topo = fabric_topology(dl)
    topo["networks"]["fab"]["dns"] = True
    path = dl.write(topo)
    hosts = ("h1", "h2")
    try:
        peers = dl.write({h: dl.cli(h, "prepare", path)["facts"] for h in hosts})
        res = {h: dl.cli(h, "apply", path, "--peers", peers) for h in hosts}
        n1, n2 = ep(res, "n1"), ep(res, "n2")
        d1 = nest.start(dl.name("dd1"), dl.tag, "sleep", "3600", network=dname, extra=("--dns", "10.73.0.1"))
        assert "nameserver 127.0.0.11" in nest.exec(d1, "cat", "/etc/resolv.conf").stdout     # Docker's own
        assert lookup(d1, nest, "n2.fab") == [n2]          # on h2, through Docker's resolver and h1's dnsmasq
        assert lookup(d1, nest, "n2") == [n2]
        assert lookup(d1, nest, "n1") == [n1]
        assert dping(d1, nest, n2)
        noop({h: dl.cli(h, "apply", path, "--peers", peers) for h in hosts})
    finally:
        dl.reset(topo)


# -- 7. link names of a Docker client in Docker's own hosts file of the container (any network, isolated too) ----------
def hosts_block(cont, engine):
    """The lines of netstitch's block in the container's /etc/hosts as the container sees it, or None (no block)."""
    lines = engine.exec(cont, "cat", "/etc/hosts").stdout.splitlines()
    begin = [i for i, l in enumerate(lines) if l.startswith("# BEGIN netstitch")]
    if not begin:
        return None
    return lines[begin[0] + 1:lines.index("# END netstitch", begin[0])]


def test_docker_client_link_names_in_its_hosts_file_survive_restarts_and_go_with_the_link(dl):
    hc = dl.sys.start(dl.name("hc"), dl.tag, "sleep", "3600")
    hosts = hosts_of(dl)
    # the system engine, named: a spec that names none would use the engine the last applied one named (the nested
    # dockerd of the test before)
    hosts["h1"]["docker_host"] = SYSTEM
    topo = {
        "hosts": hosts,
        # isolated, so no name service (dns with isolated is refused): the name comes only from the hosts file
        "networks": {"hiso": {"subnet": "203.0.113.128/26", "isolated": True,
                              "overlay": {"type": "vxlan", "vni": 76}}},
        "containers": {
            "hc": {"host": "h1", "kind": "docker", "docker": hc, "interfaces": [{"network": "hiso"}]},
            "hs": {"host": "h2", "netns": dl.cns("hs"), "interfaces": [{"network": "hiso"}]},
        },
        "links": [{"client": "hc", "server": "hs", "name": "backend", "ports": [7070]}],
    }
    applied_on = ("h1", "h2")

    def apply_all(t):
        path = dl.write(t)
        peers = dl.write({h: dl.cli(h, "prepare", path)["facts"] for h in applied_on})
        return {h: dl.cli(h, "apply", path, "--peers", peers) for h in applied_on}

    watcher, server = None, None
    hosts_path = dl.sys.inspect(hc)["HostsPath"]
    try:
        res = apply_all(topo)
        hs = ep(res, "hs")
        assert hosts_block(hc, dl.sys) == ["%s\tbackend" % hs], (res["h1"]["actions"], res["h1"]["warnings"])
        assert "127.0.0.1\tlocalhost" in dl.sys.exec(hc, "cat", "/etc/hosts").stdout      # Docker's lines stay
        assert any("hosts file of Docker container hc" in l for l in res["h1"]["changes"]), res["h1"]["changes"]
        serve(dl.fabric, dl.cns("hs"), tcp=(7070,), udp=())
        server = dl.fabric.procs[-1]
        # the client reaches the server by its link name (busybox resolves through /etc/hosts), on the linked port
        assert dtalk(hc, dl.sys, "backend", 7070) == "tcp 7070 from %s" % ep(res, "hc")
        noop(apply_all(topo))

        # Docker writes the file anew when it (re)starts the container: the names are gone until the next apply
        ino = os.stat(hosts_path).st_ino
        dl.sys.docker("restart", "-t", "0", hc)
        assert hosts_block(hc, dl.sys) is None
        res = apply_all(topo)
        assert res["h1"]["changed"] and hosts_block(hc, dl.sys) == ["%s\tbackend" % hs]
        assert os.stat(hosts_path).st_ino == ino        # written in place: the file Docker bind-mounts
        assert dtalk(hc, dl.sys, "backend", 7070) == "tcp 7070 from %s" % ep(res, "hc")

        # ... or the watcher does it at once
        log = os.path.join(dl.dir, "watch-names.log")
        with open(log, "w") as out:
            watcher = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % dl.hns("h1"), "--"] + CLI +
                                       ["watch", "--host", "h1", "--state-dir", os.path.join(dl.dir, "state")],
                                       stdout=out, stderr=subprocess.STDOUT)
        dl.fabric.procs.append(watcher)

        def applied():
            with open(log) as f:
                return [e for e in (json.loads(l) for l in f if l.startswith("{")) if e["event"] == "applied"]
        nskit.wait_until(applied, 30, "the watcher's first apply")
        assert [e["changed"] for e in applied()] == [False]
        dl.sys.docker("restart", "-t", "0", hc)
        nskit.wait_until(lambda: hosts_block(hc, dl.sys) == ["%s\tbackend" % hs], 30, "the watcher to write the names")
        nskit.wait_until(lambda: dtalk(hc, dl.sys, "backend", 7070) == "tcp 7070 from %s" % ep(res, "hc"), 30,
                         "the restarted client to reach backend by name")
        assert [e["trigger"].split(" (")[0] for e in applied()[1:]] == ["container hc"], applied()
        watcher.terminate()
        watcher.wait(timeout=10)
        watcher = None

        # the link goes: so does its name (Docker's lines stay)
        no_link = dict(topo, links=[])
        apply_all(no_link)
        assert hosts_block(hc, dl.sys) is None
        assert "127.0.0.1\tlocalhost" in dl.sys.exec(hc, "cat", "/etc/hosts").stdout
        noop(apply_all(no_link))

        # a running Docker client that leaves the topology loses the names netstitch gave it
        apply_all(topo)
        assert hosts_block(hc, dl.sys) == ["%s\tbackend" % hs]
        gone = dict(topo, links=[], containers={"hs": topo["containers"]["hs"]})
        res = apply_all(gone)
        assert any("hosts file of Docker container hc" in l for l in res["h1"]["changes"]), res["h1"]["changes"]
        assert hosts_block(hc, dl.sys) is None
    finally:
        for p in (watcher, server):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        dl.reset(topo)


def test_a_failed_apply_takes_back_the_names_it_gave_a_docker_client(dl):
    rc = dl.sys.start(dl.name("rc"), dl.tag, "sleep", "3600")
    hosts = hosts_of(dl)
    hosts["h1"]["docker_host"] = SYSTEM
    base = {"hosts": hosts, "networks": {"rn": {"subnet": "203.0.113.192/26", "hosts": ["h1"]}},
            "containers": {"rs": {"host": "h1", "netns": dl.cns("rs"), "interfaces": [{"network": "rn"}]}}}
    grown = copy.deepcopy(base)
    grown["containers"]["rc"] = {"host": "h1", "kind": "docker", "docker": rc, "interfaces": [{"network": "rn"}]}
    grown["links"] = [{"client": "rc", "server": "rs", "name": "store"}]
    try:
        dl.apply(base, hosts=("h1",))
        path = dl.write(grown)
        planned = dl.cli("h1", "apply", path, "--check")["actions"]
        write = planned.index(next(t for t in planned if t.startswith("write names in the hosts file of Docker "
                                                                      "container rc")))
        # the run fails right after it wrote the names (at the next planned step): the rollback takes them back
        r = dl.cli("h1", "apply", path, ok=False, env=dict(os.environ, NETSTITCH_FAULT="fail-action:%d" % (write + 1)))
        assert r.returncode != 0 and "rolled back" in r.stderr, r.stderr
        assert hosts_block(rc, dl.sys) is None
        assert dl.sys.addresses(rc, "eth1") is None         # and its interface, as before the run
        res = dl.apply(grown, hosts=("h1",))
        assert hosts_block(rc, dl.sys) == ["%s\tstore" % ep(res, "rs")]
    finally:
        dl.reset(base)


# -- IPv6 dual stack (issue 15) ----------------------------------------------------------------------------------------
def test_docker_container_on_a_dual_stack_network(dl):
    """A Docker container (started with --network none) on a dual-stack network: its interface gets both families
    (a fixed ip6), its implicit default route both families' gateways; IPv6 packets to a namespace container and to
    the gateway; the rerun is a no-op."""
    w6 = dl.sys.start(dl.name("w6"), dl.tag, "sleep", "3600")
    topo = {"hosts": hosts_of(dl),
            "networks": {"d6": {"subnet": "10.72.0.0/24", "subnet6": "2001:db8:72::/64"}},
            "containers": {"w6": {"host": "h1", "kind": "docker", "docker": w6,
                                  "interfaces": [{"network": "d6", "ip6": "2001:db8:72::10"}]},
                           "n6": {"host": "h1", "netns": dl.cns("n6"), "interfaces": [{"network": "d6"}]}}}
    try:
        res = dl.apply(topo, hosts=("h1",))
        eps = {e["container"]: e for e in res["h1"]["endpoints"]}
        assert eps["w6"]["address6"] == "2001:db8:72::10/64" and eps["n6"]["address6"] == "2001:db8:72::2/64"
        shown = dl.sys.exec(w6, "ip", "-6", "addr", "show", "dev", "eth1").stdout
        assert "2001:db8:72::10/64" in shown, shown
        assert "default via 2001:db8:72::1" in dl.sys.exec(w6, "ip", "-6", "route").stdout
        for addr in ("2001:db8:72::2", "2001:db8:72::1"):
            assert dl.sys.exec(w6, "ping", "-6", "-c", "1", "-W", "2", addr, check=False).returncode == 0, addr
        noop(dl.apply(topo, hosts=("h1",)))
    finally:
        dl.reset(topo)
