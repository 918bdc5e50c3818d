"""Tenants (issue 16, item 3) in the three-host lab, proven by real packets: each tenant has a router namespace of
its own on every host carrying one of its networks (the gateways on its legs, an uplink to the host), so two tenants
use the same subnet, even the same container addresses, side by side; networks of a tenant talk only where `connect`
says; tenants never talk; both reach the outside at once; a rerun writes nothing; a tenant that goes leaves nothing.
"""

import concurrent.futures
import json

import pytest

import nskit
# fabric: the fixture
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import

OUTSIDE = "203.0.113.1"     # the lab's outside router (its loopback), reached through each host's uplink
SETTLE = 15.0


class _Env(object):
    def __init__(self, fabric):
        self.procs = fabric.procs


def _topology(fabric, blue_connect=(), red=True):
    hosts = {h: {"underlay": "192.0.2.%s/24" % h[1:], "router_netns_prefix": "%s-%s-" % (fabric.name, h)}
             for h in ("h1", "h2", "h3")}
    topo = {
        "hosts": hosts,
        "networks": {"web": {"subnet": "10.91.0.0/24"}, "db": {"subnet": "10.92.0.0/24"}},
        "containers": {
            "bw": {"host": "h1", "netns": fabric.cns("bw"), "interfaces": [{"network": "web", "ip": "10.91.0.10"}]},
            "bw2": {"host": "h1", "netns": fabric.cns("bw2"), "interfaces": [{"network": "web", "ip": "10.91.0.11"}]},
            "bd": {"host": "h1", "netns": fabric.cns("bd"), "interfaces": [{"network": "db", "ip": "10.92.0.10"}]},
        },
        "tenants": {"blue": {"networks": ["web", "db"], "connect": [list(p) for p in blue_connect]}},
    }
    if red:
        # the same subnet and the same addresses as blue's web, and a network of red's own that it may reach
        topo["networks"].update({"web2": {"subnet": "10.91.0.0/24"}, "app": {"subnet": "10.93.0.0/24"}})
        topo["containers"].update({
            "rw": {"host": "h1", "netns": fabric.cns("rw"), "interfaces": [{"network": "web2", "ip": "10.91.0.10"}]},
            "rw2": {"host": "h1", "netns": fabric.cns("rw2"), "interfaces": [{"network": "web2", "ip": "10.91.0.11"}]},
            "ra": {"host": "h1", "netns": fabric.cns("ra"), "interfaces": [{"network": "app", "ip": "10.93.0.10"}]},
        })
        topo["tenants"]["red"] = {"networks": ["web2", "app"], "connect": [["web2", "app"]]}
    return topo


def _tcp(fabric, src, dst_ns, dst, port):
    """(whether ``src`` connects to ``dst``:``port``, the sources the listener in ``dst_ns`` saw)."""
    lst = nskit.Listener(_Env(fabric), fabric.cns(dst_ns), dst, port, lifetime=15)
    ok = nskit.connect(fabric.cns(src), dst, port, timeout=2)
    return ok, lst.peers()


def _router(fabric, host, tenant):
    return "%s-%s-%s" % (fabric.name, host, tenant)


