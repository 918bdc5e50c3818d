"""The validated, normalised topology: plain objects with defaults filled in. Built only by validate.load()."""

import hashlib
import ipaddress

IFNAMSIZ = 15            # usable characters of a Linux interface name
BRIDGE_MAX_PORTS = 1024  # BR_MAX_PORTS in the kernel
MTU_MIN, MTU_MAX = 68, 65535
DEFAULT_MTU = 1500
VXLAN_PORT = 4789
VNI_MAX = 16777215
# bytes an overlay adds to every frame: VXLAN = outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14;
# tinc (switch mode, UDP) = outer IPv4 20 + UDP 8 + seqno 4 + inner Ethernet 14 + MAC 4 + cipher block padding up to 8,
# plus room for its own PMTU probing, rounded up
OVERHEAD = {"vxlan": 50, "routed": 0, "tinc": 80}
OVERHEAD_IPV6 = 20       # an IPv6 underlay: the outer IPv6 header is 40 bytes, not 20 (VXLAN 70, tinc 100)


def overhead(kind, underlay_version=4):
    """Bytes an overlay of ``kind`` adds to every frame over an underlay of that IP version."""
    return OVERHEAD[kind] + (OVERHEAD_IPV6 if underlay_version == 6 and OVERHEAD[kind] else 0)


TINC_PORT_BASE = 6550
MAX_PORT_RANGE = 1024     # ports in one published range (each is one map element)
ROUTER_PREFIX = "nsrt-"   # a tenant's router namespace on a host: this prefix (hosts.H.router_netns_prefix) + its name
ALIAS_PREFIX = "netstitch "   # IFLA_IFALIAS of every interface netstitch creates


def _digest(*parts):
    return hashlib.sha1("/".join(parts).encode("utf-8")).hexdigest()


def default_bridge_name(network):
    return "nsbr-%s" % network


def default_ifname(kind, index):
    """Name of a container's interface inside it: eth<index>; on a Docker container eth<index + 1>, as pipework
    does, so that Docker's own eth0 (any container not started with --network none has one) never clashes."""
    return "eth%d" % (index + 1 if kind == "docker" else index)


def default_host_ifname(container, ifname):
    """Host end of a container's veth: 'ns' + 10 hex digits, stable for (container, interface name)."""
    return "ns" + _digest("veth", container, ifname)[:10]


def derived_mac(*parts):
    """A stable, locally administered unicast MAC from the given identity."""
    d = _digest("mac", *parts)
    first = (int(d[0:2], 16) & 0xFC) | 0x02
    return ":".join(["%02x" % first] + [d[i:i + 2] for i in range(2, 12, 2)])


class Host(object):
    def __init__(self, name, underlay=None, underlay_mtu=DEFAULT_MTU, docker_host=None, docker_plugin=None):
        self.name = name
        self.underlay = underlay            # ipaddress.IPv4Interface or IPv6Interface, or None
        self.underlay_mtu = underlay_mtu
        self.docker_host = docker_host      # Docker Engine API address, or None (DOCKER_HOST / the default socket)
        self.docker_plugin = docker_plugin or "netstitch"      # the name netstitch's Docker plugin serves under
        self.bgp = None                     # (asn, [(neighbor address, asn)]): a BGP speaker (kinds.bgp), or None
        self.router_prefix = ROUTER_PREFIX  # the router namespace of tenant T here: <router_prefix>T (kinds.tenant)


def default_slice_len(subnet):
    """IPv4: the larger of /24 and the subnet's prefix + 4; IPv6 (the subnet6 of an IPv6-only overlay): + 4."""
    if subnet.version == 6:
        return subnet.prefixlen + 4
    return max(24, subnet.prefixlen + 4)


class Overlay(object):
    def __init__(self, type, vni=None, port=None, learning=False, device=None, slice_len=None, slices=None):
        self.type = type                    # vxlan | routed | tinc
        self.vni = vni
        self.port = port
        self.learning = learning
        self.device = device                # overlay device on each host (vxlan, tinc); None for routed
        self.slice_len = slice_len
        self.explicit = slices or {}        # host -> IPv4Network given in the topology
        self.slices = {}                    # host -> IPv4Network, filled for every host carrying the network
        #                                     (IPv6Network on an IPv6-only network: then the same as slices6)
        self.slices6 = {}                   # host -> IPv6Network: the same place in the subnet6 (dual stack)


