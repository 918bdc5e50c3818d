# -*- coding: utf-8 -*-
# Copyright: netstitch contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names, helpers and the failure type the Docker plugin's protocol core shares (pure)."""

import ipaddress

ADDRESS_SPACE = "netstitch"
GATEWAY_KEY = "com.docker.network.gateway"
OPT_NETWORK = "netstitch.network"
GENERIC = "com.docker.network.generic"
INTERNAL = "com.docker.network.internal"
PORTMAP = "com.docker.network.portmap"
REQUEST_TYPE = "RequestAddressType"
PLUGIN_CONTAINER = "plugin:"     # the container name plugin endpoints carry in the apply's published ports
PROTOCOLS = {6: "tcp", 17: "udp"}

IPAM_METHODS = ("GetCapabilities", "GetDefaultAddressSpaces", "RequestPool", "ReleasePool", "RequestAddress",
                "ReleaseAddress")
NET_METHODS = ("GetCapabilities", "CreateNetwork", "DeleteNetwork", "AllocateNetwork", "FreeNetwork",
               "CreateEndpoint", "DeleteEndpoint", "EndpointOperInfo", "Join", "Leave",
               "ProgramExternalConnectivity", "RevokeExternalConnectivity", "DiscoverNew", "DiscoverDelete")


def empty_state():
    """The plugin's state; "leases6" (its IPv6 leases, apart from the IPv4 ones) appears with the first one."""
    return {"networks": {}, "endpoints": {}, "pools": {}, "leases": {}}


def host_ifname(eid):
    return "nsp" + eid[:11]


def moved_ifname(eid):
    """The end Docker moves into the container (and renames eth<N>)."""
    return "nsq" + eid[:11]


def mac_of(address):
    """The endpoint MAC derived from its IPv4 address: locally administered 0a:58 + the four address bytes (stable
    for a fixed --ip, readable in an FDB dump)."""
    ip = ipaddress.IPv4Address(address.split("/")[0])
    return "0a:58:" + ":".join("%02x" % b for b in ip.packed)


class Fail(Exception):
    """A call that fails with a message for the user (the response carries it as Err or Error)."""


class Result(object):
    def __init__(self, response, actions=(), state=None, status=200):
        self.response = response
        self.actions = list(actions)
        self.state = state
        self.status = status


def net_of(view, name):
    return view["networks"].get(name)


def names_of(view):
    return ", ".join("%s %s" % (n, view["networks"][n]["subnet"] or "%s (IPv6-only)" % view["networks"][n].get("subnet6"))
                     for n in sorted(view["networks"])) or "none"


def pool_id(network, cidr):
    return "%s/%s/%s" % (ADDRESS_SPACE, network, cidr)


def parse_pool_id(pid):
    parts = (pid or "").split("/")
    if len(parts) != 4 or parts[0] != ADDRESS_SPACE:
        return None
    return parts[1]


def pool_v6(pid):
    """Whether a pool id is an IPv6 pool's (its CIDR holds a colon)."""
    return ":" in (pid or "").partition("/")[2]


def canon6(text):
    """An IPv6 address (a prefix length ignored) in canonical form, so a spelling never makes another lease."""
    try:
        return str(ipaddress.IPv6Address((text or "").split("/")[0]))
    except ValueError:
        return text


def canon_net(text):
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except (ValueError, TypeError):
        return text


def short(x):
    return (x or "")[:12]
