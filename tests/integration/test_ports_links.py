"""Published ports, isolated networks and links, proven with real TCP/UDP in a two-host lab, plus coexistence with a
foreign nft table and with Docker's iptables firewall (Docker's rules copied into a lab host namespace)."""

import copy
import os
import re
import subprocess

import nskit
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import
# (fabric: the fixture, a lab removed with its hosts files)

HOSTS = ("h1", "h2")
SERVER = """
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, a = s.accept(); c.sendall(("tcp %d from %s\\n" % (port, a[0])).encode()); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(100); s.sendto(("udp %d from %s\\n" % (port, a[0])).encode(), a)
for p in filter(None, sys.argv[1].split(",")):
    threading.Thread(target=tcp, args=(int(p),), daemon=True).start()
for p in filter(None, sys.argv[2].split(",")):
    threading.Thread(target=udp, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait(60)
"""
CLIENT = """
import socket, sys
proto, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((addr, port), 1.5); print(s.recv(100).decode().strip())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5); s.sendto(b"x", (addr, port))
        print(s.recv(100).decode().strip())
except OSError as e:
    print("FAILED %s" % e); sys.exit(1)
"""


def serve(fabric, ns, tcp=(80, 81), udp=(53,)):
    p = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % ns, "--", nskit.SYS_PY, "-c", SERVER,
                          ",".join(map(str, tcp)), ",".join(map(str, udp))], stdout=subprocess.PIPE, text=True)
    fabric.procs.append(p)
    assert p.stdout.readline().strip() == "ready"


def talk(ns, addr, port, proto="tcp"):
    """The server's answer ("tcp 80 from <source>") or None when the connection fails."""
    r = nskit.nsexec(ns, nskit.SYS_PY, "-c", CLIENT, proto, addr, str(port), check=False, timeout=15)
    return r.stdout.strip() if r.returncode == 0 else None


def topology(fabric):
    return {
        "hosts": {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in HOSTS},
        "networks": {
            "front": {"subnet": "10.91.0.0/24"},
            "iso": {"subnet": "10.92.0.0/24", "isolated": True, "overlay": {"type": "vxlan", "vni": 92}},
        },
        "containers": {
            "web": {"host": "h1", "netns": fabric.cns("web"),
                    "interfaces": [{"network": "front"}, {"network": "iso", "default_route": False}],
                    "publish": [{"host_port": 8080, "container_port": 80},
                                {"host_port": 5353, "container_port": 53, "protocol": "udp"},
                                {"host_port": "9080-9081", "container_port": "80-81"}]},
            "cli": {"host": "h1", "netns": fabric.cns("cli"),
                    "interfaces": [{"network": "front"}, {"network": "iso", "default_route": False}]},
            "mid": {"host": "h1", "netns": fabric.cns("mid"), "interfaces": [{"network": "iso"}]},
            "far": {"host": "h2", "netns": fabric.cns("far"), "interfaces": [{"network": "iso"}]},
        },
        "links": [
            {"client": "cli", "server": "web", "ports": [80], "name": "webby"},
            {"client": "far", "server": "web", "ports": [80]},
        ],
    }


def test_published_ports_from_outside_the_host_and_a_neighbour(fabric):
    topo = topology(fabric)
    first = fabric.apply_all(topo)
    serve(fabric, fabric.cns("web"))
    out, host, cli = "%s-out" % fabric.name, fabric.hns("h1"), fabric.cns("cli")
    # from outside (the lab's outside router on the underlay), from the host itself, and hairpin from a container
    assert talk(out, "192.0.2.1", 8080) == "tcp 80 from 192.0.2.254"
    assert talk(host, "192.0.2.1", 8080) == "tcp 80 from 192.0.2.1"
    hairpin = talk(cli, "192.0.2.1", 8080)
    assert hairpin is not None and hairpin.startswith("tcp 80 from 10.91.0."), hairpin
    assert talk(out, "192.0.2.1", 5353, "udp") == "udp 53 from 192.0.2.254"
    assert talk(out, "192.0.2.1", 9081) == "tcp 81 from 192.0.2.254"
    assert talk(out, "192.0.2.1", 8081) is None                    # not published
    assert talk(out, "192.0.2.2", 8080) is None                    # published on h1 only
    # one host address only: add a second address to h1 (inside the lab host) and bind to it
    nskit.run("ip", "-n", host, "addr", "add", "192.0.2.101/24", "dev", "eth0")
    topo2 = copy.deepcopy(topo)
    topo2["containers"]["web"]["publish"].append({"host_port": 7070, "container_port": 81, "host_ip": "192.0.2.101"})
    res = fabric.apply_all(topo2)
    nft = [a for a in res["h1"]["actions"] if "nft" in a]
    # changing one mapping touches only its two elements (address and port), no chain is rewritten
    web_front = [nskit.addr(e["address"]) for e in first["h1"]["endpoints"]
                 if e["container"] == "web" and e["network"] == "front"][0]
    assert nft == ["add 1 element to nft map pub_one_addr (192.0.2.101 . tcp . 7070 -> %s)" % web_front,
                   "add 1 element to nft map pub_one_port (192.0.2.101 . tcp . 7070 -> 81)"], nft
    assert talk(out, "192.0.2.101", 7070) == "tcp 81 from 192.0.2.254"
    assert talk(out, "192.0.2.1", 7070) is None
    for r in fabric.apply_all(topo2).values():
        nskit.assert_noop(r)
    # removing the published port closes it
    fabric.apply_all(topo)
    assert talk(out, "192.0.2.1", 8080) == "tcp 80 from 192.0.2.254"
    assert talk(out, "192.0.2.101", 7070) is None