class Network(object):
    def __init__(self, name, bridge, subnet, gateway, mtu, masquerade, internal, hosts, overlay=None):
        self.name = name
        self.bridge = bridge
        self.subnet = subnet                # ipaddress.IPv4Network (None: an IPv6-only network, subnet6 alone)
        self.gateway = gateway              # ipaddress.IPv4Address (None for routed overlays: one per host; IPv6-only)
        self.mtu = mtu
        self.masquerade = masquerade
        self.internal = internal
        self.hosts = hosts                  # set of host names that carry the network
        self.overlay = overlay              # Overlay or None (a host-local network)
        self.isolated = False               # containers reach each other only through links
        self.dns = False                    # a name service (kinds.dns)
        self.docker = None                  # DockerOffer: the network is offered to Docker on its hosts
        self.subnet6 = None                 # ipaddress.IPv6Network (dual stack) or None
        self.gateway6 = None                # ipaddress.IPv6Address on the bridge when subnet6 is set
        self.masquerade6 = False            # NAT66 of outbound IPv6 (default: routed)
        self.attach = []                    # [Attachment]: existing host interfaces enslaved to its bridge
        self.macvlan = None                 # Macvlan: containers directly on a physical segment (no bridge)
        self.inbound = None                 # [Allow]: a routed gateway (the outside routes in, no NAT), or None
        self.announce = False               # and its routes announced by BGP from its hosts (kinds.bgp)
        self.tenant = None                  # the name of the tenant it belongs to (tenants.T.networks), or None

    @property
    def v6only(self):
        """An IPv6-only network: subnet6 without subnet (its overlay slices are IPv6 ones, in the subnet6)."""
        return self.subnet is None

    @property
    def routed(self):
        return self.overlay is not None and self.overlay.type == "routed"

    @property
    def shared(self):
        """One address space across its hosts (a vxlan or tinc overlay, a macvlan segment): fixed addresses are
        reserved on every host."""
        return (self.overlay is not None and not self.routed) or self.macvlan is not None

    def pool(self, host):
        """Where ``host`` allocates addresses from: its slice of an overlay, its range of a macvlan segment (None:
        no range), else the whole subnet; None on an IPv6-only network (no IPv4 pool: see pool6)."""
        if self.v6only:
            return None
        if self.macvlan is not None:
            return self.macvlan.ranges.get(host)
        return self.overlay.slices[host] if self.overlay is not None else self.subnet

    def pool6(self, host):
        """Where ``host`` allocates IPv6 addresses from: its IPv6 slice of an overlay, else the whole subnet6."""
        return self.overlay.slices6[host] if self.overlay is not None else self.subnet6

    def offered_to_docker(self, host):
        return self.docker is not None and (self.docker.hosts is None or host in self.docker.hosts)

    def docker_range(self, host):
        """The block of ``host``'s pool that Docker allocates from (its ip_range), or None when not offered (or
        offered through netstitch's plugin, which allocates from the whole pool)."""
        if not self.offered_to_docker(host) or self.docker.driver == "netstitch":
            return None
        pool = self.pool(host)
        plen = self.docker.range_len if self.docker.range_len is not None else min(pool.prefixlen + 1, 32)
        size = 2 ** (32 - plen)
        return ipaddress.IPv4Network((int(pool.broadcast_address) + 1 - size, plen))

    def docker_range6(self, host):
        """The block of ``host``'s IPv6 pool that Docker allocates from (its IPv6 ip_range) on a dual-stack network
        offered to Docker's bridge driver, or None: a quarter of the pool that holds no reserved address (Docker
        does not know them; it hands out a range from its start): the third quarter, else the second (a tiny pool
        that has neither: None, and placement says so)."""
        if self.subnet6 is None or self.docker_range(host) is None or (
                self.overlay is not None and host not in self.overlay.slices6):
            return None
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_ipv6 import (
            reserved_count)
        pool = self.pool6(host)
        if pool.prefixlen > 126:
            return None
        quarter = pool.num_addresses // 4
        for index in (2, 1):
            block = ipaddress.IPv6Network((int(pool.network_address) + index * quarter, pool.prefixlen + 2))
            if reserved_count(block, self.segment6(host)) == 0:
                return block
        return None

    def segment(self, host):
        """The layer-2 subnet a container on ``host`` sees: its slice in routed mode, else the subnet (None on an
        IPv6-only network)."""
        return self.overlay.slices[host] if self.routed else self.subnet

    def gateway_on(self, host):
        return self.overlay.slices[host].network_address + 1 if self.routed else self.gateway

    def segment6(self, host):
        """The IPv6 subnet a container on ``host`` sees: its IPv6 slice in routed mode, else the subnet6."""
        return self.overlay.slices6[host] if self.routed else self.subnet6

    def gateway6_on(self, host):
        """The IPv6 gateway on ``host``'s bridge: in routed mode the second address of its IPv6 slice (the first is
        the slice's subnet-router anycast address), else the network's gateway6."""
        return self.overlay.slices6[host].network_address + 1 if self.routed else self.gateway6

    def bridge_mac(self, host):
        # unique per host: an overlay's bridges share one segment (and one gateway address)
        return derived_mac("bridge", self.name, host)


class Allow(object):
    """What may open connections into a routed gateway network (networks.N.inbound.allow)."""

    def __init__(self, source, protocol, ports):
        self.source = source                # ipaddress.IPv4Network or None (anywhere)
        self.protocol = protocol            # tcp | udp | any
        self.ports = ports                  # [(first, last)], empty = every port


