"""IPv6 on Docker networks (issue 15), with a real Docker Engine and real packets: a dual-stack vxlan network offered
to Docker on h1 becomes a Docker network with EnableIPv6 and an IPv6 IPAM config (subnet6, gateway6, Docker's IPv6
range in h1's IPv6 slice); `docker run --network N --ip6 A` containers reach netstitch's namespace containers over
IPv6, on the same host and across the overlay, with their own addresses; a rerun changes nothing and writes nothing;
a network Docker holds with other spellings of the same IPv6 values is never re-created.

The lab is test_docker's (three lab hosts, the busybox image on the system engine, a second dockerd inside h1's
namespace); every container, network, image, daemon and namespace is removed at the end, also on failure. The
client and server of each TCP exchange run in the containers' own network namespaces (nsenter into the
container's PID), so the test needs no IPv6 tool inside the image.
"""

import copy
import ipaddress
import subprocess

import pytest

import dockerkit
import nskit
from test_docker import dl, hosts_of, noop  # noqa: F401 (dl: the module's Docker lab fixture)
from test_ipv6_overlay import _CONNECT6, _LISTEN6

pytestmark = pytest.mark.docker

SUBNET6 = "2001:db8:74::/64"


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
    dl.fabric.procs.append(p)
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