def test_two_tenants_share_a_subnet_and_never_talk(fabric):
    res = fabric.apply_all(_topology(fabric), hosts=("h1",))["h1"]
    blue, red = _router(fabric, "h1", "blue"), _router(fabric, "h1", "red")
    assert set(nskit.netns_list()) >= {blue, red}
    # the gateways are in the router namespaces; the bridges have no address
    assert "10.91.0.1/24" in nskit.nsexec(blue, "ip", "-4", "-o", "addr").stdout
    assert "10.91.0.1/24" in nskit.nsexec(red, "ip", "-4", "-o", "addr").stdout
    host_addrs = nskit.nsexec(fabric.hns("h1"), "ip", "-4", "-o", "addr").stdout
    assert "10.91.0.1" not in host_addrs and "10.92.0.1" not in host_addrs
    # the router's own nft table is in its namespace
    assert "tenant blue: nothing else" in nskit.nsexec(blue, "nft", "list", "table", "inet", "netstitch").stdout
    changes = json.dumps(res.get("changes", []))
    assert "tenant blue (router namespace %s)" % blue in changes, changes[:2000]
    # status: in sync, and the tenants as the kernel has them (their namespace, gateways and uplink)
    st = fabric.cli("h1", "status", "--json", ok=False)
    status = json.loads(st.stdout)
    assert status["in_sync"] is True, st.stdout[-2000:]
    assert status["tenants"]["blue"]["namespace"] == blue
    assert status["tenants"]["blue"]["gateways"] == {"web": "10.91.0.1/24", "db": "10.92.0.1/24"}
    assert status["tenants"]["red"]["gateways"] == {"web2": "10.91.0.1/24", "app": "10.93.0.1/24"}
    text = fabric.cli("h1", "status", ok=False).stdout
    assert "tenant blue: router namespace %s, gateway 10.92.0.1/24 on db, gateway 10.91.0.1/24 on web" % blue in text, text

    # each reaches its own gateway and its own network's other container (same addresses in both tenants)
    for c in ("bw", "rw"):
        nskit.wait_until(lambda c=c: nskit.ping(fabric.cns(c), "10.91.0.1"), SETTLE, "%s -> its gateway" % c)
    ok, peers = _tcp(fabric, "bw", "bw2", "10.91.0.11", 7300)
    assert ok and peers == ["10.91.0.10"], peers
    # blue's 10.91.0.11 is bw2, never red's rw2 (which listens on the same address and port)
    red_lst = nskit.Listener(_Env(fabric), fabric.cns("rw2"), "10.91.0.11", 7301, lifetime=15)
    ok, peers = _tcp(fabric, "bw", "bw2", "10.91.0.11", 7301)
    assert ok and peers == ["10.91.0.10"]
    assert red_lst.peers() == []

    # red's own pair (connect web2-app) talks: the positive control; blue reaches nothing of red's
    ok, peers = _tcp(fabric, "rw", "ra", "10.93.0.10", 7302)
    assert ok and peers == ["10.91.0.10"], peers
    ok, peers = _tcp(fabric, "bw", "ra", "10.93.0.10", 7303)
    assert not ok and peers == []
    nskit.assert_no_ping(fabric.cns("bw"), "10.93.0.10")
    # nor red's router through the host: the host never forwards from one uplink to another
    red_transit = [t for t in _spec_tenants(fabric, "h1") if t["name"] == "red"][0]["transit"]["router"]
    nskit.assert_no_ping(fabric.cns("bw"), nskit.addr(red_transit))

    # blue's web and db: not connected
    ok, peers = _tcp(fabric, "bw", "bd", "10.92.0.10", 7304)
    assert not ok and peers == []
    nskit.assert_no_ping(fabric.cns("bw"), "10.92.0.10")

    # the outside, from both tenants at once, with the same source address in both
    lst = nskit.Listener(_Env(fabric), fabric.cns("out"), OUTSIDE, 7305, lifetime=20)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda c: nskit.connect(fabric.cns(c), OUTSIDE, 7305, timeout=5), ["bw", "rw"]))
    assert done == [True, True]
    assert lst.peers() == ["192.0.2.1", "192.0.2.1"]    # masqueraded by the router, then by the host

    # a rerun writes nothing
    nskit.assert_noop(fabric.apply_all(_topology(fabric), hosts=("h1",))["h1"])

    # connect web-db in blue: both ways, stateful
    fabric.apply_all(_topology(fabric, blue_connect=[("web", "db")]), hosts=("h1",))
    ok, peers = _tcp(fabric, "bw", "bd", "10.92.0.10", 7306)
    assert ok and peers == ["10.91.0.10"], peers
    ok, peers = _tcp(fabric, "bd", "bw", "10.91.0.10", 7307)
    assert ok and peers == ["10.92.0.10"], peers
    nskit.assert_noop(fabric.apply_all(_topology(fabric, blue_connect=[("web", "db")]), hosts=("h1",))["h1"])

    # red goes: its router namespace, its veths and the host's rules for it go; blue stays as it was
    fabric.apply_all(_topology(fabric, blue_connect=[("web", "db")], red=False), hosts=("h1",))
    nskit.wait_until(lambda: red not in nskit.netns_list(), SETTLE, "red's router namespace to go")
    host_links = nskit.nsexec(fabric.hns("h1"), "ip", "-o", "link").stdout
    assert "tenant red" not in host_links and "nsbr-web2" not in host_links
    host_nft = nskit.nsexec(fabric.hns("h1"), "nft", "list", "table", "inet", "netstitch").stdout
    assert "tenant red" not in host_nft and "tenant blue: masquerade" in host_nft
    ok, peers = _tcp(fabric, "bw", "bd", "10.92.0.10", 7308)
    assert ok and peers == ["10.91.0.10"], peers
    nskit.assert_noop(fabric.apply_all(_topology(fabric, blue_connect=[("web", "db")], red=False),
                                       hosts=("h1",))["h1"])

    # everything goes
    down = fabric.cli("h1", "down", ok=False)
    assert down.returncode == 0, down.stderr
    nskit.wait_until(lambda: blue not in nskit.netns_list(), SETTLE, "blue's router namespace to go")
    assert "tenant" not in nskit.nsexec(fabric.hns("h1"), "ip", "-o", "link").stdout


