"""IPv6-only networks (issue 15: a subnet6 instead of a subnet), on a real kernel with real packets: one host with an
IPv6-only network (no IPv4 anywhere on its bridge or containers; the gateway6, IPv6 addresses fixed and allocated,
the IPv6 default route; ping6 and TCP; a port published on :: reached from the lab's outside over IPv6 and not over
IPv4; names answered with AAAA by the name service listening on the gateway6); an isolated IPv6-only network with a
link; the probe; an IPv6-only vxlan and tinc overlay across three hosts (slices of the subnet6 itself). Every rerun
writes nothing."""

import ipaddress
import json

import pytest

import nskit
from nskit import Listener, assert_noop, endpoints, nsexec, run, wait_until
# fabric: the fixture
from fabrickit import fabric  # noqa: F401 pylint: disable=unused-import
from test_ipv6 import OUTSIDE6, UPLINK6, _getent6, _tcp6, ping6
from test_ipv6_overlay import SETTLE, tcp6_source

GW6 = "2001:db8:78:1::1"


def _six(env, **net):
    return {
        "version": 1,
        "hosts": {env.HOST: {"underlay": env.underlay}},
        "networks": {"six": dict({"subnet6": "2001:db8:78:1::/64"}, **net)},
        "containers": {
            "web": {"host": env.HOST, "netns": env.ns("web"),
                    "interfaces": [{"network": "six", "ip6": "2001:0db8:78:1::A"}]},
            "cli": {"host": env.HOST, "netns": env.ns("cli"), "interfaces": [{"network": "six"}]},
        },
    }


def test_an_ipv6_only_network_on_one_host(env):
    res = env.apply(_six(env))
    assert res["changed"]
    eps = endpoints(res)
    assert (eps["web/eth0"]["address"], eps["web/eth0"]["address6"]) == (None, "2001:db8:78:1::a/64")
    assert (eps["cli/eth0"]["address"], eps["cli/eth0"]["address6"]) == (None, "2001:db8:78:1::2/64")
    # the kernel: the gateway6 alone on the bridge (no IPv4 address), forwarded there; IPv6 alone in the containers
    br = env.ip("-6", "addr", "show", "dev", "nsbr-six", "scope", "global")
    assert "inet6 %s/64" % GW6 in br and "tentative" not in br, br
    assert env.ip("-4", "addr", "show", "dev", "nsbr-six").strip() == ""
    assert nsexec(env.hostns, "cat", "/proc/sys/net/ipv6/conf/nsbr-six/force_forwarding").stdout.strip() == "1"
    for c in ("web", "cli"):
        ns = env.ns(c)
        assert run("ip", "-n", ns, "-4", "addr", "show", "dev", "eth0").stdout.strip() == ""
        assert run("ip", "-n", ns, "-4", "route", "show").stdout.strip() == ""
        route = run("ip", "-n", ns, "-6", "route", "show", "default").stdout
        assert route.split()[:5] == ["default", "via", GW6, "dev", "eth0"], route
    # packets: ping6 both ways and to the gateway6, TCP with the client's own address
    assert ping6(env.ns("cli"), "2001:db8:78:1::a") and ping6(env.ns("web"), "2001:db8:78:1::2")
    assert ping6(env.ns("cli"), GW6)
    listener = Listener(env, env.ns("web"), "::", 80, lifetime=30)
    assert _tcp6(env.ns("cli"), "2001:db8:78:1::a", 80)
    assert not _tcp6(env.ns("cli"), "2001:db8:78:1::a", 81)         # the control: nothing listens there
    assert listener.peers() == ["2001:db8:78:1::2"]                 # the client's own address
    assert_noop(env.apply(_six(env)))


