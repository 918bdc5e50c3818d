"""IPv6 on Docker networks (issue 15), with a real Docker Engine and real packets: a dual-stack vxlan network offered
to Docker on h1 becomes a Docker network with EnableIPv6 and an IPv6 IPAM config (subnet6, gateway6, Docker's IPv6
range in h1's IPv6 slice); `docker run --network N --ip6 A` containers reach netstitch's namespace containers over
IPv6, on the same host and across the overlay, with their own addresses; a rerun changes nothing and writes nothing;
a network Docker holds with other spellings of the same IPv6 values is never re-created. Then the same through
netstitch's Docker plugin (test_docker_plugin's lab: a plugin per host, the apply creating the plugin's network with
--ipv6): IPv6 pools, addresses and gateways from the plugin, leases kept as IPv6 apart from the IPv4 ones.

The lab is test_docker's (three lab hosts, the busybox image on the system engine, a second dockerd inside h1's
namespace); every container, network, image, daemon and namespace is removed at the end, also on failure. The
client and server of each TCP exchange run in the containers' own network namespaces (nsenter into the
container's PID), so the test needs no IPv6 tool inside the image.
"""

import copy
import ipaddress
import json
import subprocess

import pytest

import dockerkit
import nskit
# the module fixtures of the two Docker labs: dl (test_docker's), pl (test_docker_plugin's: two nested dockerds)
from test_docker import dl, hosts_of, noop  # noqa: F401  # pylint: disable=unused-import
from test_docker_plugin import pl, topology as plugin_topology  # noqa: F401  # pylint: disable=unused-import

pytestmark = pytest.mark.docker

SUBNET6 = "2001:db8:74::/64"

# a listener that prints the source of each connection, and a connector (both run by path in a network namespace,
# a container's /proc/<pid>/ns/net included)
_LISTEN6 = """
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8); s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
while True:
    try:
        c, peer = s.accept()
    except socket.timeout:
        break
    print("peer %s" % peer[0], flush=True); c.close()
"""
_CONNECT6 = """
import socket, sys
s = socket.socket(socket.AF_INET6); s.settimeout(float(sys.argv[3]))
s.connect((sys.argv[1], int(sys.argv[2]))); s.close()
"""


def _topo(dl):
    return {
        "hosts": hosts_of(dl, nested_on_h1=True),
        "networks": {"f6": {"subnet": "10.74.0.0/24", "subnet6": "2001:0DB8:74:0::/64",     # spelled loosely
                            "overlay": {"type": "vxlan", "vni": 74}, "hosts": ["h1", "h2"],
                            "docker": {"name": "f6-%s" % dl.id, "hosts": ["h1"]}}},
        "containers": {"n1": {"host": "h1", "netns": dl.cns("v6n1"), "interfaces": [{"network": "f6"}]},
                       "n2": {"host": "h2", "netns": dl.cns("v6n2"), "interfaces": [{"network": "f6"}]}},
    }


def _netns_of(dl, name):
    return "/proc/%d/ns/net" % dl.nest.pid(name)


