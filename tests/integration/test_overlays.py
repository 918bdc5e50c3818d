"""Multi-host overlays in a three-host lab: VXLAN, routed and tinc, proven by real packets.

Each test module run builds one lab per overlay kind (``ovl<random>``: switch, outside router, three hosts), applies
the topology on every host through the CLI (inside the host's namespace), and tears everything down, also on failure.
"""

import json
import os
import secrets
import subprocess

import pytest

import nskit
# fabric: the fixture
from fabrickit import SUBNET, fabric  # noqa: F401 pylint: disable=unused-import

TOP = nskit.TOP
OUTPUT = os.path.join(TOP, "tests", "output")


def addresses(results):
    return {e["container"]: nskit.addr(e["address"]) for r in results.values() for e in r["endpoints"]}


def assert_all_noop(results):
    for host, res in results.items():
        nskit.assert_noop(res)


# How long an overlay may take to carry traffic once every host has applied: tinc daemons exchange keys and meta
# connections first (a second or two here, many more on a machine loaded by other work); the kernel overlays are
# ready at once. Every wait below is on a condition (a ping, a connection, a listener) with this deadline, never a
# fixed time: a blocked path still fails, at the deadline. tinc's bound: a packet key that arrives out of order while
# the mesh forms is replaced at KeyExpire (30 s, kinds/tinc.py), so a pair may need up to ~35 s, plus load.
SETTLE = {"vxlan": 15.0, "routed": 15.0, "tinc": 60.0}


def eventually(cond, timeout, what, fabric=None):
    try:
        nskit.wait_until(cond, timeout=timeout, what=what)
    except AssertionError as e:
        if fabric is None:
            raise
        raise AssertionError("%s\n%s" % (e, fabric.diagnose())) from None


def tcp_ok(fabric, src_ns, dst_ns, dst_addr, port=7100):
    """A TCP connection that the listener sees; a second attempt absorbs a slow start on a loaded machine (a
    connection that is really blocked fails both)."""
    class _Env(object):
        procs = fabric.procs
    lst = nskit.Listener(_Env, dst_ns, dst_addr, port, lifetime=15)
    ok = nskit.connect(src_ns, dst_addr, port, timeout=3) or nskit.connect(src_ns, dst_addr, port, timeout=3)
    peers = lst.peers()
    return ok and len(peers) >= 1


@pytest.mark.parametrize("kind", ["vxlan", "routed", "tinc"])
def test_containers_on_every_host_pair_talk(fabric, kind):
    topo = fabric.topology(kind)
    first = fabric.apply_all(topo)
    assert all(r["changed"] for r in first.values())
    addr = addresses(first)
    for src in ("c1", "c2", "c3"):
        for dst in ("c1", "c2", "c3"):
            if src != dst:
                ns, dns, a = fabric.cns(src), fabric.cns(dst), addr[dst]
                eventually(lambda: nskit.ping(ns, a, timeout=1), SETTLE[kind],
                           "%s: %s to ping %s (%s)" % (kind, src, dst, a), fabric)
                eventually(lambda: tcp_ok(fabric, ns, dns, a), SETTLE[kind], "%s: TCP %s -> %s" % (kind, src, dst))
    # each host allocates only from its own slice
    for host, res in first.items():
        for e in res["endpoints"]:
            assert e["address"].startswith(SUBNET[kind].split(".0.")[0]), e
    assert len(set(addr.values())) == 3
    # and a rerun writes nothing anywhere
    assert_all_noop(fabric.apply_all(topo))


@pytest.mark.parametrize("kind,overhead", [("vxlan", 50), ("tinc", 80)])
def test_mtu_budget_largest_df_packet_crosses_one_more_fails(fabric, kind, overhead):
    res = fabric.apply_all(fabric.topology(kind))
    addr = addresses(res)
    mtu = 1500 - overhead
    c1 = fabric.cns("c1")
    link = json.loads(nskit.nsexec(c1, "ip", "-j", "link", "show", "eth0").stdout)[0]
    assert link["mtu"] == mtu
    biggest = mtu - 28        # IPv4 20 + ICMP 8
    last = []

    def crosses():          # tinc may still be connecting and settling its path MTU
        r = nskit.nsexec(c1, "ping", "-n", "-q", "-c", "1", "-W", "1", "-M", "do", "-s", str(biggest), addr["c2"],
                         check=False)
        last[:] = [r.stdout + r.stderr]
        return r.returncode == 0
    try:
        eventually(crosses, SETTLE[kind], "a %d-byte DF ping over %s to cross" % (biggest, kind))
    except AssertionError as e:
        raise AssertionError("%s (last: %s)" % (e, last[0] if last else "no attempt")) from None
    r = nskit.nsexec(c1, "ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do", "-s", str(biggest + 1), addr["c2"],
                     check=False)
    # fails cleanly: refused locally (message too long) or dropped, never fragmented through
    assert r.returncode != 0, r.stdout
    out = (r.stdout + r.stderr).lower()
    assert "message too long" in out or " 0 received" in out, out