def test_a_dual_stack_network_made_ipv6_only_loses_its_ipv4_half(env):
    """subnet taken out of a dual-stack network: the IPv4 gateway, addresses and default routes go, the IPv6 ones
    (and the allocated address's lease) stay; and back again. Each rerun writes nothing."""
    dual = _six(env)
    dual["networks"]["six"]["subnet"] = "10.78.1.0/24"
    env.apply(dual)
    assert run("ip", "-n", env.ns("cli"), "-4", "route", "show", "default").stdout.split()[:3] == [
        "default", "via", "10.78.1.1"]
    res = env.apply(_six(env))
    assert res["changed"] and endpoints(res)["cli/eth0"]["address6"] == "2001:db8:78:1::2/64"
    assert env.ip("-4", "addr", "show", "dev", "nsbr-six").strip() == ""
    for c in ("web", "cli"):
        assert run("ip", "-n", env.ns(c), "-4", "addr", "show", "dev", "eth0").stdout.strip() == ""
        assert run("ip", "-n", env.ns(c), "-4", "route", "show").stdout.strip() == ""
    assert ping6(env.ns("cli"), "2001:db8:78:1::a")
    assert_noop(env.apply(_six(env)))
    env.apply(dual)
    assert nskit.ping(env.ns("cli"), "10.78.1.1") and ping6(env.ns("cli"), "2001:db8:78:1::a")
    assert_noop(env.apply(dual))


def test_a_port_published_on_ipv6_only_answers_the_outside_over_ipv6(env, lab):
    """web publishes 8080 (no host_ip: on an IPv6-only network every IPv6 address, no IPv4 one) and 8443 on ::.
    From the outside namespace over IPv6 both reach web with the outside's own address as the source; over IPv4 the
    host's address does not answer 8080. The host's uplink forwards IPv6 because this test says so (its own lab
    host, as test_ipv6 does)."""
    k = int(env.underlay.rsplit(".", 1)[1])
    host6, host4 = UPLINK6 % k, env.underlay.split("/", 1)[0]
    topo = _six(env)
    topo["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80},
                                            {"host_port": 8443, "container_port": 80, "host_ip": "::"}]
    try:
        nsexec(lab.out, "ip", "-6", "addr", "add", OUTSIDE6 + "/64", "dev", "eth0", "nodad")
        nsexec(env.hostns, "ip", "-6", "addr", "add", host6 + "/64", "dev", "eth0", "nodad")
        nsexec(env.hostns, "sysctl", "-qw", "net.ipv6.conf.eth0.force_forwarding=1")
        assert env.apply(topo)["changed"]
        listener = Listener(env, env.ns("web"), "::", 80, lifetime=30)
        wait_until(lambda: _tcp6(lab.out, host6, 8080), timeout=10, what="8080 over IPv6 from the outside")
        assert _tcp6(lab.out, host6, 8443)
        assert not _tcp6(lab.out, host6, 8081)                      # the control: not published
        assert not nskit.connect(lab.out, host4, 8080, timeout=0.5)  # IPv6-only: nothing on IPv4
        assert _tcp6(env.ns("cli"), host6, 8080)                    # a container of the network: hairpin
        peers = listener.peers()
        assert peers[:2] == [OUTSIDE6, OUTSIDE6], peers
        assert peers[-1] == GW6, peers                               # hairpin: masqueraded to the gateway6
        rules = nsexec(env.hostns, "nft", "list", "table", "inet", "netstitch").stdout
        assert "pub_any_addr" not in rules and "pub6_any_addr" in rules     # no IPv4 map on an IPv6-only host
        assert_noop(env.apply(topo))
    finally:
        nsexec(lab.out, "ip", "-6", "addr", "del", OUTSIDE6 + "/64", "dev", "eth0", check=False)


def test_names_on_an_ipv6_only_network(env):
    """dns: true on an IPv6-only network: dnsmasq listens on the gateway6, the containers' resolv.conf points there,
    and it answers AAAA records (cli finds web and web.six, and connects to it by name); a link's name is in the
    client's hosts file with the server's IPv6 address."""
    topo = _six(env, dns=True)
    topo["links"] = [{"client": "cli", "server": "web", "name": "www", "ports": [80]}]
    env.apply(topo)
    with open("/etc/netns/%s/resolv.conf" % env.ns("cli")) as f:
        assert f.read().splitlines()[-1] == "nameserver %s" % GW6
    with open("/etc/netns/%s/hosts" % env.ns("cli")) as f:
        assert "2001:db8:78:1::a\twww" in f.read()
    wait_until(lambda: _getent6(env.ns("cli"), "web") == "2001:db8:78:1::a", timeout=10,
               what="the name service on the gateway6 answers web (AAAA)")
    assert _getent6(env.ns("web"), "cli.six") == "2001:db8:78:1::2"
    r = run("ip", "netns", "exec", env.ns("cli"), "getent", "ahostsv4", "web", check=False)
    assert r.stdout.strip() == "", r.stdout                         # no A record: no IPv4 address
    Listener(env, env.ns("web"), "::", 80, lifetime=30)
    assert _tcp6(env.ns("cli"), _getent6(env.ns("cli"), "www"), 80)
    assert_noop(env.apply(topo))


