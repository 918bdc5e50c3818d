"""Routed gateways (issue 16, item 1): networks.N.inbound lets the outside reach containers directly at their own
addresses by routing, only on what it allows, with no NAT either way; netstitch states the route the outside needs
and the test installs exactly that route in the lab's outside router namespace.
"""

import nskit
# fabric: the fixture
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import

ROUTER = "192.0.2.254"      # the lab's outside router (its namespace is "<lab>-out")
SETTLE = 15.0


def _topology(fabric, inbound=True):
    net = {"subnet": "10.62.0.0/24", "masquerade": False}
    if inbound:
        del net["masquerade"]       # the default with inbound
        net["inbound"] = {"allow": [{"ports": [7100]}, {"from": "203.0.113.0/24", "protocol": "any"}]}
    return {
        "version": 1,
        "hosts": {h: {"underlay": "192.0.2.%s/24" % h[1:]} for h in ("h1", "h2", "h3")},
        "networks": {"pub": net},
        "containers": {"web": {"host": "h1", "netns": fabric.cns("web"), "interfaces": [{"network": "pub"}]}},
    }


def test_the_outside_reaches_a_container_by_routing_only_on_allowed_ports_and_without_nat(fabric):
    out, web_ns = fabric.cns("out"), fabric.cns("web")

    class _Env(object):
        procs = fabric.procs

    # masquerade off alone: no route is stated and nothing gets in (the default of a routed gateway too)
    res = fabric.apply_all(_topology(fabric, inbound=False))
    web = nskit.addr(res["h1"]["endpoints"][0]["address"])
    assert "outside_routes" not in res["h1"]
    nskit.run("ip", "-n", out, "route", "add", "10.62.0.0/24", "via", "192.0.2.1")
    closed = nskit.Listener(_Env, web_ns, web, 7100, lifetime=10)
    assert not nskit.connect(out, web, 7100, timeout=1)
    assert closed.peers() == []
    nskit.run("ip", "-n", out, "route", "del", "10.62.0.0/24", "via", "192.0.2.1")

    # a routed gateway: the route the outside needs is stated (apply result, plan text, info)
    res = fabric.apply_all(_topology(fabric))
    (route,) = res["h1"]["outside_routes"]
    assert route == {"network": "pub", "dst": "10.62.0.0/24", "via": "192.0.2.1"}
    assert "outside_routes" not in res["h2"]
    plan = fabric.cli("h1", "plan", fabric._write(_topology(fabric)), ok=False)
    assert "outside needs: route 10.62.0.0/24 via 192.0.2.1 (network pub)" in plan.stdout, plan.stdout + plan.stderr
    status = fabric.cli("h1", "status", ok=False)
    assert "outside needs: route 10.62.0.0/24 via 192.0.2.1 (network pub)" in status.stdout, status.stdout
    # the test installs exactly the stated route in the outside router
    nskit.run("ip", "-n", out, "route", "add", route["dst"], "via", route["via"])

    # allowed port: straight to the container's own address; the container sees the router's own address
    into = nskit.Listener(_Env, web_ns, web, 7100, lifetime=15)
    other = nskit.Listener(_Env, web_ns, web, 7101, lifetime=15)
    nskit.wait_until(lambda: nskit.connect(out, web, 7100, timeout=2), SETTLE, "TCP outside -> web:7100")
    peers = into.peers()
    assert set(peers) == {ROUTER}, peers
    # another port of the same container, with a listener on it: dropped (the allow list is all that gets in)
    assert not nskit.connect(out, web, 7101, timeout=1)
    assert other.peers() == []
    nskit.assert_no_ping(out, web)      # ICMP from 192.0.2.254 is not allowed either (only 203.0.113.0/24 is)
    # the allowed prefix: any protocol from 203.0.113.0/24 (the router's loopback address)
    assert nskit.nsexec(out, "ping", "-n", "-q", "-c", "1", "-W", "2", "-I", "203.0.113.1", web,
                        check=False).returncode == 0
    # outbound keeps the container's own address (no masquerade)
    back = nskit.Listener(_Env, out, ROUTER, 7102, lifetime=15)
    nskit.wait_until(lambda: nskit.connect(web_ns, ROUTER, 7102, timeout=2), SETTLE, "TCP web -> the router")
    peers = back.peers()
    assert set(peers) == {web}, peers
    for r in fabric.apply_all(_topology(fabric)).values():
        nskit.assert_noop(r)