class Macvlan(object):
    """A network put directly on a physical segment: macvlan interfaces of ``parent`` (issue 16, item 4)."""

    def __init__(self, parent, ranges):
        self.parent = parent                # the host interface on the segment
        self.ranges = ranges                # host -> IPv4Network it allocates from


class Attachment(object):
    """An existing interface of a host (a VM's tap, a NIC) that netstitch enslaves to a network's bridge there."""

    def __init__(self, host, interface, ip=None, mac=None):
        self.host = host
        self.interface = interface
        self.ip = ip                        # ipaddress.IPv4Address the machine behind it uses (kept out of IPAM)
        self.mac = mac                      # its MAC (static FDB on the other hosts of a vxlan overlay)


class DockerOffer(object):
    """A network offered to Docker: a Docker network of this name, bound to the network's bridge on each host."""

    def __init__(self, name, range_len=None, hosts=None, driver="bridge"):
        self.name = name
        self.driver = driver                # bridge: Docker's bridge driver on netstitch's bridge; netstitch: the plugin
        self.range_len = range_len          # prefix length of Docker's ip_range; None = the pool's upper half
        self.hosts = hosts                  # set of hosts where it is offered, or None: every host carrying it


class Interface(object):
    def __init__(self, index, network, name, host_name, ip, mac, default_route):
        self.index = index
        self.network = network
        self.name = name
        self.host_name = host_name
        self.ip = ip                        # ipaddress.IPv4Address or None (allocated on the host)
        self.mac = mac
        self.default_route = default_route
        self.default_route_soft = False     # implicit default of a Docker container: only while Docker gives none
        self.ip6 = None                     # ipaddress.IPv6Address (fixed) or None (allocated, or no subnet6)


class Publish(object):
    """One published port mapping (a range is expanded into one Publish per port)."""

    def __init__(self, host_ip, protocol, host_port, container_port, network):
        # ipaddress.IPv4Address, IPv6Address, "::" (every IPv6 address) or None (every address of the host: of
        # both families when the network is dual stack)
        self.host_ip = host_ip
        self.protocol = protocol
        self.host_port = host_port
        self.container_port = container_port
        self.network = network              # the container's network that receives it


class Container(object):
    def __init__(self, name, host, kind, netns, docker, interfaces, publish=(), expose=()):
        self.name = name
        self.expose = list(expose)          # [(protocol, first, last)] (Docker's EXPOSE)
        self.host = host
        self.kind = kind
        self.netns = netns
        self.docker = docker
        self.interfaces = interfaces
        self.publish = list(publish)

    def interface_on(self, network):
        for itf in self.interfaces:
            if itf.network == network:
                return itf
        return None


class Link(object):
    def __init__(self, index, client, server, network, protocol, ports, name):
        self.index = index
        self.client = client                # container name
        self.server = server                # container name, or None when the server is a whole network
        self.network = network              # the network the link runs on (shared by client and server)
        self.protocol = protocol            # tcp | udp | any
        self.ports = ports                  # [(first, last)], empty = every port
        self.name = name                    # hosts-file name on the client, or None


class Tenant(object):
    """A group of networks with a router namespace of its own on each host carrying one of them (tenants.T)."""

    def __init__(self, name, networks, connect, transit):
        self.name = name
        self.networks = networks            # [network names], as given
        self.connect = connect              # [(network, network)] sorted pairs that may talk
        self.transit = transit              # ipaddress.IPv4Network, a /30: host side .1, router side .2

    def uplink_host_name(self):
        """The host end of the router namespace's uplink veth."""
        return "nt" + _digest("tenant-uplink", self.name)[:10]


def router_netns(prefix, tenant):
    return prefix + tenant


def tenant_leg_name(tenant, network):
    """The host end of the veth between a tenant network's bridge and its router namespace."""
    return "nt" + _digest("tenant-leg", tenant, network)[:10]


class Topology(object):
    def __init__(self, hosts, networks, containers, links=(), tenants=None, chains=()):
        self.hosts = hosts                  # name -> Host (insertion order kept)
        self.networks = networks            # name -> Network
        self.containers = containers        # name -> Container
        self.links = list(links)
        self.tenants = tenants or {}        # name -> Tenant
        self.chains = list(chains)          # [Chain] in name order


class Chain(object):
    """A service chain (issue 16, item 2): traffic between two networks passes through service containers, in order,
    both ways."""

    def __init__(self, name, source, target, services, networks):
        self.name = name
        self.source = source                # the network whose traffic to ``target`` is steered ("from")
        self.target = target                # the network it goes to ("to")
        self.services = services            # [container name], in order from source to target
        self.networks = networks            # [network]: source, the middle networks, target (len(services) + 1)
        # [(container, network of its interface, network routed to, via container)]: the routes that steer it
        self.routes = []
