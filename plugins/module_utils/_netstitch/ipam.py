"""Host-local, stable address allocation.

Each host allocates from its own pool (the whole subnet of a host-local network; later a host's slice of an overlay).
Priority for an interface without a fixed address: its lease from the host's lease file, then the address it has in
the kernel now, then the lowest free address of the pool. Fixed addresses, the gateway and every address already
kept are never handed out again, so adding or removing a container never renumbers another, and a rerun never
renumbers at all. Leases survive a container restart (a new namespace), so it gets its address back.
"""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.current import endpoint_peer
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError


def lease_key(container, ifname):
    return "%s/%s" % (container, ifname)


def allocate(spec, current, leases, reserved=None):
    """Return ({(container, ifname): IPv4Address}, new_leases). ``leases`` is {network: {lease_key: "a.b.c.d"}};
    ``reserved``: {network: addresses} never to hand out beyond the spec's own (those Docker's containers hold)."""
    # macvlan networks (kinds.macvlan): the pool is the host's range of the segment (None: fixed addresses only),
    # the gateway the segment's router (or none)
    nets = {n["name"]: n for n in spec["networks"] + spec.get("macvlan_networks", [])}
    result = {}
    taken = {}      # network -> set of addresses in use or reserved
    pools = {}
    docker = {}     # network -> the range of the pool Docker allocates from (a network offered to Docker)
    for name, n in nets.items():
        if not n["subnet"]:
            continue        # an IPv6-only network: no IPv4 address (allocate6)
        pool = ipaddress.IPv4Network(n["pool"] or "0.0.0.0/32")     # (no pool: nothing is in it)
        subnet = ipaddress.IPv4Network(n["subnet"])
        pools[name] = (pool, subnet)
        if (n.get("docker") or {}).get("ip_range"):
            docker[name] = ipaddress.IPv4Network(n["docker"]["ip_range"])
        taken[name] = {subnet.network_address, subnet.broadcast_address}
        if n["gateway"]:
            taken[name].add(ipaddress.IPv4Address(n["gateway"]))
        taken[name].update(ipaddress.IPv4Address(a) for a in n["reserved"])
        taken[name].update(ipaddress.IPv4Address(a) for a in (reserved or {}).get(name, ()))
    todo = []
    for c in spec["containers"]:
        for itf in c["interfaces"]:
            key = (c["name"], itf["name"])
            if itf["network"] not in pools:
                continue
            if itf["ip"]:
                result[key] = ipaddress.IPv4Address(itf["ip"])
                taken[itf["network"]].add(result[key])
            else:
                todo.append((c, itf))

    def usable(net, addr):
        pool, subnet = pools[net]
        return addr is not None and addr in pool and addr in subnet and addr not in taken[net] and \
            not (net in docker and addr in docker[net])

    # 1. the lease (netstitch's record: an address changed by hand is drift, put back); 2. then what the kernel has
    # now (kept when there is no usable lease, e.g. a lost state directory)
    rest = []
    for c, itf in todo:
        net = itf["network"]
        leased = leases.get(net, {}).get(lease_key(c["name"], itf["name"]))
        addr = ipaddress.IPv4Address(leased) if leased else None
        if usable(net, addr):
            result[(c["name"], itf["name"])] = addr
            taken[net].add(addr)
        else:
            rest.append((c, itf))
    rest2 = []
    for c, itf in rest:
        net = itf["network"]
        addr = None
        netns = c.get("netns") or c.get("docker")
        link = endpoint_peer(current, itf["host_ifname"], netns)[1]
        plen = pools[net][1].prefixlen
        for cidr in (link or {}).get("addresses", []):
            a, _sep, l = cidr.partition("/")
            if int(l) == plen and usable(net, ipaddress.IPv4Address(a)):
                addr = ipaddress.IPv4Address(a)
                break
        if addr is not None:
            result[(c["name"], itf["name"])] = addr
            taken[net].add(addr)
        else:
            rest2.append((c, itf))
    # 3. lowest free address (addresses only get taken, so one cursor per pool suffices). The whole pool: the
    # segment's network, broadcast and gateway addresses are in ``taken``, while the first and last address of an
    # overlay slice are ordinary addresses of the shared segment (the validator counts them as free, too)
    cursors = {}
    for c, itf in rest2:
        net = itf["network"]
        pool = pools[net][0]
        cur = cursors.setdefault(net, iter(pool))
        for addr in cur:
            if usable(net, addr):
                break
        else:
            raise ApplyError("networks.%s: no free address left in pool %s on host %s for containers.%s interface %s"
                             % (net, pool, spec["host"], c["name"], itf["name"]))
        result[(c["name"], itf["name"])] = addr
        taken[net].add(addr)
    new_leases = {}
    for c in spec["containers"]:
        for itf in c["interfaces"]:
            if not itf["ip"] and itf["network"] in pools:
                new_leases.setdefault(itf["network"], {})[lease_key(c["name"], itf["name"])] = \
                    str(result[(c["name"], itf["name"])])
    return result, new_leases


