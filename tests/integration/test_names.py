"""Names across hosts (kinds.dns): a dnsmasq per network and host on the gateway address, answering <container> and
<container>.<network> for every container of the network on every host; namespace containers find it through
/etc/netns/<netns>/resolv.conf (getent hosts inside `ip netns exec`). A container learns only the names of its
own networks: another network's server is not asked (its name is unknown), and cannot be asked (the dns guard)."""

import os

import nskit
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import

QUERY = """
import socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
try:
    s.sendto(q, (server, 53)); r = s.recv(512)
except OSError as e:
    print("FAILED %s" % e); sys.exit(1)
rcode, answers = r[3] & 15, struct.unpack("!H", r[6:8])[0]
print("rcode %d answers %d %s" % (rcode, answers, ".".join(str(b) for b in r[-4:]) if answers else ""))
"""


def topology(fabric):
    return {
        "hosts": {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in ("h1", "h2")},
        "networks": {"ov": {"subnet": "10.93.0.0/24", "dns": True, "overlay": {"type": "vxlan", "vni": 93}},
                     "lan": {"subnet": "10.94.0.0/24", "dns": True, "hosts": ["h1"]}},
        "containers": {
            "a": {"host": "h1", "netns": fabric.cns("a"), "interfaces": [{"network": "ov"}]},
            "b": {"host": "h2", "netns": fabric.cns("b"), "interfaces": [{"network": "ov"}]},
            "c": {"host": "h1", "netns": fabric.cns("c"), "interfaces": [{"network": "lan"}]},
        },
    }


def getent(ns, name):
    r = nskit.run("ip", "netns", "exec", ns, "getent", "hosts", name, check=False)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout.strip() else None


def ask(ns, server, name):
    r = nskit.nsexec(ns, nskit.SYS_PY, "-c", QUERY, server, name, check=False, timeout=15)
    return r.stdout.strip() if r.returncode == 0 else None


def test_containers_resolve_the_containers_of_their_networks_on_every_host(fabric):
    topo = topology(fabric)
    res = fabric.apply_all(topo, prepare=True)
    addr = {e["container"]: nskit.addr(e["address"]) for r in res.values() for e in r["endpoints"]}
    a, b, c = fabric.cns("a"), fabric.cns("b"), fabric.cns("c")
    # across hosts, both ways, short and qualified names
    assert getent(a, "b") == addr["b"]
    assert getent(a, "b.ov") == addr["b"]
    assert getent(b, "a") == addr["a"]
    assert getent(b, "a.ov") == addr["a"]
    assert ask(a, "10.93.0.1", "b.ov") == "rcode 0 answers 1 %s" % addr["b"]     # a DNS query, not a file
    with open("/etc/netns/%s/resolv.conf" % a) as f:
        assert "nameserver 10.93.0.1" in f.read()
    # c (network lan, same host as a) learns nothing of ov: its server does not know, ov's server does not answer
    assert getent(c, "b") is None and getent(c, "a.ov") is None
    assert ask(c, "10.94.0.1", "a.ov") == "rcode 3 answers 0"                 # NXDOMAIN, not asked upstream
    assert ask(c, "10.93.0.1", "a.ov") is None                                # the dns guard
    assert getent(c, "c.lan") == addr["c"]
    # one dnsmasq per network and host, and a rerun changes nothing
    pids = sorted(os.listdir(os.path.join(fabric.dir, "state", "dns", "h1")))
    assert [p for p in pids if p.endswith(".pid")] == ["lan.pid", "ov.pid"], pids
    for r in fabric.apply_all(topo, prepare=True).values():
        nskit.assert_noop(r)
    # a new container on another host: the names follow (the server re-reads them)
    topo["containers"]["d"] = {"host": "h2", "netns": fabric.cns("d"), "interfaces": [{"network": "ov"}]}
    res = fabric.apply_all(topo, prepare=True)
    d = [nskit.addr(e["address"]) for e in res["h2"]["endpoints"] if e["container"] == "d"][0]
    nskit.wait_until(lambda: getent(a, "d") == d, timeout=5, what="a resolves d")
    # lan without a name service: its server stops, c's resolv.conf goes
    with open(os.path.join(fabric.dir, "state", "dns", "h1", "lan.pid")) as f:
        lan_pid = int(f.read())
    del topo["networks"]["lan"]["dns"]
    fabric.apply_all(topo, prepare=True)
    assert not os.path.exists(os.path.join(fabric.dir, "state", "dns", "h1", "lan.pid"))
    nskit.wait_until(lambda: not os.path.exists("/proc/%d" % lan_pid), timeout=5, what="lan's dnsmasq gone")
    assert not os.path.exists("/etc/netns/%s/resolv.conf" % c)
    assert getent(a, "b") == addr["b"]                                         # ov keeps its names
    for r in fabric.apply_all(topo, prepare=True).values():
        nskit.assert_noop(r)