def _spec_tenants(fabric, host):
    """The tenants of the spec last applied on ``host`` (its state file)."""
    import glob
    import os
    for path in glob.glob(os.path.join(fabric.dir, "state", "**", "*.json"), recursive=True):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        spec = data.get("spec") if isinstance(data, dict) else None
        if isinstance(spec, dict) and spec.get("host") == host and spec.get("tenants"):
            return spec["tenants"]
    raise AssertionError("no state file of host %s with tenants under %s" % (host, fabric.dir))


def _overlay_topology(fabric):
    hosts = {h: {"underlay": "192.0.2.%s/24" % h[1:], "router_netns_prefix": "%s-%s-" % (fabric.name, h)}
             for h in ("h1", "h2", "h3")}
    nets = {"ov": {"subnet": "10.95.0.0/24", "hosts": ["h1", "h2"], "overlay": {"type": "vxlan", "vni": 4301}},
            "ov2": {"subnet": "10.95.0.0/24", "hosts": ["h1", "h2"], "overlay": {"type": "vxlan", "vni": 4302}}}
    conts = {}
    for tenant, net in (("b", "ov"), ("r", "ov2")):
        for h, ip in (("1", "10.95.0.10"), ("2", "10.95.0.20")):
            conts[tenant + h] = {"host": "h" + h, "netns": fabric.cns(tenant + h),
                                 "interfaces": [{"network": net, "ip": ip}]}
    return {"hosts": hosts, "networks": nets, "containers": conts,
            "tenants": {"blue": {"networks": ["ov"]}, "red": {"networks": ["ov2"]}}}


def test_a_vxlan_tenant_network_spans_hosts_and_stays_apart_from_the_other_tenant(fabric):
    topo = _overlay_topology(fabric)
    fabric.apply_all(topo, hosts=("h1", "h2"))
    # every host's router holds the gateway; each container reaches its own host's
    for c in ("b1", "b2", "r1", "r2"):
        nskit.wait_until(lambda c=c: nskit.ping(fabric.cns(c), "10.95.0.1"), SETTLE, "%s -> its gateway" % c)
    # across hosts, within each tenant: blue's 10.95.0.20 is b2, never r2 (same address and port, other VNI)
    red_lst = nskit.Listener(_Env(fabric), fabric.cns("r2"), "10.95.0.20", 7310, lifetime=20)
    nskit.wait_until(lambda: nskit.ping(fabric.cns("b1"), "10.95.0.20"), SETTLE, "b1 -> b2 over the overlay")
    ok, peers = _tcp(fabric, "b1", "b2", "10.95.0.20", 7310)
    assert ok and peers == ["10.95.0.10"], peers
    assert red_lst.peers() == []
    ok, peers = _tcp(fabric, "r1", "r2", "10.95.0.20", 7311)
    assert ok and peers == ["10.95.0.10"], peers
    # the outside from h2's router (masqueraded by h2)
    lst = nskit.Listener(_Env(fabric), fabric.cns("out"), OUTSIDE, 7312, lifetime=15)
    assert nskit.connect(fabric.cns("b2"), OUTSIDE, 7312, timeout=5)
    assert lst.peers() == ["192.0.2.2"]
    for r in fabric.apply_all(topo, hosts=("h1", "h2")).values():
        nskit.assert_noop(r)