def test_isolation_and_a_link_on_an_ipv6_only_network(env):
    """An isolated IPv6-only network: only the linked connection starts (cli to web, TCP 80), neighbour discovery
    works, nothing else passes (another port, an unlinked container, the other way); IPv4 made up inside the network
    does not pass either. The control without netstitch's table lets it all through."""
    nsexec(env.hostns, "sh", "-c", "echo 1 > /proc/sys/net/bridge/bridge-nf-call-ip6tables; "
                                   "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables")
    topo = _six(env, isolated=True)
    topo["containers"]["other"] = {"host": env.HOST, "netns": env.ns("other"),
                                   "interfaces": [{"network": "six", "ip6": "2001:db8:78:1::d"}]}
    topo["links"] = [{"client": "cli", "server": "web", "ports": [80]}]
    env.apply(topo)
    for port in (80, 81):
        Listener(env, env.ns("web"), "::", port, lifetime=30)
    assert _tcp6(env.ns("cli"), "2001:db8:78:1::a", 80)
    assert not _tcp6(env.ns("cli"), "2001:db8:78:1::a", 81)
    assert not _tcp6(env.ns("other"), "2001:db8:78:1::a", 80)
    assert not ping6(env.ns("web"), "2001:db8:78:1::2", timeout=0.5)
    assert not ping6(env.ns("other"), "2001:db8:78:1::a", timeout=0.5)
    # IPv4 addresses made up by two containers (netstitch gave them none) do not pass either
    nsexec(env.ns("web"), "ip", "addr", "add", "169.254.7.1/24", "dev", "eth0")
    nsexec(env.ns("other"), "ip", "addr", "add", "169.254.7.2/24", "dev", "eth0")
    assert not nskit.ping(env.ns("other"), "169.254.7.1", timeout=0.5)
    nsexec(env.ns("web"), "ip", "addr", "del", "169.254.7.1/24", "dev", "eth0")
    nsexec(env.ns("other"), "ip", "addr", "del", "169.254.7.2/24", "dev", "eth0")
    assert_noop(env.apply(topo))
    nsexec(env.hostns, "nft", "delete", "table", "inet", "netstitch")
    assert _tcp6(env.ns("other"), "2001:db8:78:1::a", 81) and ping6(env.ns("web"), "2001:db8:78:1::2")
    nsexec(env.ns("web"), "ip", "addr", "add", "169.254.7.1/24", "dev", "eth0")
    nsexec(env.ns("other"), "ip", "addr", "add", "169.254.7.2/24", "dev", "eth0")
    assert nskit.ping(env.ns("other"), "169.254.7.1")              # the control of the IPv4 drop


