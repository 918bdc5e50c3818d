"""Compile a validated topology into one self-contained spec per host (pure, controller side).

A host spec carries everything one host needs and nothing about other hosts' containers, so a single module call per
host applies it. Addresses left to allocation are resolved on the host (see ipam), from the host's own pool.
"""

SPEC_VERSION = 1


def _network_spec(net):
    return {
        "name": net.name,
        "bridge": net.bridge,
        "bridge_mac": net.bridge_mac,
        "subnet": str(net.subnet),
        "gateway": str(net.gateway),
        "mtu": net.mtu,
        "masquerade": net.masquerade,
        "internal": net.internal,
        # the host's allocation pool: the whole subnet for a host-local network
        "pool": str(net.subnet),
        "reserved": [],
    }


def host_specs(topo):
    """Return {host name: spec dict} for every host in the topology (hosts without networks get an empty spec,
    which prunes whatever netstitch had made there)."""
    fixed = {}   # (network, host) -> set of fixed addresses (reserved from allocation)
    for c in topo.containers.values():
        for itf in c.interfaces:
            if itf.ip is not None:
                fixed.setdefault((itf.network, c.host), set()).add(itf.ip)
    specs = {}
    for host in topo.hosts:
        nets = []
        for net in sorted(topo.networks.values(), key=lambda n: n.name):
            if host in net.hosts:
                ns = _network_spec(net)
                ns["reserved"] = sorted(str(a) for a in fixed.get((net.name, host), ()))
                nets.append(ns)
        conts = []
        for c in sorted(topo.containers.values(), key=lambda c: c.name):
            if c.host != host:
                continue
            conts.append({
                "name": c.name,
                "kind": c.kind,
                "netns": c.netns if c.kind == "netns" else None,
                "docker": c.docker if c.kind == "docker" else None,
                "interfaces": [{
                    "name": i.name,
                    "network": i.network,
                    "host_ifname": i.host_name,
                    "ip": str(i.ip) if i.ip is not None else None,
                    "mac": i.mac,
                    "default_route": i.default_route,
                } for i in c.interfaces],
            })
        specs[host] = {"version": SPEC_VERSION, "host": host, "networks": nets, "containers": conts}
    return specs
