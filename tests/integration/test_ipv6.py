"""IPv6 dual stack on one host (issue 15, layer 2), on a real kernel with real packets: the gateway6 on the bridge,
IPv6 addresses on the containers (fixed and allocated, leased, nodad), the IPv6 default route; a rerun with the same
addresses written differently changes nothing and writes nothing."""

import copy
import json
import os

import pytest

from nskit import Listener, assert_noop, connect, endpoints, nsexec, ping, run


def _dual(env):
    return {
        "version": 1,
        "hosts": {env.HOST: {"underlay": env.underlay}},
        "networks": {
            "front": {"subnet": "10.77.1.0/24", "subnet6": "2001:db8:77:1::/64"},
            "back": {"subnet": "10.77.2.0/24"},
        },
        "containers": {
            "web": {"host": env.HOST, "netns": env.ns("web"),
                    "interfaces": [{"network": "front", "ip": "10.77.1.10", "ip6": "2001:db8:77:1::a"}]},
            "web2": {"host": env.HOST, "netns": env.ns("web2"), "interfaces": [{"network": "front"}]},
            "api": {"host": env.HOST, "netns": env.ns("api"), "interfaces": [{"network": "back"}]},
        },
    }


ping6 = ping     # ping takes either family from the address


def _ip6(env, ns, *args):
    return env.ip("-6", *args, ns=ns)


def _sysctl(env, key):
    """A sysctl of the lab host's namespace (/proc/sys/net is the reader's network namespace's)."""
    return nsexec(env.hostns, "cat", "/proc/sys/" + key).stdout.strip()


def test_dual_stack_on_one_host(env):
    res = env.apply(_dual(env))
    assert res["changed"]
    eps = endpoints(res)
    assert eps["web/eth0"]["address6"] == "2001:db8:77:1::a/64"
    assert eps["web2/eth0"]["address6"] == "2001:db8:77:1::2/64"       # lowest free after the gateway ::1
    assert "address6" not in eps["api/eth0"]                           # an IPv4-only network
    # the kernel holds it: the gateway6 on the bridge, the addresses (not tentative: nodad), the default route
    br = _ip6(env, None, "addr", "show", "dev", "nsbr-front", "scope", "global")
    assert "inet6 2001:db8:77:1::1/64" in br and "tentative" not in br, br
    for c, a in (("web", "2001:db8:77:1::a/64"), ("web2", "2001:db8:77:1::2/64")):
        out = _ip6(env, env.ns(c), "addr", "show", "dev", "eth0", "scope", "global")
        assert "inet6 %s" % a in out and "tentative" not in out, out
        route = _ip6(env, env.ns(c), "route", "show", "default")
        assert route.split()[:5] == ["default", "via", "2001:db8:77:1::1", "dev", "eth0"], route
    assert _ip6(env, env.ns("api"), "route", "show", "default").strip() == ""
    # IPv6 forwarding on the dual-stack bridge only (per interface), not on the IPv4-only one nor host-wide
    assert _sysctl(env, "net/ipv6/conf/nsbr-front/force_forwarding") == "1"
    assert _sysctl(env, "net/ipv6/conf/nsbr-back/force_forwarding") == "0"
    assert _sysctl(env, "net/ipv6/conf/all/forwarding") == "0"
    # packets: container to container and to the gateway, over IPv6
    assert ping6(env.ns("web"), "2001:db8:77:1::2")
    assert ping6(env.ns("web2"), "2001:db8:77:1::a")
    assert ping6(env.ns("web2"), "2001:db8:77:1::1")
    # the same topology again: nothing to do
    assert_noop(env.apply(_dual(env)))