def test_the_probe_checks_an_ipv6_only_network(env):
    """`netstitch probe`: its checks to the containers and the gateway are IPv6 ones only, and they hold."""
    from test_status_cli import cli, write
    path = write(env, _six(env))
    assert cli(env, "apply", path).returncode == 0
    r = cli(env, "probe", path, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    host = env.HOST
    got = {(o["from"], o["to"], o["expect"]) for o in out["outcomes"]}
    assert {("web@%s" % host, "2001:db8:78:1::2", True), ("cli@%s" % host, "2001:db8:78:1::a", True),
            ("cli@%s" % host, GW6, True)} <= got, got
    assert all(":" in o["to"] for o in out["outcomes"] if o["kind"] != "outside"), got
    assert out["all_ok"], out["mismatches"]


def _overlay(fabric, kind):
    topo = fabric.topology(kind)
    del topo["networks"]["ov"]["subnet"]
    topo["networks"]["ov"]["subnet6"] = "2001:db8:82::/64"
    # a fixed address in h1's slice although its container is on h3: h1 never hands it out
    topo["containers"]["c3"]["interfaces"][0]["ip6"] = "2001:db8:82:0:1000::"
    return topo


@pytest.mark.parametrize("kind", ["vxlan", "tinc"])
def test_an_ipv6_only_overlay_between_every_host_pair(fabric, kind):
    topo = _overlay(fabric, kind)
    first = fabric.apply_all(topo)
    assert all(r["changed"] for r in first.values())
    eps = {e["container"]: e for r in first.values() for e in r["endpoints"]}
    assert {c: e["address"] for c, e in eps.items()} == {"c1": None, "c2": None, "c3": None}
    # the slices are the subnet6's own (/68: its prefix + 4), placed by the underlay address (.N -> slice N)
    assert eps["c1"]["address6"] == "2001:db8:82:0:1000::1/64"      # ::0 of h1's slice is c3's fixed address
    assert eps["c2"]["address6"] == "2001:db8:82:0:2000::/64" and eps["c3"]["address6"] == "2001:db8:82:0:1000::/64"
    a6 = {c: nskit.addr(e["address6"]) for c, e in eps.items()}
    for host in ("h1", "h2", "h3"):
        ns = fabric.cns("c" + host[1:])
        assert nskit.nsexec(fabric.hns(host), "ip", "-4", "addr", "show", "dev", "nsbr-ov").stdout.strip() == ""
        assert nskit.nsexec(ns, "ip", "-4", "addr", "show", "dev", "eth0").stdout.strip() == ""
        mac = json.loads(nskit.nsexec(fabric.hns(host), "ip", "-j", "link", "show", "dev", "nsbr-ov").stdout)[0][
            "address"]
        neigh = nskit.nsexec(ns, "ip", "-6", "neigh", "show", "dev", "eth0", "nud", "permanent").stdout
        assert "2001:db8:82::1 lladdr %s PERMANENT" % mac in neigh, neigh
        assert ping6(ns, "2001:db8:82::1")
    for src in ("c1", "c2", "c3"):
        for dst in ("c1", "c2", "c3"):
            if src == dst:
                continue
            ns, dns = fabric.cns(src), fabric.cns(dst)
            nskit.wait_until(lambda: ping6(ns, a6[dst]), timeout=SETTLE[kind],
                             what="ping6 %s -> %s (%s)\n%s" % (src, dst, a6[dst], fabric.diagnose()))
            got = []
            nskit.wait_until(lambda: got.append(tcp6_source(fabric, ns, dns, a6[dst])) or got[-1],
                             timeout=SETTLE[kind], what="TCP over IPv6 %s -> %s" % (src, dst))
            assert ipaddress.IPv6Address(got[-1]) == ipaddress.IPv6Address(a6[src])
    for res in fabric.apply_all(topo).values():
        nskit.assert_noop(res)


def _model6(env, namespaces):
    """test_crash's model of a converged host plus, per namespace, the global IPv6 addresses and the IPv6 default
    route, and the bridge's IPv6 forwarding."""
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
    out["forwarding6"] = nsexec(env.hostns, "cat", "/proc/sys/net/ipv6/conf/nsbr-six/force_forwarding",
                                check=False).stdout.strip() if env.link("nsbr-six") else None
    return out


def test_a_kill_at_any_write_point_of_an_ipv6_only_apply_or_prune_is_repaired(env):
    """test_crash's method over an IPv6-only network's writes: from an empty host, an apply of the IPv6-only network
    (with a published port) is killed at each of its write points, rerun, and must converge to what a clean run
    makes (the same addresses: one added before the kill is adopted), with a no-op after it; the same for the prune
    back to nothing."""
    import os
    from test_crash import points
    empty = {"version": 1, "hosts": {env.HOST: {"underlay": env.underlay}}, "networks": {}, "containers": {}}
    six = _six(env)
    six["containers"]["web"]["publish"] = [{"host_port": 8080, "container_port": 80}]
    namespaces = [env.ns(c) for c in ("web", "cli")]
    env.apply(six)
    want_six = _model6(env, namespaces)
    assert want_six[env.ns("cli")]["v6"]["addresses"] == ["eth0 2001:db8:78:1::2/64"]
    env.apply(empty)
    want_empty = _model6(env, namespaces)
    for start, target, want, tag in ((empty, six, want_six, "six"), (six, empty, want_empty, "prune")):
        env.apply(start)
        names = points(env, target, os.path.join(os.path.dirname(env.state_dir), "points-%s" % tag))
        env.apply(start)     # counting the points applied the target for real
        assert names, tag
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