def _tcp6_source(dl, src, dst, addr, port):
    """The source address a listener in ``dst`` sees of a TCP connection over IPv6 from ``src`` (each a network
    namespace path), or None when none gets through; the listener is stopped by its PID (and by the lab)."""
    p = subprocess.Popen(["nsenter", "--net=%s" % dst, "--", nskit.SYS_PY, "-c", _LISTEN6, addr, str(port), "8"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dl.fabric.procs.append(p)     # (dl: either lab; both have a fabric)
    try:
        if p.stdout.readline().strip() != "ready":
            return None
        r = subprocess.run(["nsenter", "--net=%s" % src, "--", nskit.SYS_PY, "-c", _CONNECT6, addr, str(port), "3"],
                           capture_output=True, text=True, timeout=15, check=False)
        if r.returncode != 0:
            return None
        line = p.stdout.readline().strip()
        return line.split(" ", 1)[1] if line.startswith("peer ") else None
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=5)


def _addr6(r, container):
    for h in r.values():
        for e in h["endpoints"]:
            if e["container"] == container:
                return nskit.addr(e["address6"])
    raise AssertionError("no IPv6 address of %s in %s" % (container, r))


def test_a_dual_stack_docker_network_on_the_fabric(dl):
    nest, api = dl.nest, dockerkit.api(dl.nested.url)
    dname = "f6-%s" % dl.id
    topo = _topo(dl)
    try:
        res = dl.apply(topo, hosts=("h1", "h2"))
        created = [a for a in res["h1"]["actions"] if "Docker network" in a]
        assert len(created) == 1 and "IPv6: subnet6 %s, gateway6 2001:db8:74::1, ip_range6" % SUBNET6 in created[0], \
            created
        net = api.inspect_network(dname)
        assert net["EnableIPv6"] is True
        six = [c for c in net["IPAM"]["Config"] if ":" in c["Subnet"]]
        assert len(six) == 1 and len(net["IPAM"]["Config"]) == 2, net["IPAM"]
        assert ipaddress.ip_network(six[0]["Subnet"]) == ipaddress.ip_network(SUBNET6)
        assert ipaddress.ip_address(six[0]["Gateway"]) == ipaddress.ip_address("2001:db8:74::1")
        rng = ipaddress.ip_network(six[0]["IPRange"])
        n1, n2 = _addr6(res, "n1"), _addr6(res, "n2")
        assert ipaddress.ip_address(n1) not in rng and ipaddress.ip_address(n2) not in rng     # netstitch's own

        # docker run --ip6 (an address of Docker's IPv6 range) and one without: Docker gives it from its range
        fixed = str(rng.network_address + 0x10)
        d1 = nest.start(dl.name("v6d1"), dl.tag, "sleep", "3600", network=dname, extra=("--ip6", fixed))
        d2 = nest.start(dl.name("v6d2"), dl.tag, "sleep", "3600", network=dname)
        got = api.inspect_container(d2)["NetworkSettings"]["Networks"][dname]["GlobalIPv6Address"]
        assert ipaddress.ip_address(got) in rng, (got, rng)
        ns1, ns2 = _netns_of(dl, d1), _netns_of(dl, d2)
        # on the same host (bridged): the namespace container sees the Docker container's own address
        seen = _tcp6_source(dl, ns1, "/run/netns/%s" % dl.cns("v6n1"), n1, 7401)
        assert seen is not None and ipaddress.ip_address(seen) == ipaddress.ip_address(fixed), seen
        # across the overlay (h2), both ways
        out = []
        nskit.wait_until(lambda: out.append(_tcp6_source(dl, ns1, "/run/netns/%s" % dl.cns("v6n2"), n2, 7402))
                         or out[-1], timeout=20, what="TCP over IPv6 from the Docker container to n2 on h2")
        assert ipaddress.ip_address(out[-1]) == ipaddress.ip_address(fixed)
        back = _tcp6_source(dl, "/run/netns/%s" % dl.cns("v6n2"), ns2, got, 7403)
        assert back is not None and ipaddress.ip_address(back) == ipaddress.ip_address(n2), back
        # a rerun: changed false, zero writes, the Docker network not re-created
        noop(dl.apply(topo, hosts=("h1", "h2")))
        assert api.inspect_network(dname)["Id"] == net["Id"]
        # netstitch never hands out an IPv6 address Docker's containers hold, nor one of Docker's range
        more = copy.deepcopy(topo)
        more["containers"]["n3"] = {"host": "h1", "netns": dl.cns("v6n3"), "interfaces": [{"network": "f6"}]}
        r = dl.apply(more, hosts=("h1",))
        n3 = ipaddress.ip_address(_addr6(r, "n3"))
        assert n3 not in rng and str(n3) not in (fixed, got)
        nest.remove_all()

        # the same values in other spellings, as another tool or an older run may have left them: nothing happens
        dl.apply(topo, hosts=("h1",))
        api.remove_network(dname)
        v4 = [c for c in net["IPAM"]["Config"] if ":" not in c["Subnet"]][0]
        nest.docker("network", "create", "--ipv6", "--subnet", "10.74.0.0/24", "--gateway", "10.74.0.1",
                    "--ip-range", v4["IPRange"], "--subnet", "2001:0DB8:74:0:0::/64", "--gateway", "2001:DB8:74:0:0:0:0:1",
                    "--ip-range", _spelled(rng),
                    "-o", "com.docker.network.bridge.name=nsbr-f6", "-o", "com.docker.network.driver.mtu=%s"
                    % net["Options"]["com.docker.network.driver.mtu"],
                    "-o", "com.docker.network.bridge.enable_ip_masquerade=false",
                    "--label", "netstitch.host=h1", "--label", "netstitch.network=f6", dname)
        spelled = [c for c in api.inspect_network(dname)["IPAM"]["Config"] if ":" in c["Subnet"]][0]
        assert spelled["Subnet"] != SUBNET6 and spelled["IPRange"] != str(rng), spelled    # Docker kept the text
        r = dl.apply(topo, hosts=("h1",))["h1"]
        assert not [a for a in r["actions"] if "Docker network" in a] and r["writes"]["docker"] == 0, (spelled, r)
    finally:
        dl.reset(topo)


def _spelled(net):
    """A network in uppercase, fully written out (what Docker keeps as given)."""
    return "%s/%d" % (net.network_address.exploded.upper(), net.prefixlen)


def test_a_dual_stack_network_through_netstitchs_docker_plugin(pl):
    """networks.N.docker {driver: netstitch} on a dual-stack vxlan network: the apply creates the Docker network
    with --ipv6 (Docker asks the plugin for both pools); `docker run --ip6` and an automatic address get IPv6 from
    the host's IPv6 slice, the gateway6 as their IPv6 default route; TCP over IPv6 to a namespace container on the
    same host and to the Docker container on the other host, with their own addresses; the plugin keeps the IPv6
    leases apart; a rerun changes nothing; dropping the offer removes the network and its leases."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import hostspec, validate

    def topo(offered=True):
        t = plugin_topology(pl)
        for h in ("h1", "h2"):
            t["hosts"][h].update(docker_host=pl.nested[h].url, docker_plugin=pl.pname(h))
        t["networks"]["d6"] = {"subnet": "10.66.0.0/16", "subnet6": "2001:db8:66::/64",
                               "overlay": {"type": "vxlan", "vni": 66, "learning": True}, "hosts": ["h1", "h2"]}
        t["containers"]["n6"] = {"host": "h1", "netns": pl.fabric.cns("n6"), "interfaces": [{"network": "d6"}]}
        if offered:
            t["networks"]["d6"]["docker"] = {"driver": "netstitch"}
        return t

    pool6 = {h: ipaddress.ip_network({n["name"]: n for n in spec["networks"]}["d6"]["pool6"])
             for h, spec in hostspec.host_specs(validate.load(topo())).items() if h in ("h1", "h2")}
    try:
        res = pl.apply(topo())
        for h in ("h1", "h2"):
            assert "create Docker network d6 with netstitch's plugin %s (subnet 10.66.0.0/16, gateway 10.66.0.1, " \
                   "subnet6 2001:db8:66::/64, gateway6 2001:db8:66::1, network d6)" % pl.pname(h) \
                in res[h]["actions"], res[h]["actions"]
            d = json.loads(pl.docker(h, "network", "inspect", "d6").stdout)[0]
            assert d["EnableIPv6"] is True and sorted(c["Subnet"] for c in d["IPAM"]["Config"]) == [
                "10.66.0.0/16", "2001:db8:66::/64"], d
        n6 = _addr6(res, "n6")
        fixed = str(pool6["h1"].network_address + 0x20)
        pl.run("h1", "e1", "--network", "d6", "--ip6", fixed)
        pl.run("h2", "e2", "--network", "d6")
        e2 = json.loads(pl.docker("h2", "inspect", "e2").stdout)[0]["NetworkSettings"]["Networks"]["d6"][
            "GlobalIPv6Address"]
        assert ipaddress.ip_address(e2) in pool6["h2"], (e2, pool6)
        assert "default via 2001:db8:66::1" in pl.docker("h1", "exec", "e1", "ip", "-6", "route").stdout
        st1, st2 = pl.plugin_state("h1"), pl.plugin_state("h2")
        assert fixed in st1["leases6"]["d6"] and e2 in st2["leases6"]["d6"], (st1["leases6"], st2["leases6"])
        assert all(":" not in a for ls in st1["leases"].values() for a in ls), st1["leases"]
        ns1 = "/proc/%d/ns/net" % pl.engines["h1"].pid("e1")
        ns2 = "/proc/%d/ns/net" % pl.engines["h2"].pid("e2")
        seen = _tcp6_source(pl, ns1, "/run/netns/%s" % pl.fabric.cns("n6"), n6, 7411)
        assert seen is not None and ipaddress.ip_address(seen) == ipaddress.ip_address(fixed), seen
        out = []
        nskit.wait_until(lambda: out.append(_tcp6_source(pl, ns1, ns2, e2, 7412)) or out[-1], timeout=20,
                         what="TCP over IPv6 between the plugin's containers on h1 and h2")
        assert ipaddress.ip_address(out[-1]) == ipaddress.ip_address(fixed)
        for h, r in pl.apply(topo()).items():
            assert not r["changed"] and not any(r["writes"].values()), (h, r["actions"], r["writes"])
        for h, name in (("h1", "e1"), ("h2", "e2")):
            pl.docker(h, "rm", "-f", name)
        res = pl.apply(topo(offered=False))
        for h in ("h1", "h2"):
            assert any(a.startswith("remove Docker network d6") for a in res[h]["actions"]), res[h]["actions"]
            assert not pl.plugin_state(h).get("leases6", {}).get("d6"), pl.plugin_state(h)
    finally:
        for h, name in (("h1", "e1"), ("h2", "e2")):
            pl.docker(h, "rm", "-f", name, check=False)
        pl.apply(plugin_topology(pl))
