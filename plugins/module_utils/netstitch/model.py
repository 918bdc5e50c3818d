"""The validated, normalised topology: plain objects with defaults filled in. Built only by validate.load()."""

import hashlib

IFNAMSIZ = 15            # usable characters of a Linux interface name
BRIDGE_MAX_PORTS = 1024  # BR_MAX_PORTS in the kernel
MTU_MIN, MTU_MAX = 68, 65535
DEFAULT_MTU = 1500
ALIAS_PREFIX = "netstitch "   # IFLA_IFALIAS of every interface netstitch creates


def _digest(*parts):
    return hashlib.sha1("/".join(parts).encode("utf-8")).hexdigest()


def default_bridge_name(network):
    return "nsbr-%s" % network


def default_host_ifname(container, ifname):
    """Host end of a container's veth: 'ns' + 10 hex digits, stable for (container, interface name)."""
    return "ns" + _digest("veth", container, ifname)[:10]


def derived_mac(*parts):
    """A stable, locally administered unicast MAC from the given identity."""
    d = _digest("mac", *parts)
    first = (int(d[0:2], 16) & 0xFC) | 0x02
    return ":".join(["%02x" % first] + [d[i:i + 2] for i in range(2, 12, 2)])


class Host(object):
    def __init__(self, name, underlay=None, underlay_mtu=DEFAULT_MTU):
        self.name = name
        self.underlay = underlay            # ipaddress.IPv4Interface or None
        self.underlay_mtu = underlay_mtu


class Network(object):
    def __init__(self, name, bridge, subnet, gateway, mtu, masquerade, internal, hosts):
        self.name = name
        self.bridge = bridge
        self.subnet = subnet                # ipaddress.IPv4Network
        self.gateway = gateway              # ipaddress.IPv4Address
        self.mtu = mtu
        self.masquerade = masquerade
        self.internal = internal
        self.hosts = hosts                  # set of host names that carry the network
        self.bridge_mac = derived_mac("bridge", name)


class Interface(object):
    def __init__(self, index, network, name, host_name, ip, mac, default_route):
        self.index = index
        self.network = network
        self.name = name
        self.host_name = host_name
        self.ip = ip                        # ipaddress.IPv4Address or None (allocated on the host)
        self.mac = mac
        self.default_route = default_route


class Container(object):
    def __init__(self, name, host, kind, netns, docker, interfaces):
        self.name = name
        self.host = host
        self.kind = kind
        self.netns = netns
        self.docker = docker
        self.interfaces = interfaces


class Topology(object):
    def __init__(self, hosts, networks, containers):
        self.hosts = hosts                  # name -> Host (insertion order kept)
        self.networks = networks            # name -> Network
        self.containers = containers        # name -> Container