def test_mtu_over_budget_is_rejected_with_the_budget(fabric):
    topo = fabric.topology("vxlan")
    topo["networks"]["ov"]["mtu"] = 1460
    r = fabric.cli("h1", "apply", fabric._write(topo), ok=False)
    assert r.returncode == 1
    assert "networks.ov.mtu" in r.stderr and "1500 - 50" in r.stderr and "1450" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert nskit.run("ip", "-n", fabric.hns("h1"), "-o", "link", "show", "type", "bridge").stdout == ""


def _fdb(fabric, host):
    out = nskit.run("bridge", "-n", fabric.hns(host), "fdb", "show", "dev", "nsvx4242").stdout
    return sorted(l.split(" self")[0] for l in out.splitlines() if " dst " in l)


def _routes(fabric, host):
    return sorted(nskit.run("ip", "-n", fabric.hns(host), "route", "show", "proto", "159").stdout.splitlines())


def test_removing_a_host_removes_exactly_its_entries_on_the_others(fabric):
    def two_overlays(topo):
        topo["networks"]["rt"] = {"subnet": SUBNET["routed"], "overlay": {"type": "routed"}}
        for name, c in topo["containers"].items():
            c["interfaces"].append({"network": "rt", "default_route": False})
    full = fabric.topology("vxlan", extra=two_overlays)
    fabric.apply_all(full)
    before = {h: (_fdb(fabric, h), _routes(fabric, h)) for h in ("h1", "h2")}
    assert any("dst 192.0.2.3" in l for l in before["h1"][0])
    assert any("via 192.0.2.3" in l for l in before["h1"][1])

    smaller = fabric.topology("vxlan", hosts=("h1", "h2"), extra=two_overlays)
    res = fabric.apply_all(smaller)           # h3 stays in `hosts` with nothing on it: it is pruned too
    for h in ("h1", "h2"):
        fdb, routes = _fdb(fabric, h), _routes(fabric, h)
        assert fdb == [l for l in before[h][0] if "192.0.2.3" not in l], fdb
        assert routes == [l for l in before[h][1] if "192.0.2.3" not in l], routes
        removed = [a for a in res[h]["actions"] if "192.0.2.3" in a]
        assert removed and all(("remove" in a) for a in removed), res[h]["actions"]
        assert all("192.0.2.3" in a for a in res[h]["actions"] if "remove" in a), res[h]["actions"]
    assert nskit.run("ip", "-n", fabric.hns("h3"), "-o", "link", "show", "type", "vxlan").stdout == ""
    assert not nskit.netns_exists(fabric.cns("c3"))
    # adding it back restores exactly the old entries
    fabric.apply_all(full)
    assert {h: (_fdb(fabric, h), _routes(fabric, h)) for h in ("h1", "h2")} == before


def test_a_peer_that_is_down_gives_a_warning_not_a_failure(fabric):
    topo = fabric.topology("vxlan")
    nskit.run("ip", "-n", fabric.hns("h3"), "link", "set", "eth0", "down")
    res = fabric.apply_all(topo, hosts=("h1", "h2"))
    for h in ("h1", "h2"):
        assert res[h]["changed"]
        assert any("h3" in w and "192.0.2.3" in w for w in res[h]["warnings"]), res[h]["warnings"]
    addr = addresses(res)
    eventually(lambda: nskit.ping(fabric.cns("c1"), addr["c2"], timeout=1), SETTLE["vxlan"],
               "c1 to reach c2 while h3 is down")
    nskit.run("ip", "-n", fabric.hns("h3"), "link", "set", "eth0", "up")
    eventually(lambda: nskit.ping(fabric.hns("h1"), "192.0.2.3"), 30, "h1 to reach h3 again on the underlay")
    res = fabric.apply_all(topo)
    assert all(not r["warnings"] for r in res.values()), [r["warnings"] for r in res.values()]