def _run(fabric, host, args, fault=None):
    """The CLI on ``host`` with NETSTITCH_FAULT set (or not): the completed process."""
    import os
    import subprocess
    from fabrickit import CLI
    env = dict(os.environ)
    env.pop("NETSTITCH_FAULT", None)
    if fault:
        env["NETSTITCH_FAULT"] = fault
    return subprocess.run(["nsenter", "--net=/run/netns/%s" % fabric.hns(host), "--"] + CLI + list(args) +
                          ["--host", host, "--state-dir", os.path.join(fabric.dir, "state"), "--json"],
                          capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.mark.timeout(900)
def test_a_crash_at_write_points_of_a_tenant_apply_converges(fabric, tmp_path):
    """Kill the apply (SIGKILL through the fault seam) before its write points in turn: the rerun converges
    (the router namespace was recorded before it was made, its table and forwarding are read back there), a further
    rerun writes nothing, the container reaches its gateway, and `down` leaves nothing of the tenant."""
    topo = {"hosts": {"h1": {"underlay": "192.0.2.1/24", "router_netns_prefix": "%s-h1-" % fabric.name}},
            "networks": {"web": {"subnet": "10.96.0.0/24"}},
            "containers": {"bw": {"host": "h1", "netns": fabric.cns("bw"),
                                  "interfaces": [{"network": "web", "ip": "10.96.0.10"}]}},
            "tenants": {"blue": {"networks": ["web"]}}}
    path = fabric._write(topo)
    router = _router(fabric, "h1", "blue")
    counted = tmp_path / "points"
    r = _run(fabric, "h1", ["apply", path], fault="count:%s" % counted)
    assert r.returncode == 0, r.stderr
    points = counted.read_text().splitlines()
    assert any("nft transaction in %s" % router in p for p in points), points
    assert _run(fabric, "h1", ["down"]).returncode == 0
    # the tenant's own points (the router namespace's steps, its forwarding, its nft transaction) and every fourth of
    # the rest (each kill costs four runs of the command line)
    own = [i + 1 for i, p in enumerate(points) if "nft transaction in" in p or "sysctl" in p or "netns" in p]
    picked = sorted(set(own) | set(range(1, len(points) + 1, 4)) | {len(points)})
    for n in picked:
        killed = _run(fabric, "h1", ["apply", path], fault="kill:%d" % n)
        assert killed.returncode != 0, "point %d (%s): the apply was not killed" % (n, points[n - 1])
        again = _run(fabric, "h1", ["apply", path])
        assert again.returncode == 0, "after a kill at point %d (%s): %s" % (n, points[n - 1], again.stderr)
        nskit.assert_noop(json.loads(_run(fabric, "h1", ["apply", path]).stdout))
        assert nskit.ping(fabric.cns("bw"), "10.96.0.1", timeout=2), "point %d: no gateway" % n
        down = _run(fabric, "h1", ["down"])
        assert down.returncode == 0, "point %d: down failed: %s" % (n, down.stderr)
        nskit.wait_until(lambda: router not in nskit.netns_list(), SETTLE, "the router namespace to go")
        assert "tenant" not in nskit.nsexec(fabric.hns("h1"), "ip", "-o", "link").stdout, "point %d" % n