def test_a_host_whose_default_turns_ipv6_off_gets_it_on_its_dual_stack_bridges(env):
    """A host where new interfaces start with IPv6 off (net.ipv6.conf.default.disable_ipv6 = 1: Docker leaves a
    container started with --network none so, as on the container hosts of lab/chosts.py): netstitch turns IPv6 on
    for its own dual-stack bridges only (as Docker's bridge driver does for an IPv6 network), the gateway6 is there
    and answers; the IPv4-only bridge keeps the host's default; a rerun writes nothing; IPv6 turned off again is
    drift that the next apply repairs."""
    nsexec(env.hostns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    env.apply(_dual(env))
    assert _sysctl(env, "net/ipv6/conf/nsbr-front/disable_ipv6") == "0"
    assert _sysctl(env, "net/ipv6/conf/nsbr-back/disable_ipv6") == "1"
    assert "inet6 2001:db8:77:1::1/64" in _ip6(env, None, "addr", "show", "dev", "nsbr-front", "scope", "global")
    assert ping6(env.ns("web"), "2001:db8:77:1::1") and ping6(env.ns("web"), "2001:db8:77:1::2")
    assert_noop(env.apply(_dual(env)))
    nsexec(env.hostns, "sysctl", "-qw", "net.ipv6.conf.nsbr-front.disable_ipv6=1")    # the kernel drops its IPv6
    assert not ping6(env.ns("web"), "2001:db8:77:1::1", timeout=0.5)
    assert env.apply(_dual(env))["changed"]
    assert ping6(env.ns("web"), "2001:db8:77:1::1")
    assert_noop(env.apply(_dual(env)))


def test_the_same_addresses_written_differently_change_nothing(env):
    env.apply(_dual(env))
    other = copy.deepcopy(_dual(env))
    other["networks"]["front"]["subnet6"] = "2001:0DB8:0077:0001:0000::/64"
    other["networks"]["front"]["gateway6"] = "2001:db8:77:1:0:0:0:1"
    other["containers"]["web"]["interfaces"][0]["ip6"] = "2001:0db8:77:1::000A"
    assert_noop(env.apply(other))


def test_the_allocated_address_is_leased_and_kept(env):
    """web2's allocated address survives a new container taking the lowest free one (web2 leaves and comes back:
    its lease brings its address back), and an address changed by hand is put back."""
    env.apply(_dual(env))
    topo = _dual(env)
    topo["containers"]["web3"] = {"host": env.HOST, "netns": env.ns("web3"), "interfaces": [{"network": "front"}]}
    res = env.apply(topo)
    eps = endpoints(res)
    assert eps["web2/eth0"]["address6"] == "2001:db8:77:1::2/64"
    assert eps["web3/eth0"]["address6"] == "2001:db8:77:1::3/64"
    # by hand: another address on web2's end; the next apply puts its own back and removes the stray one
    nsexec(env.ns("web2"), "ip", "-6", "addr", "add", "2001:db8:77:1::99/64", "dev", "eth0", "nodad")
    res = env.apply(topo)
    assert res["changed"]
    out = _ip6(env, env.ns("web2"), "addr", "show", "dev", "eth0", "scope", "global")
    assert "2001:db8:77:1::2/64" in out and "::99" not in out, out
    assert_noop(env.apply(topo))


def test_subnet6_removed_takes_the_ipv6_half_away(env):
    env.apply(_dual(env))
    topo = _dual(env)
    del topo["networks"]["front"]["subnet6"]
    del topo["containers"]["web"]["interfaces"][0]["ip6"]
    res = env.apply(topo)
    assert res["changed"]
    assert _ip6(env, None, "addr", "show", "dev", "nsbr-front", "scope", "global").strip() == ""
    for c in ("web", "web2"):
        assert _ip6(env, env.ns(c), "addr", "show", "dev", "eth0", "scope", "global").strip() == ""
        assert _ip6(env, env.ns(c), "route", "show", "default").strip() == ""
    assert_noop(env.apply(topo))


def test_networks_stay_apart_over_ipv6_as_over_ipv4(env):
    """Two dual-stack networks on one host: a container reaches the other network's container over neither family
    (the inet table's rules match interfaces, not a family), although its default routes lead there and the bridges
    forward IPv6."""
    topo = _dual(env)
    topo["networks"]["side"] = {"subnet": "10.77.3.0/24", "subnet6": "2001:db8:77:3::/64"}
    topo["containers"]["db"] = {"host": env.HOST, "netns": env.ns("db"),
                                "interfaces": [{"network": "side", "ip": "10.77.3.5", "ip6": "2001:db8:77:3::5"}]}
    env.apply(topo)
    assert ping6(env.ns("db"), "2001:db8:77:3::1") and ping6(env.ns("web"), "2001:db8:77:1::1")
    route = nsexec(env.ns("web"), "ip", "-6", "route", "get", "2001:db8:77:3::5").stdout
    assert "via 2001:db8:77:1::1" in route, route
    assert not ping6(env.ns("web"), "2001:db8:77:3::5", timeout=0.5)
    assert not ping6(env.ns("db"), "2001:db8:77:1::a", timeout=0.5)
    assert nsexec(env.ns("web"), "ping", "-n", "-q", "-c", "1", "-W", "0.5", "10.77.3.5", check=False).returncode != 0
    # the control: without netstitch's table (this test's own host namespace) the same packets pass, so the bridges
    # do forward IPv6 and it is the rules that keep the networks apart
    nsexec(env.hostns, "nft", "delete", "table", "inet", "netstitch")
    assert ping6(env.ns("web"), "2001:db8:77:3::5")


def _model6(env, namespaces):
    """Both families as a converged host must hold them: test_crash's model (links, IPv4 addresses and routes, nft,
    names) plus, per namespace, the global IPv6 addresses, the IPv6 default route and the bridges' IPv6 forwarding."""
    from test_crash import model
    out = model(env, namespaces)
    for ns in [env.hostns] + sorted(namespaces):
        if out.get(ns) is None:
            continue
        addrs = sorted("%s %s/%d" % (d["ifname"], a["local"], a["prefixlen"])
                       for d in json.loads(run("ip", "-n", ns, "-6", "-j", "addr", "show", "scope", "global").stdout)
                       for a in d.get("addr_info", []) if a.get("local"))
        out[ns]["v6"] = {"addresses": addrs,
                         "default": run("ip", "-n", ns, "-6", "route", "show", "default").stdout.split()[:5]}
    out["forwarding6"] = {br: _sysctl(env, "net/ipv6/conf/%s/force_forwarding" % br) for br in ("nsbr-front",)
                          if env.link(br)}
    return out


def test_a_kill_at_any_write_point_of_a_dual_stack_apply_or_prune_is_repaired(env):
    """The crash test's method (tests/integration/test_crash.py) over the IPv6 writes: from an IPv4-only network,
    an apply that makes it dual stack (and adds a container) is killed at each of its write points, rerun, and must
    converge to what a clean run makes, with a no-op after it, and the containers' addresses of a clean run (an
    address added before the kill is adopted, not renumbered); the same for the prune back to IPv4 only."""
    from test_crash import points
    a = _dual(env)
    del a["networks"]["front"]["subnet6"]
    del a["containers"]["web"]["interfaces"][0]["ip6"]
    b = _dual(env)
    b["containers"]["web3"] = {"host": env.HOST, "netns": env.ns("web3"), "interfaces": [{"network": "front"}]}
    namespaces = [env.ns(c) for c in ("web", "web2", "api", "web3")]
    env.apply(b)
    want_b = _model6(env, namespaces)
    assert want_b[env.ns("web2")]["v6"]["addresses"] == ["eth0 2001:db8:77:1::2/64"]
    env.apply(a)
    want_a = _model6(env, namespaces)
    assert want_a[env.ns("web2")]["v6"]["addresses"] == []
    for start, target, want, tag in ((a, b, want_b, "dual"), (b, a, want_a, "back")):
        env.apply(start)
        names = points(env, target, os.path.join(os.path.dirname(env.state_dir), "points-%s" % tag))
        env.apply(start)     # counting the points applied the target for real
        assert any(p.startswith("netlink addr") for p in names) and any(p.startswith("sysctl") for p in names)
        for n, what in enumerate(names, 1):
            where = "%s: killed at write point %d/%d (%s)" % (tag, n, len(names), what)
            assert env.call("apply", target, fork=True, fault="kill:%d" % n) == {"signal": 9}, where
            env.apply(target)
            assert_noop(env.apply(target))
            got = _model6(env, namespaces)
            assert got == want, "%s: differs from a clean run:\n%s" % (where, json.dumps(
                {k: (want.get(k), got.get(k)) for k in set(want) | set(got) if want.get(k) != got.get(k)},
                default=str)[:3000])
            env.apply(start)


def test_a_failure_at_any_action_index_rolls_a_dual_stack_change_back_byte_for_byte(env):
    """test_crash's rollback test over the IPv6 actions, both ways: making a network dual stack, and taking it back
    to IPv4 only, fail at each action index (then at the nft transaction and the verification); the host is then
    byte-identical to its last successful apply (ip -d link/addr, routes of both families, nft, the state file)."""
    from test_crash import _diff, snapshot
    a = _dual(env)
    del a["networks"]["front"]["subnet6"]
    del a["containers"]["web"]["interfaces"][0]["ip6"]
    b = _dual(env)
    namespaces = [env.ns(c) for c in ("web", "web2", "api")]
    for start, target in ((a, b), (b, a)):
        env.apply(start)
        before = snapshot(env, namespaces)
        planned = env.apply(target, check=True)["actions"]
        assert any(":" in t for t in planned), planned       # IPv6 actions among them
        index = 0
        while True:
            r = env.call("apply", target, ok=None, fault_action=index)
            if r["ok"]:
                break
            assert r["type"] == "ApplyError" and "rolled back to the last successful apply" in r["error"], r
            after = snapshot(env, namespaces)
            assert after == before, "failure at action %d: not rolled back:\n%s" % (index, _diff(before, after))
            index += 1
        # every action, the nft transaction when there is one (IPv6 alone changes no rule), the verification
        assert index in (len(planned) + 1, len(planned) + 2), (index, planned)
        assert_noop(env.apply(target))


def test_internal_holds_for_ipv6(env):
    """A container on an internal dual-stack network reaches its own network over IPv6 and nothing else: it gets no
    IPv6 default route, its bridge does not forward IPv6, and with a route of its own (made here by hand) its
    packets to another network are still dropped (the rule matches the interface, not a family)."""
    topo = _dual(env)
    topo["networks"]["vault"] = {"subnet": "10.77.4.0/24", "subnet6": "2001:db8:77:4::/64", "internal": True}
    topo["containers"]["db"] = {"host": env.HOST, "netns": env.ns("db"),
                                "interfaces": [{"network": "vault", "ip6": "2001:db8:77:4::5"}]}
    topo["containers"]["db2"] = {"host": env.HOST, "netns": env.ns("db2"), "interfaces": [{"network": "vault"}]}
    env.apply(topo)
    assert ping6(env.ns("db2"), "2001:db8:77:4::5") and ping6(env.ns("db"), "2001:db8:77:4::1")
    assert _ip6(env, env.ns("db"), "route", "show", "default").strip() == ""
    assert _sysctl(env, "net/ipv6/conf/nsbr-vault/force_forwarding") == "0"
    nsexec(env.ns("db"), "ip", "-6", "route", "add", "default", "via", "2001:db8:77:4::1", "dev", "eth0")
    # forwarded only if the bridge forwards: let it (this test's own host namespace), so the drop is the rule's
    nsexec(env.hostns, "sysctl", "-qw", "net.ipv6.conf.nsbr-vault.force_forwarding=1")
    assert not ping6(env.ns("db"), "2001:db8:77:1::a", timeout=0.5)
    nsexec(env.hostns, "nft", "delete", "table", "inet", "netstitch")
    assert ping6(env.ns("db"), "2001:db8:77:1::a")       # the control: without the rules the packets pass


UPLINK6, OUTSIDE6 = "2001:db8:ff::%d", "2001:db8:ff::fe"


def _source_seen_outside(env, lab, src_ns):
    """The source address a TCP connection from ``src_ns`` to the outside router's IPv6 address arrives with."""
    listener = Listener(env, lab.out, OUTSIDE6, 8066, lifetime=10)
    try:
        assert connect(src_ns, OUTSIDE6, 8066, timeout=3)
        return listener.next_peer()
    finally:
        listener.peers()


def test_outbound_ipv6_is_routed_by_default_and_masqueraded_when_asked(env, lab):
    """IPv6 to the outside: routed by default (the outside sees the container's own address and routes the subnet6
    back to the host), NAT66 with masquerade6 (it sees the host's uplink address and needs no route). The host's
    uplink forwards IPv6 here because this test says so (force_forwarding on the lab host's eth0): netstitch forwards
    only on its bridges. The outside router's IPv6 address and route are this test's and go at its end."""
    k = int(env.underlay.rsplit(".", 1)[1])
    host6 = UPLINK6 % k
    try:
        nsexec(lab.out, "ip", "-6", "addr", "add", OUTSIDE6 + "/64", "dev", "eth0", "nodad")
        nsexec(env.hostns, "ip", "-6", "addr", "add", host6 + "/64", "dev", "eth0", "nodad")
        nsexec(env.hostns, "ip", "-6", "route", "add", "default", "via", OUTSIDE6)
        nsexec(env.hostns, "sysctl", "-qw", "net.ipv6.conf.eth0.force_forwarding=1")
        topo = _dual(env)
        env.apply(topo)
        assert not ping6(env.ns("web"), OUTSIDE6, timeout=0.5)      # routed: the outside has no way back yet
        nsexec(lab.out, "ip", "-6", "route", "add", "2001:db8:77:1::/64", "via", host6)
        assert _source_seen_outside(env, lab, env.ns("web")) == "2001:db8:77:1::a"
        nsexec(lab.out, "ip", "-6", "route", "del", "2001:db8:77:1::/64", "via", host6)
        topo["networks"]["front"]["masquerade6"] = True
        env.apply(topo)
        assert _source_seen_outside(env, lab, env.ns("web")) == host6
        assert_noop(env.apply(topo))
    finally:
        nsexec(lab.out, "ip", "-6", "route", "del", "2001:db8:77:1::/64", check=False)
        nsexec(lab.out, "ip", "-6", "addr", "del", OUTSIDE6 + "/64", "dev", "eth0", check=False)


def _tcp6(ns, addr, port):
    return connect(ns, addr, port, timeout=1)


def test_isolation_and_links_hold_for_ipv6(env):
    """An isolated dual-stack network: over IPv6 as over IPv4, only the linked connection starts (cli to web, TCP
    80; its replies pass), nothing else does (web to cli, cli to web on another listening port, other to web),
    while neighbour discovery works; the control without netstitch's table lets it all through."""
    topo = {
        "version": 1, "hosts": {env.HOST: {"underlay": env.underlay}},
        "networks": {"iso": {"subnet": "10.77.5.0/24", "subnet6": "2001:db8:77:5::/64", "isolated": True}},
        "containers": {c: {"host": env.HOST, "netns": env.ns(c), "interfaces": [{"network": "iso", "ip6": a}]}
                       for c, a in (("web", "2001:db8:77:5::a"), ("cli", "2001:db8:77:5::c"),
                                    ("other", "2001:db8:77:5::d"))},
        "links": [{"client": "cli", "server": "web", "ports": [80]}],
    }
    env.apply(topo)
    for port in (80, 81):
        Listener(env, env.ns("web"), "::", port, lifetime=30)
    assert _tcp6(env.ns("cli"), "2001:db8:77:5::a", 80)
    assert not _tcp6(env.ns("cli"), "2001:db8:77:5::a", 81)
    assert not _tcp6(env.ns("other"), "2001:db8:77:5::a", 80)
    assert not ping6(env.ns("web"), "2001:db8:77:5::c", timeout=0.5)
    assert not ping6(env.ns("other"), "2001:db8:77:5::a", timeout=0.5)
    assert_noop(env.apply(topo))
    nsexec(env.hostns, "nft", "delete", "table", "inet", "netstitch")
    assert _tcp6(env.ns("other"), "2001:db8:77:5::a", 81) and ping6(env.ns("web"), "2001:db8:77:5::c")


@pytest.mark.parametrize("bridge_nf", ["ipv4 only", "none"])
def test_isolation_and_links_hold_for_ipv6_where_bridged_ipv6_skips_the_firewall(env, bridge_nf):
    """The bridge-family fallback for IPv6: on a host whose bridged IPv6 skips the inet hooks
    (bridge-nf-call-ip6tables 0; with bridged IPv4 through them, or neither), the isolated dual-stack network is
    isolated statelessly in bridge netstitch: the linked connection (cli to web, TCP 80) starts and its replies
    pass, neighbour discovery works, the rest is dropped (web to cli, cli to web on 81, other to web); a rerun
    writes nothing; without netstitch's bridge table (the control) it all passes."""
    v4 = "1" if bridge_nf == "ipv4 only" else "0"
    nsexec(env.hostns, "sh", "-c", "echo %s > /proc/sys/net/bridge/bridge-nf-call-iptables; "
                                   "echo 0 > /proc/sys/net/bridge/bridge-nf-call-ip6tables" % v4)
    topo = {
        "version": 1, "hosts": {env.HOST: {"underlay": env.underlay}},
        "networks": {"iso": {"subnet": "10.77.6.0/24", "subnet6": "2001:db8:77:6::/64", "isolated": True}},
        "containers": {c: {"host": env.HOST, "netns": env.ns(c), "interfaces": [{"network": "iso", "ip6": a}]}
                       for c, a in (("web", "2001:db8:77:6::a"), ("cli", "2001:db8:77:6::c"),
                                    ("other", "2001:db8:77:6::d"))},
        "links": [{"client": "cli", "server": "web", "ports": [80]}],
    }
    res = env.apply(topo)
    assert res["changed"]
    listing = nsexec(env.hostns, "nft", "list", "table", "bridge", "netstitch").stdout
    assert "iso iso: isolated (IPv6)" in listing and "iso iso: neighbour discovery" in listing, listing
    inet = nsexec(env.hostns, "nft", "list", "table", "inet", "netstitch").stdout
    assert "(IPv6)" not in inet and ("iso iso: isolated" in inet) == (v4 == "1"), inet
    for port in (80, 81):
        Listener(env, env.ns("web"), "::", port, lifetime=30)
    # neighbour discovery between the containers passes (the linked connection needs it); the rest is dropped
    assert _tcp6(env.ns("cli"), "2001:db8:77:6::a", 80)
    assert "2001:db8:77:6::a" in env.ip("-6", "neigh", "show", "dev", "eth0", ns=env.ns("cli"))
    assert not _tcp6(env.ns("cli"), "2001:db8:77:6::a", 81)
    assert not _tcp6(env.ns("other"), "2001:db8:77:6::a", 80)
    assert not ping6(env.ns("web"), "2001:db8:77:6::c", timeout=0.5)
    assert not ping6(env.ns("other"), "2001:db8:77:6::a", timeout=0.5)
    assert ping6(env.ns("other"), "2001:db8:77:6::1")          # the gateway6 (the host, not a bridge port)
    assert_noop(env.apply(topo))
    # the control: without netstitch's bridge table the same connections pass, so it was what stopped them
    nsexec(env.hostns, "nft", "delete", "table", "bridge", "netstitch")
    assert _tcp6(env.ns("other"), "2001:db8:77:6::a", 81) and ping6(env.ns("web"), "2001:db8:77:6::c")


def _published6(env, host6):
    topo = _dual(env)
    topo["containers"]["web"]["publish"] = [
        {"host_port": 8080, "container_port": 80},                           # every address of both families
        {"host_port": 8443, "container_port": 80, "host_ip": "::"},          # every IPv6 address
        {"host_port": 9000, "container_port": 80, "host_ip": host6},         # one IPv6 address
    ]
    return topo


def test_ports_published_on_ipv6_answer_the_outside_the_host_and_containers(env, lab):
    """Issue 15: web (front, dual stack) publishes 8080 on every address of both families, 8443 on :: and 9000 on
    the host's IPv6 uplink address. From the outside namespace over IPv6 each reaches web with the outside's own
    address as the source (DNAT only), 8080 over IPv4 too; the host reaches them itself (output hook) but not on ::1
    (no route_localnet for IPv6: refused at once, not DNAT'ed into a black hole); web2 and web itself reach them
    through the host (hairpin, masqueraded to the gateway6); a port not published and 9000 over IPv4 do not answer.
    A rerun changes nothing. The host's uplink forwards IPv6 because this test says so (as in the outbound test)."""
    from nskit import wait_until
    k = int(env.underlay.rsplit(".", 1)[1])
    host6, host4 = UPLINK6 % k, env.underlay.split("/", 1)[0]
    try:
        nsexec(lab.out, "ip", "-6", "addr", "add", OUTSIDE6 + "/64", "dev", "eth0", "nodad")
        nsexec(env.hostns, "ip", "-6", "addr", "add", host6 + "/64", "dev", "eth0", "nodad")
        nsexec(env.hostns, "sysctl", "-qw", "net.ipv6.conf.eth0.force_forwarding=1")
        topo = _published6(env, host6)
        res = env.apply(topo)
        assert res["changed"]
        listener = Listener(env, env.ns("web"), "::", 80, lifetime=30)
        wait_until(lambda: _tcp6(lab.out, host6, 8080), timeout=10, what="8080 over IPv6 from the outside")
        for port in (8443, 9000):
            assert _tcp6(lab.out, host6, port), port
        assert connect(lab.out, host4, 8080)                     # no host_ip: IPv4 as well
        assert not connect(lab.out, host4, 9000, timeout=0.5)    # an IPv6 address only
        assert not _tcp6(lab.out, host6, 8081)                   # the control: not published
        assert _tcp6(env.hostns, host6, 8080) and _tcp6(env.hostns, host6, 9000)    # the host itself (output)
        assert not connect(env.hostns, "::1", 8080)
        assert _tcp6(env.ns("web2"), host6, 8080) and _tcp6(env.ns("web"), host6, 8443)     # hairpin
        peers = listener.peers()
        assert peers[:3] == [OUTSIDE6] * 3, peers
        assert peers[4:] == [host6, host6, "2001:db8:77:1::1", "2001:db8:77:1::1"], peers
        assert_noop(env.apply(topo))
    finally:
        nsexec(lab.out, "ip", "-6", "addr", "del", OUTSIDE6 + "/64", "dev", "eth0", check=False)


_LOOP_PROBE = """
table inet loopprobe {
    chain output { type nat hook output priority -100; policy accept;
        ip6 daddr ::1 tcp dport 8080 dnat ip6 to [2001:db8:77:1::a]:80
        ip6 daddr 2001:db8:77:1::1 tcp dport 8081 dnat ip6 to [2001:db8:77:1::a]:80
    }
    chain postrouting { type nat hook postrouting priority 100; policy accept;
        oifname "nsbr-front" ip6 saddr ::1 masquerade
    }
}
"""


def test_why_ipv6_loopback_is_refused_for_published_ports(env):
    """Issue 17 item 3 on this kernel: an output-hook DNAT of ::1 to a container is lost, even with the source
    masqueraded in postrouting (IPv6 has no route_localnet), while the same DNAT of the host's own IPv6 address
    works (the control). So validation refuses host_ip ::1 and says why and what to use instead. The probe table is
    this test's own, in its own host namespace."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import validate
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import TopologyError
    env.apply(_dual(env))
    Listener(env, env.ns("web"), "::", 80, lifetime=30)
    nsexec(env.hostns, "nft", "-f", "-", input=_LOOP_PROBE)
    try:
        assert _tcp6(env.hostns, "2001:db8:77:1::1", 8081)      # the control: DNAT of a host address works
        assert not _tcp6(env.hostns, "::1", 8080)                # from ::1: lost
    finally:
        nsexec(env.hostns, "nft", "delete", "table", "inet", "loopprobe", check=False)
    topo = _dual(env)
    topo["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80, "host_ip": "::1"}]
    try:
        validate.load(topo)
        raise AssertionError("host_ip ::1 was accepted")
    except TopologyError as e:
        assert [p.path for p in e.problems] == ["containers.web.publish[0].host_ip"]
        assert "IPv6 has no route_localnet" in e.problems[0].reason and "127.0.0.1" in e.problems[0].reason


def _getent6(ns, name):
    """The IPv6 address a name resolves to inside `ip netns exec` (its /etc/netns hosts file and resolv.conf)."""
    r = run("ip", "netns", "exec", ns, "getent", "ahostsv6", name, check=False)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout.strip() else None


def test_names_resolve_to_ipv6_addresses_too(env):
    """Issue 15, names for both families: a link's name in the client's hosts file and the network's name service
    (dnsmasq on the gateway, dns: true) give the server's IPv6 address beside its IPv4 one on a dual-stack network:
    getent over IPv6 in the client finds it, and TCP over IPv6 to the name reaches the server; on the IPv4-only
    network the name has no IPv6 address. A rerun changes nothing."""
    from nskit import wait_until
    topo = _dual(env)
    topo["networks"]["front"]["dns"] = True
    topo["containers"]["cli"] = {"host": env.HOST, "netns": env.ns("cli"), "interfaces": [{"network": "front"}]}
    topo["containers"]["api"]["interfaces"] = [{"network": "back", "ip": "10.77.2.20"}]
    topo["containers"]["bcl"] = {"host": env.HOST, "netns": env.ns("bcl"), "interfaces": [{"network": "back"}]}
    topo["links"] = [{"client": "cli", "server": "web", "name": "www", "ports": [80]},
                     {"client": "bcl", "server": "api", "name": "api4", "ports": [80]}]
    web2 = endpoints(env.apply(topo))["web2/eth0"]["address6"].split("/")[0]     # allocated
    assert _getent6(env.ns("cli"), "www") == "2001:db8:77:1::a"                  # the hosts file
    with open("/etc/netns/%s/hosts" % env.ns("cli")) as f:
        assert "2001:db8:77:1::a\twww" in f.read()
    wait_until(lambda: _getent6(env.ns("cli"), "web2") == web2, timeout=10,
               what="the name service answers web2 over IPv6 (AAAA)")
    assert _getent6(env.ns("cli"), "web.front") == "2001:db8:77:1::a"
    assert _getent6(env.ns("bcl"), "api4") == "::ffff:10.77.2.20"     # IPv4-only network: its IPv4 one, mapped
    Listener(env, env.ns("web"), "::", 80, lifetime=30)
    assert _tcp6(env.ns("cli"), _getent6(env.ns("cli"), "www"), 80)
    assert_noop(env.apply(topo))


def test_the_probe_pings_over_ipv6_between_dual_stack_containers(env):
    """`netstitch probe` on a dual-stack host: its checks include the containers' IPv6 addresses and the gateway6
    (same network: reached; the other network: blocked) and all hold; with web2 gone its IPv6 checks fail too."""
    from nskit import del_netns
    from test_status_cli import cli, write
    topo = _dual(env)
    path = write(env, topo)
    assert cli(env, "apply", path).returncode == 0
    r = cli(env, "probe", path, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    six = {(o["from"], o["to"], o["expect"]) for o in out["outcomes"] if ":" in o["to"]}
    host = env.HOST
    assert {("web@%s" % host, "2001:db8:77:1::2", True), ("web2@%s" % host, "2001:db8:77:1::a", True),
            ("web@%s" % host, "2001:db8:77:1::1", True), ("api@%s" % host, "2001:db8:77:1::a", False)} <= six, six
    assert out["all_ok"], out["mismatches"]
    del_netns(env.ns("web2"))                  # a container gone: its checks fail, the IPv6 ones too
    r = cli(env, "probe", path, "--json")
    bad = {(o["from"], o["to"]) for o in json.loads(r.stdout)["mismatches"]}
    assert ("web@%s" % host, "2001:db8:77:1::2") in bad and ("web@%s" % host, "10.77.1.2") in bad, bad
