"""Service chaining (issue 16, item 2): traffic between two networks passes through service containers, proven by real
packets in a three-host lab.

Each service counts the flow it forwards in both directions (an nft counter the test puts in the service's own
namespace, which the lab made); the server sees the client's own address (no NAT anywhere); with a service down, or
its route gone around, the traffic stops (the networks stay closed to each other on the host: no bypass).
"""

import json

import nskit
# fabric: the fixture
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import

SETTLE = 15.0
PORT = 7300
HOSTS = {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in ("h1", "h2", "h3")}


class _Procs(object):
    def __init__(self, fabric):
        self.procs = fabric.procs


def _topology(fabric, two=False, chain=True, where=None, front_overlay=False):
    """client on front, srv on back, fw between them (and lb, with a middle network, when ``two``); ``where``:
    {container: host} (default h1)."""
    where = where or {}

    def c(name, *nets):
        return {"host": where.get(name, "h1"), "netns": fabric.cns(name),
                "interfaces": [{"network": n, "default_route": i == 0} for i, n in enumerate(nets)]}
    front = {"subnet": "10.71.0.0/24"}
    if front_overlay:
        front["overlay"] = {"type": "vxlan", "vni": 4271}
    topo = {"version": 1, "hosts": HOSTS,
            "networks": {"front": front, "back": {"subnet": "10.73.0.0/24"}},
            "containers": {"client": c("client", "front"), "srv": c("srv", "back")}}
    if two:
        topo["networks"]["mid"] = {"subnet": "10.72.0.0/24"}
        topo["containers"]["fw"] = c("fw", "front", "mid")
        topo["containers"]["lb"] = c("lb", "mid", "back")
    else:
        topo["containers"]["fw"] = c("fw", "front", "back")
    if chain:
        topo["chains"] = {"web-to-db": {"from": "front", "to": "back", "services": ["fw", "lb"] if two else ["fw"]}}
    return topo


def _addresses(res):
    out = {}
    for r in res.values():
        for e in r["endpoints"]:
            out["%s/%s" % (e["container"], e["network"])] = nskit.addr(e["address"])
    return out


def _count(ns, client, server):
    """Put forward counters for both directions of client <-> server into a service's namespace."""
    nskit.nsexec(ns, "nft", "-f", "-", input="""
table ip chaintest {
  chain counted {
    type filter hook forward priority 0; policy accept;
    ip saddr %s ip daddr %s tcp dport %d counter
    ip saddr %s ip daddr %s tcp sport %d counter
  }
}
""" % (client, server, PORT, server, client, PORT))


def _counted(ns):
    """(packets client -> server, packets server -> client) the service forwarded."""
    out = json.loads(nskit.nsexec(ns, "nft", "-j", "list", "table", "ip", "chaintest").stdout)
    counts = [x["rule"]["expr"][-1]["counter"]["packets"] for x in out["nftables"] if "rule" in x]
    return tuple(counts)


def _tcp(fabric, client_ns, srv_ns, srv, ok=True):
    """A TCP connection client -> srv:PORT; returns the peers the server saw."""
    lst = nskit.Listener(_Procs(fabric), srv_ns, srv, PORT, lifetime=20)
    if ok:
        nskit.wait_until(lambda: nskit.connect(client_ns, srv, PORT, timeout=2), SETTLE, "TCP client -> srv")
    else:
        assert not nskit.connect(client_ns, srv, PORT, timeout=2), "client reached srv around the chain"
    return lst.peers()


