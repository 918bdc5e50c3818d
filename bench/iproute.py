"""The iproute2 baselines of the apply benchmark: the same kernel objects netstitch makes for N endpoints (bridges
with gateway address, MAC, MTU, alias; one veth per container with the container end made straight in the
container's namespace with its MAC; host end enslaved, aliased, up; in the container: address, up, default route).

- ``script``: the best iproute2 script of ../shared/LAB.md: one ``ip -batch`` for the host side, then one
  ``ip -n C -batch`` per container (a process per container: that is what iproute2 offers to enter a namespace).
- ``floor``: the same netlink operations in exactly two ``ip -batch`` processes: the host side as above, and the
  container side in one batch, with the container ends all in one scratch namespace (no namespace is entered per
  container). This is the kernel's own share of the work plus two process starts: nothing that configures N
  separate namespaces can go below it.
- ``prune``: one ``ip -batch`` deleting every host end (the kernel removes the pair) and the bridges, one by one;
  ``prune_group``: the same links put in one link group and removed with one ``link del group`` (as netstitch does).
"""

import ipaddress

from labkit import ip_batch, timed


def _free(subnet, gateway):
    return (a for a in subnet.hosts() if a != gateway)


def plan(spec):
    """(bridges, endpoints) from a compiled host spec, with addresses given in order from each network's pool."""
    bridges, endpoints = [], []
    nets = {}
    for n in spec["networks"]:
        subnet = ipaddress.IPv4Network(n["subnet"])
        gw = ipaddress.IPv4Address(n["gateway"])
        hosts = _free(subnet, gw)
        nets[n["name"]] = (n, subnet, hosts)
        bridges.append({"name": n["bridge"], "mac": n["bridge_mac"], "mtu": n["mtu"],
                        "address": "%s/%d" % (gw, subnet.prefixlen), "alias": "netstitch bridge %s" % n["name"]})
    for c in spec["containers"]:
        for itf in c["interfaces"]:
            n, subnet, hosts = nets[itf["network"]]
            endpoints.append({"host": itf["host_ifname"], "ns": c["netns"], "ifname": itf["name"], "mac": itf["mac"],
                              "mtu": n["mtu"], "bridge": n["bridge"], "gateway": n["gateway"],
                              "address": "%s/%d" % (next(hosts), subnet.prefixlen),
                              "alias": "netstitch veth %s/%s %s" % (c["name"], itf["name"], n["name"])})
    return bridges, endpoints


def _host_lines(bridges, endpoints, peer_ns=None):
    out = []
    for b in bridges:
        out.append("link add %s mtu %d address %s type bridge" % (b["name"], b["mtu"], b["mac"]))
        out.append('link set %s alias "%s"' % (b["name"], b["alias"]))
        out.append("addr add %s dev %s" % (b["address"], b["name"]))
        out.append("link set %s up" % b["name"])
    for i, e in enumerate(endpoints):
        ns, ifname = (peer_ns, "e%d" % i) if peer_ns else (e["ns"], e["ifname"])
        out.append("link add %s mtu %d type veth peer name %s netns %s address %s mtu %d"
                   % (e["host"], e["mtu"], ifname, ns, e["mac"], e["mtu"]))
        out.append('link set %s master %s alias "%s" up' % (e["host"], e["bridge"], e["alias"]))
    return out


def _container_lines(e, ifname, metric=None):
    return ["addr add %s dev %s" % (e["address"], ifname),
            "link set %s up" % ifname,
            "route add default via %s dev %s%s" % (e["gateway"], ifname, " metric %d" % metric if metric else "")]


def script(hostns, spec):
    """LAB.md's best iproute2 script. Returns (total seconds, host-side seconds)."""
    bridges, endpoints = plan(spec)
    t_host = ip_batch(_host_lines(bridges, endpoints), ns=hostns)
    t_cont = 0.0
    for e in endpoints:
        t_cont += ip_batch(_container_lines(e, e["ifname"]), ns=e["ns"])
    return t_host + t_cont, t_host


def floor(hostns, flatns, spec):
    """The same operations in two `ip -batch` processes (container ends in one namespace ``flatns``)."""
    bridges, endpoints = plan(spec)
    t_host = ip_batch(_host_lines(bridges, endpoints, peer_ns=flatns), ns=hostns)
    lines = []
    for i, e in enumerate(endpoints):
        lines += _container_lines(e, "e%d" % i, metric=i + 1)
    t_cont = ip_batch(lines, ns=flatns)
    return t_host + t_cont, t_host


def prune(hostns, spec):
    bridges, endpoints = plan(spec)
    return ip_batch(["link del %s" % e["host"] for e in endpoints] + ["link del %s" % b["name"] for b in bridges],
                    ns=hostns)


def prune_group(hostns, spec, group=4243):
    """The same removal with the kernel's group removal (what netstitch does): mark every link, remove the group."""
    bridges, endpoints = plan(spec)
    names = [e["host"] for e in endpoints] + [b["name"] for b in bridges]
    return ip_batch(["link set %s group %d" % (x, group) for x in names] + ["link del group %d" % group], ns=hostns)


def count_ops(spec):
    bridges, endpoints = plan(spec)
    return len(_host_lines(bridges, endpoints)) + 3 * len(endpoints)


__all__ = ["plan", "script", "floor", "prune", "prune_group", "count_ops", "timed"]