def _capture_marker(fabric, kind, marker):
    """Send ``marker`` over TCP from c1 to c2 while capturing on the underlay switch; return the captured bytes."""
    res = fabric.apply_all(fabric.topology(kind))
    addr = addresses(res)
    eventually(lambda: nskit.ping(fabric.cns("c1"), addr["c2"], timeout=1), SETTLE[kind],
               "%s: c1 to ping c2" % kind)
    pcap = os.path.join(fabric.dir, "%s.pcap" % kind)
    cap = subprocess.Popen(["ip", "netns", "exec", "%s-sw" % fabric.name, "tcpdump", "-i", "sw0",
                            "-U", "-w", pcap, "ip"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fabric.procs.append(cap)
    # tcpdump says "listening on sw0" once its capture is open: from then on every packet is kept
    lines = [cap.stderr.readline()]
    while lines[-1] and "listening on" not in lines[-1] and len(lines) < 20:
        lines.append(cap.stderr.readline())
    assert "listening on" in lines[-1], "tcpdump did not start: %s" % "".join(lines)
    send = "import socket,sys; s=socket.create_connection((sys.argv[1], 7200), 3); s.sendall(sys.argv[2].encode()*50); s.close()"
    lst = subprocess.Popen(["nsenter", "--net=/run/netns/%s" % fabric.cns("c2"), "--", nskit.SYS_PY, "-c",
                            "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
                            "s.bind((sys.argv[1], 7200)); s.listen(1); s.settimeout(10); print('ready', flush=True);"
                            "c,_=s.accept(); d=b''\nwhile True:\n  b=c.recv(65536)\n  if not b: break\n  d+=b\nprint(len(d))",
                            addr["c2"]], stdout=subprocess.PIPE, text=True)
    fabric.procs.append(lst)
    assert lst.stdout.readline().strip() == "ready"
    nskit.nsexec(fabric.cns("c1"), nskit.SYS_PY, "-c", send, addr["c2"], marker)
    got = int(lst.stdout.readline().strip() or 0)
    assert got == len(marker) * 50, "the receiver got %d bytes" % got
    # every packet of the exchange has crossed the switch (all of the underlay's IP traffic is kept: tinc carries
    # data over UDP once it has found the path, over its TCP meta connection until then); wait until tcpdump has
    # written what it read: more than the payload, and no longer growing
    sizes = []

    def drained():
        sizes.append(os.path.getsize(pcap) if os.path.exists(pcap) else 0)
        return len(sizes) >= 4 and sizes[-1] > len(marker) * 50 and sizes[-1] == sizes[-2] == sizes[-3] == sizes[-4]
    eventually(drained, 10, "the capture file to stop growing")
    cap.terminate()
    cap.wait(timeout=5)
    with open(pcap, "rb") as f:
        return f.read()


def test_tinc_payload_is_not_in_clear_on_the_underlay_vxlan_is(fabric):
    marker = "netstitch-secret-%s" % secrets.token_hex(6)
    data = _capture_marker(fabric, "tinc", marker)
    assert len(data) > 2000, "no tinc traffic was captured on the underlay"
    assert marker.encode() not in data
    # the same capture over VXLAN shows the marker: the check above can fail
    fabric.apply_all(fabric.topology("tinc", hosts=()))
    assert marker.encode() in _capture_marker(fabric, "vxlan", marker)


def _iperf(client_ns, server_ns, server_addr, seconds=2):
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_addr],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: srv.poll() is None and nskit.nsexec(server_ns, "ss", "-Hltn", "sport", "=", ":5201",
                                                               check=False).stdout.strip() != "",
                   10, "iperf3 to listen in %s" % server_ns)
        r = nskit.nsexec(client_ns, "iperf3", "-J", "-c", server_addr, "-t", str(seconds), timeout=seconds + 20)
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait(timeout=5)


def test_iperf3_overlay_beside_underlay(fabric):
    res = fabric.apply_all(fabric.topology("vxlan"))
    addr = addresses(res)
    overlay = _iperf(fabric.cns("c1"), fabric.cns("c2"), addr["c2"])
    underlay = _iperf(fabric.hns("h1"), fabric.hns("h2"), "192.0.2.2")
    os.makedirs(OUTPUT, exist_ok=True)
    report = {"overlay_vxlan_bps": overlay, "underlay_bps": underlay, "ratio": round(overlay / underlay, 3)}
    with open(os.path.join(OUTPUT, "overlay-throughput.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(report)
    assert overlay > 100e6 and underlay > 100e6, report
