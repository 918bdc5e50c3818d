"""IPv6 dual stack on one host (issue 15, layer 2), on a real kernel with real packets: the gateway6 on the bridge,
IPv6 addresses on the containers (fixed and allocated, leased, nodad), the IPv6 default route; a rerun with the same
addresses written differently changes nothing and writes nothing."""

import copy

from nskit import assert_noop, endpoints, nsexec


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


def ping6(ns, addr, timeout=1):
    return nsexec(ns, "ping", "-6", "-n", "-q", "-c", "1", "-W", str(timeout), addr, check=False).returncode == 0


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
