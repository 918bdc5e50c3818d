"""Actions: what a host must do, as plain dicts {"op": ..., "text": ..., fields}. Every operation is listed here,
with the driver that carries it out; the per-kind planners create actions only through ``act`` (which refuses an
unknown op) and the host dispatches them through this table.

The phases fix the order in which the kinds' actions run (see planner.plan).
"""

from typing import Any, Dict, List

# op -> driver (host.machine.Host.drivers)
OPS = {
    # netlink: namespaces, links, addresses, routes, neighbours, FDB, sysctls
    "sysctl_set": "netlink",
    "netns_add": "netlink",
    "netns_del": "netlink",
    "netns_clear": "netlink",       # what an interrupted create or removal left at /run/netns/NAME (an empty file)
    "bridge_add": "netlink",
    "veth_add": "netlink",
    "vxlan_add": "netlink",
    "link_set": "netlink",
    "link_del": "netlink",
    "link_del_many": "netlink",     # made by host.reconcile from a run of link_del (one kernel batch)
    "macvlan_add": "netlink",       # a container interface directly on a host interface's segment (kinds.macvlan)
    "port_attach": "netlink",       # an existing interface netstitch did not make onto a bridge (kinds.attach)
    "port_release": "netlink",      # and off it again (nomaster): the interface itself is never deleted
    "addr_add": "netlink",
    "addr_del": "netlink",
    "route_replace": "netlink",     # a container's default route
    "route_del_default": "netlink",
    "route_add_ns": "netlink",      # a container's route to the rest of a routed overlay
    "route_del_ns": "netlink",
    "route_add": "netlink",         # the host's route to another host's slice (routed overlay)
    "route_del": "netlink",
    "fdb_add": "netlink",
    "fdb_del": "netlink",
    "neigh_replace": "netlink",
    "neigh_del": "netlink",
    # tinc: key, configuration files, daemon
    "tinc_keygen": "tinc",
    "tinc_write": "tinc",
    "tinc_start": "tinc",
    "tinc_reload": "tinc",
    "tinc_stop": "tinc",
    # Docker Engine: networks netstitch offers
    "docker_net_create": "docker",
    "docker_net_recreate": "docker",
    "docker_net_remove": "docker",
    # files and Docker's firewall
    "hosts_write": "files",
    "docker_hosts_write": "files",  # the block in a Docker container's hosts file (kinds.docker_hosts)
    # name service (kinds.dns): dnsmasq per network, resolv.conf of namespace containers
    "dns_write": "dns",
    "dns_stop": "dns",
    "resolv_write": "dns",
    # BGP announcements of routed gateways (kinds.bgp): BIRD's configuration and daemon
    "bgp_write": "bgp",
    "bgp_stop": "bgp",
    # a tenant's router namespace (kinds.tenant): its own nft table, one transaction in that namespace
    "tenant_nft": "nft",
    "docker_user_add": "iptables",
    "docker_user_del": "iptables",
}

# fdb_add with this MAC is a flood entry (head-end replication to a peer): appended, as one of several per device
ZERO_MAC = "00:00:00:00:00:00"

# the order of a plan: each kind puts its actions into phases; within a phase, kinds in planner.KINDS order
PHASES = (
    "docker_remove",    # Docker networks that go, while their bridges still exist
    "pre",              # sysctls, namespaces
    "replace",          # links that must be made anew (changed VXLAN identity, broken veth pair)
    "prune",            # owned ports no longer wanted (veths, VXLAN devices), by name: they free bridge ports
    "bridges",
    "overlays",         # VXLAN devices and FDB, routed routes, tinc
    "veths",            # host ends of the containers' veths
    "containers",       # container ends: link, addresses, routes, neighbours
    "stop",             # tinc instances no longer wanted
    "post",             # bridges and namespaces no longer wanted
    "docker_create",    # Docker networks made or re-made once their bridges exist
    "files",            # hosts files (namespaces' and Docker containers')
    "firewall",         # DOCKER-USER
)


class Plan(object):
    """The actions of a host, collected by phase while the kinds are diffed, and the conflicts (when there are any,
    nothing may be applied)."""

    def __init__(self):
        self.phases = {p: [] for p in PHASES}
        self.conflicts = []

    def add(self, phase, action):
        self.phases[phase].append(action)

    def conflict(self, text):
        self.conflicts.append(text)

    def actions(self):
        out = []
        for p in PHASES:
            # ports go in name order whichever kind they are (the removal of one frees the way for another)
            out += sorted(self.phases[p], key=lambda a: a["name"]) if p == "prune" else self.phases[p]
        return out


def act(op: str, text: str, **fields: Any) -> Dict[str, Any]:
    """An action: op, a human text, and the fields its driver needs."""
    if op not in OPS:
        raise ValueError("unknown action op %r (every op is listed in actions.OPS)" % op)
    fields["op"] = op
    fields["text"] = text
    return fields


def ops_of(driver: str) -> List[str]:
    return sorted(op for op, d in OPS.items() if d == driver)


def fmt_changes(changes):
    def one(k, v):
        if k == "up":
            return "up"
        if k == "hairpin":
            return "hairpin %s" % ("on" if v else "off")
        return "%s %s" % (k, v)
    return ", ".join(one(k, v) for k, v in sorted(changes.items()))


def port_changes(have, master, mtu, alias, hairpin=None):
    """What to set on an existing port of a bridge (veth host end, overlay device) to match the plan (``hairpin``:
    the port's hairpin mode, None: not netstitch's concern)."""
    changes = {}
    if hairpin is not None and bool(have.get("hairpin")) != hairpin:
        changes["hairpin"] = hairpin
    if have.get("master") != master:
        changes["master"] = master
    if have["mtu"] != mtu:
        changes["mtu"] = mtu
    if have.get("alias") != alias:
        changes["alias"] = alias
    if not have["up"]:
        changes["up"] = True
    return changes


def v4(addrs):
    return sorted(a for a in addrs if ":" not in a)