def lease_key6(container, ifname):
    """The lease of an interface's IPv6 address, beside its IPv4 one under the same network (a container or
    interface name holds no '/', so the keys never meet)."""
    return "%s/%s/6" % (container, ifname)


def _reserved6(addr, subnet):
    """The subnet-router anycast address and the RFC 2526 reserved anycast addresses (as the validator refuses)."""
    if addr == subnet.network_address:
        return True
    if subnet.prefixlen == 64:
        return 0xFDFFFFFFFFFFFF80 <= (int(addr) & 0xFFFFFFFFFFFFFFFF) <= 0xFDFFFFFFFFFFFFFF
    return int(addr) > int(subnet.broadcast_address) - 128


def allocate6(spec, current, leases, reserved=None):
    """IPv6 addresses of the interfaces on dual-stack networks (a network with ``subnet6``), in the order IPv4 uses:
    fixed, then the lease, then the kernel's current address, then the lowest free one of the host's pool (its
    IPv6 slice of an overlay, ``pool6``, else the subnet6). Returns
    ({(container, ifname): IPv6Address}, {network: {lease_key6: address}}). Every address is an
    ipaddress.IPv6Address, so its textual form never matters. Never handed out: Docker's IPv6 range of a network
    offered to Docker (``docker.ip_range6``) and ``reserved``, {network: addresses} Docker's containers hold."""
    subnets = {n["name"]: ipaddress.IPv6Network(n["subnet6"]) for n in spec["networks"] if n.get("subnet6")}
    if not subnets:
        return {}, {}
    # an overlay: this host's IPv6 slice (pool6), and the fixed addresses of the whole segment (reserved6)
    pools = {n["name"]: ipaddress.IPv6Network(n.get("pool6") or n["subnet6"]) for n in spec["networks"]
             if n["name"] in subnets}
    taken = {n["name"]: {ipaddress.IPv6Address(a) for a in [n["gateway6"]] + n.get("reserved6", [])
                         + list((reserved or {}).get(n["name"], ()))}
             for n in spec["networks"] if n["name"] in subnets}
    docker = {n["name"]: ipaddress.IPv6Network(n["docker"]["ip_range6"]) for n in spec["networks"]
              if (n.get("docker") or {}).get("ip_range6")}
    result, todo = {}, []
    for c in spec["containers"]:
        for itf in c["interfaces"]:
            if itf["network"] not in subnets:
                continue
            if itf.get("ip6"):
                result[(c["name"], itf["name"])] = ipaddress.IPv6Address(itf["ip6"])
                taken[itf["network"]].add(result[(c["name"], itf["name"])])
            else:
                todo.append((c, itf))

    def usable(net, addr):
        return addr is not None and addr in pools[net] and addr not in taken[net] and \
            not _reserved6(addr, subnets[net]) and not (net in docker and addr in docker[net])

    def keep(c, itf, addr):
        result[(c["name"], itf["name"])] = addr
        taken[itf["network"]].add(addr)

    rest = []
    for c, itf in todo:
        leased = leases.get(itf["network"], {}).get(lease_key6(c["name"], itf["name"]))
        addr = ipaddress.IPv6Address(leased) if leased else None
        if usable(itf["network"], addr):
            keep(c, itf, addr)
        else:
            rest.append((c, itf))
    rest2 = []
    for c, itf in rest:
        net = itf["network"]
        link = endpoint_peer(current, itf["host_ifname"], c.get("netns") or c.get("docker"))[1]
        found = None
        for cidr in (link or {}).get("addresses6", []):
            a, _sep, plen = cidr.partition("/")
            if int(plen) == subnets[net].prefixlen and usable(net, ipaddress.IPv6Address(a)):
                found = ipaddress.IPv6Address(a)
                break
        if found is not None:
            keep(c, itf, found)
        else:
            rest2.append((c, itf))
    cursors = {}
    for c, itf in rest2:
        net = itf["network"]
        pool = pools[net]
        start = cursors.get(net, int(pool.network_address))
        addr = None
        for value in range(start, int(pool.broadcast_address) + 1):
            if usable(net, ipaddress.IPv6Address(value)):
                addr = ipaddress.IPv6Address(value)
                break
        if addr is None:
            raise ApplyError("networks.%s: no free IPv6 address left in %s on host %s for containers.%s interface %s"
                             % (net, pool, spec["host"], c["name"], itf["name"]))
        cursors[net] = int(addr) + 1
        keep(c, itf, addr)
    new_leases = {}
    for c in spec["containers"]:
        for itf in c["interfaces"]:
            if itf["network"] in subnets and not itf.get("ip6"):
                new_leases.setdefault(itf["network"], {})[lease_key6(c["name"], itf["name"])] = \
                    str(result[(c["name"], itf["name"])])
    return result, new_leases
