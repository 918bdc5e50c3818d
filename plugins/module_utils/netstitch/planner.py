"""The pure core of a host: a host spec and the host's current state in, everything the host must do out.

    spec + current + leases (+ peers' facts) --ipam--> addresses
        --kinds.*.desired--> desired state --kinds.*.diff--> actions (by phase) + conflicts
        --kinds.nft--> one nftables transaction

Nothing here touches a host or imports a driver. Each resource kind (kinds/) owns its desired state, its diff
against the current state and the actions it needs; this module only composes them in order (actions.PHASES).
"""

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import ipam
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.actions import Plan
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.kinds import bridge, docker_network, docker_user, endpoint, hosts_file, netns, nft, routed, sysctl, tinc, vxlan
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.links import resolve_links


def desired_state(spec, addresses):
    """Resolve a host spec into the desired state of the host. ``addresses`` maps (container, ifname) to an
    IPv4Address (from ipam.allocate)."""
    return {
        "host": spec["host"],
        "bridges": bridge.desired(spec),
        "endpoints": endpoint.desired(spec, addresses),
        "netns": netns.desired(spec),
        "vxlans": vxlan.desired(spec),
        "routes": routed.desired(spec),
        "tincs": tinc.desired(spec),
        "sysctl": sysctl.desired(spec),
    }


def plan(desired, current, adopt=(), lingering=()):
    """The kernel-side kinds: (actions, conflicts). Conflicts are strings; when there are any, nothing may be
    applied. ``adopt``: unmarked bridges that are netstitch's anyway (kinds.docker_network.adoptable_bridges);
    ``lingering``: veths of stopped Docker containers that the kernel is about to remove."""
    out = Plan()
    _kernel(desired, current, out, adopt, lingering)
    return out.actions(), out.conflicts


def _kernel(desired, current, out, adopt=(), lingering=()):
    sysctl.diff(desired, current, out)
    bridge.diff(desired, current, out, adopt=adopt)
    vxlan.diff(desired, current, out)
    routed.diff(desired, current, out)
    tinc.diff(desired, current, out)
    endpoint.diff(desired, current, out, lingering=lingering)
    netns.diff(desired, current, out)


class Computed(object):
    """What compute() works out for a host: desired state, new leases, actions (netlink, files, tinc, Docker), the
    nft transaction, its readable lines, conflicts and warnings."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def pending(self):
        return [a["text"] for a in self.actions] + self.nft_texts + self.conflicts


def compute(spec, current, leases, peers=None, docker_force=False):
    """Pure: everything the host needs to do for a spec against a current state. ``leases``: the host's address
    leases; ``peers``: {host: facts from prepare}; ``docker_force``: re-create or remove Docker networks even
    while containers are connected."""
    have_docker = current.get("docker_networks")
    extra = docker_network.reserved_by_docker(spec, have_docker, leases) if have_docker else None
    addresses, new_leases = ipam.allocate(spec, current, leases, extra)
    desired = desired_state(spec, addresses)
    adopt = docker_network.adoptable_bridges(spec, have_docker, current.get("links")) \
        if have_docker is not None else ()
    lingering = {i["host_ifname"] for c in spec["containers"] if c.get("absent") for i in c["interfaces"]}
    out = Plan()
    _kernel(desired, current, out, adopt, lingering)
    if have_docker is not None:
        docker_network.diff(spec, have_docker, out, docker_force)
    links, names, warnings = resolve_links(spec, addresses, peers)
    hosts_file.diff(desired, names, current, out)
    docker_user.diff(desired, current, out)
    tables = nft.desired_tables(spec, addresses, links, sysctl.bridge_nf(current))
    nft_cmds, nft_texts = nft.diff_all(tables, current.get("nft"))
    return Computed(desired=desired, leases=new_leases, actions=out.actions(), nft_cmds=nft_cmds,
                    nft_texts=nft_texts, conflicts=out.conflicts, warnings=warnings)