def test_one_service_sees_both_directions_and_the_chain_fails_closed(fabric):
    res = fabric.apply_all(_topology(fabric))
    a = _addresses(res)
    client_ns, fw_ns, srv_ns = fabric.cns("client"), fabric.cns("fw"), fabric.cns("srv")
    # the routes and the service's forwarding, as stated
    assert "10.73.0.0/24 via %s dev eth0" % a["fw/front"] in nskit.nsexec(client_ns, "ip", "route").stdout
    assert "10.71.0.0/24 via %s dev eth0" % a["fw/back"] in nskit.nsexec(srv_ns, "ip", "route").stdout
    assert nskit.nsexec(fw_ns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    # a second apply changes nothing, with zero writes
    for r in fabric.apply_all(_topology(fabric)).values():
        nskit.assert_noop(r)
    # a new namespace inherits the host's forwarding (on here): switched off, the next apply switches it on again
    nskit.nsexec(fw_ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    res = fabric.apply_all(_topology(fabric))
    assert res["h1"]["actions"] == ["switch on forwarding in %s (service of chain web-to-db)" % fw_ns], res["h1"]
    assert nskit.nsexec(fw_ns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    for r in fabric.apply_all(_topology(fabric)).values():
        nskit.assert_noop(r)

    _count(fw_ns, a["client/front"], a["srv/back"])
    peers = _tcp(fabric, client_ns, srv_ns, a["srv/back"])
    assert a["client/front"] in peers, peers          # the server sees the client's own address
    there, back = _counted(fw_ns)
    assert there > 0 and back > 0, (there, back)      # the service forwarded both directions

    # the service's interface down: the route still points at it, nothing goes around it
    nskit.nsexec(fw_ns, "ip", "link", "set", "eth0", "down")
    assert _tcp(fabric, client_ns, srv_ns, a["srv/back"], ok=False) == []
    nskit.assert_no_ping(client_ns, a["srv/back"])
    # an apply brings it up again: the flow passes the service again
    res = fabric.apply_all(_topology(fabric))
    assert res["h1"]["changed"]
    before = _counted(fw_ns)
    assert a["client/front"] in _tcp(fabric, client_ns, srv_ns, a["srv/back"])
    assert _counted(fw_ns)[0] > before[0]

    # a client that takes its chain route away meets the host's closed network: no bypass either
    nskit.nsexec(client_ns, "ip", "route", "del", "10.73.0.0/24")
    assert _tcp(fabric, client_ns, srv_ns, a["srv/back"], ok=False) == []
    nskit.assert_no_ping(client_ns, a["srv/back"])
    fabric.apply_all(_topology(fabric))
    assert a["client/front"] in _tcp(fabric, client_ns, srv_ns, a["srv/back"])

    # the probe expects the client and the server to reach each other through the chain, and sees it so
    r = fabric.cli("h1", "probe", fabric._write(_topology(fabric)), "--json", ok=False)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["all_ok"], out["mismatches"]
    got = {(o["from"], o["to"], o["expect"]) for o in out["outcomes"]}
    assert {("client@h1", a["srv/back"], True), ("srv@h1", a["client/front"], True)} <= got, got

    # the chain goes: its routes go, the service keeps forwarding (never lowered), the networks are closed again
    res = fabric.apply_all(_topology(fabric, chain=False))
    assert res["h1"]["changed"]
    assert "10.73.0.0/24" not in nskit.nsexec(client_ns, "ip", "route").stdout
    assert "10.71.0.0/24" not in nskit.nsexec(srv_ns, "ip", "route").stdout
    assert _tcp(fabric, client_ns, srv_ns, a["srv/back"], ok=False) == []
    for r in fabric.apply_all(_topology(fabric, chain=False)).values():
        nskit.assert_noop(r)


def test_a_chain_of_two_services(fabric):
    res = fabric.apply_all(_topology(fabric, two=True))
    a = _addresses(res)
    client_ns, fw_ns, lb_ns, srv_ns = (fabric.cns(n) for n in ("client", "fw", "lb", "srv"))
    assert "10.73.0.0/24 via %s dev eth1" % a["lb/mid"] in nskit.nsexec(fw_ns, "ip", "route").stdout
    assert "10.71.0.0/24 via %s dev eth0" % a["fw/mid"] in nskit.nsexec(lb_ns, "ip", "route").stdout
    for r in fabric.apply_all(_topology(fabric, two=True)).values():
        nskit.assert_noop(r)
    _count(fw_ns, a["client/front"], a["srv/back"])
    _count(lb_ns, a["client/front"], a["srv/back"])
    assert a["client/front"] in _tcp(fabric, client_ns, srv_ns, a["srv/back"])
    for ns in (fw_ns, lb_ns):
        there, back = _counted(ns)
        assert there > 0 and back > 0, (ns, there, back)
    # the second service down: the flow stops at it
    nskit.nsexec(lb_ns, "ip", "link", "set", "eth0", "down")
    assert _tcp(fabric, client_ns, srv_ns, a["srv/back"], ok=False) == []


def test_a_service_on_another_host_across_the_overlay(fabric):
    """The client on h1, the service and the server on h2: the client's next hop is the service's address on the
    VXLAN overlay, learnt from h2's facts (prepare)."""
    where = {"client": "h1", "fw": "h2", "srv": "h2"}
    topo = _topology(fabric, where=where, front_overlay=True)
    res = fabric.apply_all(topo, prepare=True)
    a = _addresses(res)
    client_ns, fw_ns, srv_ns = fabric.cns("client"), fabric.cns("fw"), fabric.cns("srv")
    assert "10.73.0.0/24 via %s dev eth0" % a["fw/front"] in nskit.nsexec(client_ns, "ip", "route").stdout
    for r in fabric.apply_all(topo, prepare=True).values():
        nskit.assert_noop(r)
    _count(fw_ns, a["client/front"], a["srv/back"])
    assert a["client/front"] in _tcp(fabric, client_ns, srv_ns, a["srv/back"])
    there, back = _counted(fw_ns)
    assert there > 0 and back > 0, (there, back)
    nskit.nsexec(fw_ns, "ip", "link", "set", "eth0", "down")
    assert _tcp(fabric, client_ns, srv_ns, a["srv/back"], ok=False) == []


def _cli_env(fabric, env, *args):
    import os
    import subprocess
    from fabrickit import CLI
    return subprocess.run(["nsenter", "--net=/run/netns/%s" % fabric.hns("h1"), "--"] + CLI + list(args) +
                          ["--host", "h1", "--state-dir", os.path.join(fabric.dir, "state"), "--json"],
                          capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ, **env))


def test_a_crash_at_any_write_of_the_chain_converges(fabric, tmp_path):
    """From the networks and containers without the chain, the chain's apply is killed at each of its write points
    (routes in the client and the server, forwarding in the service): the next apply converges (routes, forwarding,
    then zero writes), and removing the chain takes its routes away again."""
    without, with_chain = fabric._write(_topology(fabric, chain=False)), fabric._write(_topology(fabric))
    client_ns, fw_ns, srv_ns = fabric.cns("client"), fabric.cns("fw"), fabric.cns("srv")
    assert _cli_env(fabric, {}, "apply", without).returncode == 0
    # a new namespace inherits the host's forwarding here: off, so the chain's apply switches it on
    nskit.nsexec(fw_ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    count = tmp_path / "points"
    r = _cli_env(fabric, {"NETSTITCH_FAULT": "count:%s" % count}, "apply", with_chain)
    assert r.returncode == 0, r.stderr
    points = count.read_text().splitlines()
    assert any("sysctl net/ipv4/ip_forward" in p for p in points) and len(points) >= 3, (points, r.stdout)
    for n in range(1, len(points) + 1):
        r = _cli_env(fabric, {}, "apply", without)
        assert r.returncode == 0, (n, r.stderr)
        assert "10.73.0.0/24" not in nskit.nsexec(client_ns, "ip", "route").stdout
        nskit.nsexec(fw_ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        r = _cli_env(fabric, {"NETSTITCH_FAULT": "kill:%d" % n}, "apply", with_chain)
        assert r.returncode == -9, (n, points[n - 1], r.returncode, r.stderr)
        r = _cli_env(fabric, {}, "apply", with_chain)
        assert r.returncode == 0, (n, points[n - 1], r.stderr)
        assert "10.73.0.0/24 via" in nskit.nsexec(client_ns, "ip", "route").stdout, (n, points[n - 1])
        assert "10.71.0.0/24 via" in nskit.nsexec(srv_ns, "ip", "route").stdout, (n, points[n - 1])
        assert nskit.nsexec(fw_ns, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
        r = _cli_env(fabric, {}, "apply", with_chain)
        nskit.assert_noop(json.loads(r.stdout))