def test_a_vxlan_overlay_is_routed_in_through_any_host_that_states_it(fabric):
    """On a vxlan overlay every carrying host states the whole subnet: the outside routes through h1 to a container
    on h2 (the reply leaves through h2 directly; the allow rule is stateless, so the asymmetric path works)."""
    topo = fabric.topology("vxlan", hosts=("h2",), extra=lambda t: t["networks"]["ov"].update(
        hosts=["h1", "h2"], inbound={"allow": [{"ports": [7100]}]}))
    res = fabric.apply_all(topo)
    c2 = nskit.addr(res["h2"]["endpoints"][0]["address"])
    routes = {h: r["outside_routes"] for h, r in res.items() if "outside_routes" in r}
    assert sorted(routes) == ["h1", "h2"]
    assert routes["h1"] == [{"network": "ov", "dst": "10.81.0.0/24", "via": "192.0.2.1"}]
    out = fabric.cns("out")
    nskit.run("ip", "-n", out, "route", "add", "10.81.0.0/24", "via", "192.0.2.1")     # through h1 only

    class _Env(object):
        procs = fabric.procs
    lst = nskit.Listener(_Env, fabric.cns("c2"), c2, 7100, lifetime=15)
    nskit.wait_until(lambda: nskit.connect(out, c2, 7100, timeout=2), SETTLE, "TCP outside -> h1 -> c2 on h2")
    peers = lst.peers()
    assert set(peers) == {ROUTER}, peers


_OUTSIDE_BIRD = """router id 192.0.2.254;
protocol device {
}
protocol kernel {
  ipv4 { import none; export all; };
}
protocol bgp h1 {
  local 192.0.2.254 as 65000;
  neighbor 192.0.2.1 as 65001;
  ipv4 { import all; export none; };
}
"""


def test_the_route_is_announced_by_bgp_and_learnt_by_the_outside_router(fabric, tmp_path):
    """inbound.announce with hosts.h1.bgp: netstitch runs BIRD on h1, which announces 10.62.0.0/24 (next hop h1);
    the outside router runs a BIRD of the test's that learns it into its kernel table: the container is reached
    with no route installed by hand. The announcement goes when the network stops announcing."""
    import os
    import signal
    import subprocess
    topo = _topology(fabric)
    topo["hosts"]["h1"]["bgp"] = {"asn": 65001, "neighbors": [{"address": ROUTER, "asn": 65000}]}
    topo["networks"]["pub"]["inbound"]["announce"] = True
    out = fabric.cns("out")
    conf = tmp_path / "out-bird.conf"
    conf.write_text(_OUTSIDE_BIRD)
    pidfile = tmp_path / "out-bird.pid"
    subprocess.run(["nsenter", "--net=/run/netns/%s" % out, "--", "bird", "-c", str(conf),
                    "-s", str(tmp_path / "out-bird.ctl"), "-P", str(pidfile)], check=True, timeout=30)
    try:
        res = fabric.apply_all(topo)
        assert any("BGP announcements of pub" in t for t in res["h1"]["actions"]), res["h1"]["actions"]
        web = nskit.addr(res["h1"]["endpoints"][0]["address"])
        state = os.path.join(fabric.dir, "state", "bird", "h1")
        assert "10.62.0.0/24" in open(os.path.join(state, "bird.conf")).read()

        def learnt():
            r = nskit.nsexec(out, "ip", "route", "show", "10.62.0.0/24", check=False).stdout
            return "via 192.0.2.1" in r and "proto bird" in r
        nskit.wait_until(learnt, 60.0, "the outside router to learn 10.62.0.0/24 from h1 by BGP")

        class _Env(object):
            procs = fabric.procs
        lst = nskit.Listener(_Env, fabric.cns("web"), web, 7100, lifetime=15)
        nskit.wait_until(lambda: nskit.connect(out, web, 7100, timeout=2), SETTLE, "TCP outside -> web (BGP route)")
        assert set(lst.peers()) == {ROUTER}
        for r in fabric.apply_all(topo).values():
            nskit.assert_noop(r)
        # no more announcing: BIRD stops and the outside forgets the route
        topo["networks"]["pub"]["inbound"]["announce"] = False
        res = fabric.apply_all(topo)
        assert any("stop BGP announcements" in t for t in res["h1"]["actions"]), res["h1"]["actions"]
        nskit.wait_until(lambda: not learnt(), 60.0, "the outside router to forget 10.62.0.0/24")
        assert not os.path.exists(os.path.join(state, "bird.pid"))
        # announcing again, then `down`: BIRD goes with everything else netstitch made on the host
        topo["networks"]["pub"]["inbound"]["announce"] = True
        fabric.apply_all(topo)
        assert os.path.exists(os.path.join(state, "bird.pid"))
        down = fabric.cli("h1", "down", ok=False)
        assert down.returncode == 0, down.stderr
        assert not os.path.exists(os.path.join(state, "bird.pid")) and not os.path.exists(os.path.join(state, "bird.conf"))
    finally:
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