def test_two_containers_publishing_one_port_are_rejected(fabric):
    topo = topology(fabric)
    topo["containers"]["cli"]["publish"] = [{"host_port": 8080}]
    r = fabric.cli("h1", "apply", fabric._write(topo), ok=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "containers.cli.publish[0].host_port: tcp *:8080 on host h1 is also published by containers.web" in r.stderr
    assert nskit.run("ip", "-n", fabric.hns("h1"), "-o", "link", "show", "type", "bridge").stdout == ""


def _iso_addr(fabric, results):
    return {e["container"]: nskit.addr(e["address"]) for r in results.values() for e in r["endpoints"]
            if e["network"] == "iso"}


def _check_isolation(fabric, topo):
    res = fabric.apply_all(topo)
    iso = _iso_addr(fabric, res)
    for c in ("web", "mid", "cli"):
        serve(fabric, fabric.cns(c), tcp=(80, 81), udp=())
    web, cli, far, mid = (fabric.cns(c) for c in ("web", "cli", "far", "mid"))
    # linked: only on the linked port, same host and across hosts; replies pass
    assert talk(cli, iso["web"], 80) == "tcp 80 from %s" % iso["cli"]
    assert talk(far, iso["web"], 80) == "tcp 80 from %s" % iso["far"]
    assert talk(cli, iso["web"], 81) is None
    assert talk(far, iso["web"], 81) is None
    # not linked: nothing, same host and across hosts, either way
    assert talk(mid, iso["web"], 80) is None
    assert talk(web, iso["mid"], 80) is None
    assert talk(far, iso["mid"], 80) is None
    assert talk(web, iso["cli"], 80) is None
    # the non-isolated network of the same containers is open
    front = {e["container"]: nskit.addr(e["address"]) for e in res["h1"]["endpoints"] if e["network"] == "front"}
    assert talk(web, front["cli"], 81) == "tcp 81 from %s" % front["web"]
    # the link gives a name (hosts file of the namespace, as `ip netns exec` shows it)
    r = nskit.run("ip", "netns", "exec", cli, "getent", "hosts", "webby")
    assert r.stdout.split()[0] == front["web"]
    for r in fabric.apply_all(topo).values():
        nskit.assert_noop(r)
    # removing a link closes it, and its name goes
    topo2 = copy.deepcopy(topo)
    del topo2["links"][1]
    fabric.apply_all(topo2)
    assert talk(far, iso["web"], 80) is None
    assert talk(cli, iso["web"], 80) == "tcp 80 from %s" % iso["cli"]
    topo2["links"] = []
    fabric.apply_all(topo2)
    assert talk(cli, iso["web"], 80) is None
    assert nskit.run("ip", "netns", "exec", cli, "getent", "hosts", "webby", check=False).returncode != 0
    # a client that goes away takes the names netstitch gave it along
    fabric.apply_all(topo)
    assert os.path.exists("/etc/netns/%s/hosts" % cli)
    gone = copy.deepcopy(topo)
    del gone["containers"]["cli"]
    gone["links"] = [ln for ln in gone["links"] if ln["client"] != "cli"]
    fabric.apply_all(gone)
    assert not nskit.netns_exists(cli)
    assert not os.path.exists("/etc/netns/%s" % cli)


def test_isolation_and_links_stateful_with_br_netfilter(fabric):
    for h in HOSTS:
        assert nskit.nsexec(fabric.hns(h), "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() == "1"
    _check_isolation(fabric, topology(fabric))
    # the stateful variant lives in the inet table: no bridge table is needed
    assert nskit.nsexec(fabric.hns("h1"), "nft", "list", "table", "bridge", "netstitch", check=False).returncode != 0


def test_isolation_and_links_stateless_without_br_netfilter(fabric):
    for h in HOSTS:      # as on a host without br_netfilter: bridged traffic skips the inet hooks
        nskit.nsexec(fabric.hns(h), "sh", "-c", "echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables")
    _check_isolation(fabric, topology(fabric))
    listing = nskit.nsexec(fabric.hns("h1"), "nft", "list", "table", "bridge", "netstitch").stdout
    assert "iso_iso" in listing


FOREIGN = """
table inet foreign {
  chain theirfwd { type filter hook forward priority -5; policy accept; ip saddr 203.0.113.7 counter drop comment "theirs"; }
  chain theirpre { type nat hook prerouting priority dstnat; policy accept; tcp dport 6000 counter comment "theirs"; }
}
"""


def _docker_rules(ns):
    """iptables-save of a namespace without comments/counters: Docker's chains as they stand."""
    out = nskit.nsexec(ns, "iptables-save").stdout
    return [re.sub(r"\[\d+:\d+\]$", "[-]", l) for l in out.splitlines() if not l.startswith("#")]


def test_foreign_table_and_dockers_firewall_are_left_alone(fabric):
    h1 = fabric.hns("h1")
    nskit.nsexec(h1, "nft", "-f", "-", input=FOREIGN)
    # Docker's firewall as Docker leaves it on a host (FORWARD policy DROP, DOCKER-USER, isolation chains, nat DOCKER)
    docker = "\n".join([
        "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]", ":DOCKER - [0:0]",
        ":DOCKER-ISOLATION-STAGE-1 - [0:0]", ":DOCKER-ISOLATION-STAGE-2 - [0:0]", ":DOCKER-USER - [0:0]",
        "-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
        "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -o docker0 -j DOCKER", "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
        "-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
        "-A DOCKER-ISOLATION-STAGE-1 -j RETURN", "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
        "-A DOCKER-ISOLATION-STAGE-2 -j RETURN", "-A DOCKER-USER -j RETURN", "COMMIT",
        "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
        ":DOCKER - [0:0]", "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE", "-A DOCKER -i docker0 -j RETURN", "COMMIT", ""])
    nskit.nsexec(h1, "iptables-restore", input=docker)
    foreign_before = nskit.nsexec(h1, "nft", "list", "table", "inet", "foreign").stdout
    docker_before = [l for l in _docker_rules(h1) if "DOCKER-USER" not in l or l.startswith(":")]

    topo = topology(fabric)
    res = fabric.apply_all(topo)
    assert any(a.startswith("add to DOCKER-USER: -i nsbr-front") for a in res["h1"]["actions"]), res["h1"]["actions"]
    serve(fabric, fabric.cns("web"))
    out = "%s-out" % fabric.name
    # netstitch traffic flows through Docker's FORWARD DROP: published port, masquerade out, container to container
    assert talk(out, "192.0.2.1", 8080) == "tcp 80 from 192.0.2.254"
    assert nskit.ping(fabric.cns("cli"), "198.51.100.1", timeout=2)
    front = {e["container"]: nskit.addr(e["address"]) for e in res["h1"]["endpoints"] if e["network"] == "front"}
    assert talk(fabric.cns("cli"), front["web"], 81) is not None
    for r in fabric.apply_all(topo).values():
        nskit.assert_noop(r)
    # prune everything: netstitch's DOCKER-USER rules go, the rest is as it was
    fabric.apply_all({"hosts": topo["hosts"], "networks": {}, "containers": {}})
    assert nskit.nsexec(h1, "nft", "list", "table", "inet", "foreign").stdout == foreign_before
    after = _docker_rules(h1)
    assert [l for l in after if "DOCKER-USER" not in l or l.startswith(":")] == docker_before
    assert [l for l in after if l.startswith("-A DOCKER-USER")] == ["-A DOCKER-USER -j RETURN"]
    assert "netstitch" not in nskit.nsexec(h1, "nft", "list", "tables").stdout
