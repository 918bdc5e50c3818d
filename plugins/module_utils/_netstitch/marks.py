"""Ownership marks: how netstitch recognises what it made, in one place. Only objects carrying one of these marks
are ever changed or removed; everything else on a host is someone else's.

- interfaces: the alias (IFLA_IFALIAS) starts with ``ALIAS_PREFIX``; and from the very request that creates them, the
  link group ``MARK_GROUP`` (the kernel takes no alias in a create request, so the alias needs a second one: a link
  with this group and no alias is one netstitch made and was stopped before naming; the next run names it);
- routes: the route protocol ``ROUTE_PROTO``;
- nftables: the tables ``inet netstitch`` and ``bridge netstitch``;
- Docker networks: the labels ``LABEL_HOST`` and ``LABEL_NETWORK``;
- DOCKER-USER: rules whose comment starts with ``DOCKER_USER_MARK``;
- hosts files: the block between ``HOSTS_BEGIN`` and ``HOSTS_END``;
- network namespaces: the list in the host's state file (see host.statefile);
- Docker plugin endpoints: veths whose alias starts with ``PLUGIN_VETH_PREFIX`` (netstitch's, made by
  `netstitch plugin` for Docker, never planned by an apply: see plugin/).
"""

ALIAS_PREFIX = "netstitch "   # IFLA_IFALIAS of every interface netstitch creates
MARK_GROUP = 0x6e7374   # IFLA_GROUP of every link netstitch creates (below 1<<24: never a batch removal's group)
ROUTE_PROTO = 159      # rtm_protocol of the routes netstitch adds (routed overlays)
NFT_TABLE = "netstitch"
NFT_FAMILY = "inet"    # the usual family of netstitch's table; "bridge" only where bridged traffic skips inet
LABEL_HOST = "netstitch.host"
LABEL_NETWORK = "netstitch.network"
DOCKER_USER_CHAIN = "DOCKER-USER"
DOCKER_USER_MARK = "netstitch"
HOSTS_BEGIN = "# BEGIN netstitch (managed: links of this container)"
HOSTS_END = "# END netstitch"
PLUGIN_VETH_PREFIX = ALIAS_PREFIX + "veth plugin:"


def owned(link):
    """Whether an interface (as the netlink driver reads it) is netstitch's: its alias says so, or (a run stopped
    between creating and naming it) it has the creation mark and no alias."""
    if not link:
        return False
    alias = link.get("alias")
    return (alias or "").startswith(ALIAS_PREFIX) or (not alias and link.get("group") == MARK_GROUP)


def alias_text(link):
    """The part of an owned interface's alias after the prefix ("bridge front", "veth web/eth0 front"), or a note
    when it has no alias yet."""
    alias = link.get("alias") or ""
    return alias[len(ALIAS_PREFIX):] if alias.startswith(ALIAS_PREFIX) else "made by netstitch, not yet named"


def bridge_alias(network):
    return "%sbridge %s" % (ALIAS_PREFIX, network)


def vxlan_alias(network):
    return "%svxlan %s" % (ALIAS_PREFIX, network)


def tap_alias(network):
    return "%stap %s" % (ALIAS_PREFIX, network)


def veth_alias(container, ifname, network):
    return "%sveth %s/%s %s" % (ALIAS_PREFIX, container, ifname, network)


def tenant_alias(tenant, network=None):
    """A tenant router namespace's veth: its leg on a network, or (no network) its uplink."""
    return "%stenant %s %s" % (ALIAS_PREFIX, tenant, "leg %s" % network if network else "uplink")


def macvlan_alias(container, ifname, network):
    return "%smacvlan %s/%s %s" % (ALIAS_PREFIX, container, ifname, network)


def plugin_veth_alias(endpoint, network):
    return "%s%s/eth %s" % (PLUGIN_VETH_PREFIX, endpoint, network)


def plugin_made(link):
    """Whether an interface is a Docker plugin endpoint's: netstitch's, but never planned by an apply."""
    return (link.get("alias") or "").startswith(PLUGIN_VETH_PREFIX)


def docker_network_owned(have, host):
    """Whether a Docker network (as kinds.docker_network.view gives it) is netstitch's on this host."""
    labels = have.get("labels") or {}
    return labels.get(LABEL_HOST) == host and LABEL_NETWORK in labels
