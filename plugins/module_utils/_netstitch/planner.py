"""The pure core of a host: a host spec and the host's current state in, everything the host must do out.

    spec + current + leases (+ peers' facts) --ipam--> addresses
        --kinds.*.desired--> desired state --kinds.*.diff--> actions (by phase) + conflicts
        --kinds.nft--> one nftables transaction

Nothing here touches a host or imports a driver. Each resource kind (kinds/) owns its desired state, its diff
against the current state and the actions it needs; this module only lists the kinds and composes them.
"""

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe, ipam
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import Plan
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import attach, bgp, bridge, chain, dns
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import docker_network
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import docker_hosts, docker_user, endpoint
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import hosts_file, macvlan, netns, nft
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import routed, sysctl, tenant, tinc, vxlan
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.links import docker_names, resolve_links
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import core as plugin_core

# every kind that plans actions, in the order they are diffed: conflicts come in this order, and within a phase
# (actions.PHASES) so do the actions. A kind module has KEY (its part of the desired state, or None), desired(ctx)
# when KEY is set, and diff(desired_state, current, out, ctx).
KINDS = (sysctl, bridge, vxlan, routed, tinc, endpoint, chain, macvlan, attach, netns, tenant, docker_network, hosts_file,
         docker_hosts, dns, bgp, docker_user)


class Context(object):
    """What the kinds may need beyond the desired and current state of the host."""

    def __init__(self, spec, addresses=None, adopt=(), lingering=(), names=None, docker_force=False, peers=None,
                 docker_names=None, addresses6=None):
        self.spec = spec
        self.peers = peers or {}        # the other hosts' facts from prepare (kinds.dns: their addresses)
        self.addresses = addresses or {}
        self.addresses6 = addresses6 or {}  # (container, ifname) -> IPv6Address on dual-stack networks
        self.adopt = adopt              # unmarked bridges that are netstitch's anyway (made by Docker for it)
        self.lingering = lingering      # veths of stopped Docker containers that the kernel is about to remove
        self.names = names or {}        # hosts-file entries {netns: [[ip, name]]} (links.resolve_links)
        self.docker_names = docker_names or {}  # Docker clients' entries {container: [[ip, name]]} (links.docker_names)
        self.docker_force = docker_force


def desired_state(spec: Dict[str, Any], addresses: Dict[Tuple[str, str], Any],
                  peers: Optional[Dict[str, Any]] = None,
                  addresses6: Optional[Dict[Tuple[str, str], Any]] = None) -> Dict[str, Any]:
    """Resolve a host spec into the desired state of the host. ``addresses`` maps (container, ifname) to an
    IPv4Address (from ipam.allocate), ``addresses6`` to an IPv6Address (ipam.allocate6); ``peers``: the other
    hosts' facts (prepare)."""
    ctx = Context(spec, addresses, peers=peers, addresses6=addresses6)
    out = {"host": spec["host"]}
    for kind in KINDS:
        if kind.KEY:
            out[kind.KEY] = kind.desired(ctx)
    return out


def diff(desired: Dict[str, Any], current: Dict[str, Any], ctx: "Context") -> Tuple[List[dict], List[str]]:
    """Every kind's diff: (actions in order, conflicts). Conflicts are strings; when there are any, nothing may be
    applied."""
    out = Plan()
    for kind in KINDS:
        kind.diff(desired, current, out, ctx)
    return out.actions(), out.conflicts


def plan(desired: Dict[str, Any], current: Dict[str, Any]) -> Tuple[List[dict], List[str]]:
    """The diff of a desired state against a current state with nothing else known (no Docker, no links)."""
    return diff(desired, current, Context({"host": desired["host"]}))


class Computed(object):
    """What compute() works out for a host: desired state, new leases, actions (netlink, files, tinc, Docker), the
    nft transaction, its readable lines, conflicts and warnings."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def pending(self):
        return [a["text"] for a in self.actions] + self.nft_texts + self.conflicts

    @property
    def changes(self):
        """What the actions and the nft transaction change, in topology terms (see describe), worked out once."""
        if self._changes is None:
            try:
                self._changes = describe.changes(self.context, self.actions, self.tables, self.nft_current) \
                    if self.actions or self.nft_cmds else []
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                # describing must never stop a run: a shape describe does not know shows as the plan's own lines
                self._changes = [{"kind": "other", "name": t, "before": None, "after": []}
                                 for t in [a["text"] for a in self.actions] + self.nft_texts]
        return self._changes


def compute(spec: Dict[str, Any], current: Dict[str, Any], leases: Dict[str, Dict[str, str]],
            peers: Optional[Dict[str, Any]] = None, docker_force: bool = False,
            previous: Optional[Dict[str, Any]] = None) -> "Computed":
    """Pure: everything the host needs to do for a spec against a current state. ``leases``: the host's address
    leases; ``peers``: {host: facts from prepare}; ``docker_force``: re-create or remove Docker networks even
    while containers are connected; ``previous``: the spec applied last (names what is going, for ``changes``)."""
    have_docker = current.get("docker_networks")
    extra = docker_network.reserved_by_docker(spec, have_docker, leases) if have_docker else None
    extra6 = docker_network.reserved_by_docker6(spec, have_docker, leases) if have_docker else None
    plugin = current.get("docker_plugin")     # the Docker plugin's endpoints: owned, never planned
    if plugin:
        extra = plugin_core.reserved(plugin, extra)
        extra6 = plugin_core.reserved(plugin, extra6, "leases6")
    addresses, new_leases = ipam.allocate(spec, current, leases, extra)
    addresses6, leases6 = ipam.allocate6(spec, current, leases, extra6)
    for net, ls in leases6.items():
        new_leases.setdefault(net, {}).update(ls)
    desired = desired_state(spec, addresses, peers, addresses6)
    links, names, warnings = resolve_links(spec, addresses, peers, addresses6)
    if spec.get("chains"):
        warnings = warnings + chain.routes(spec, addresses, peers)[1]     # next hops no one could tell (kinds.chain)
    ctx = Context(spec, addresses, names=names, docker_force=docker_force, peers=peers, addresses6=addresses6,
                  docker_names=docker_names(spec, addresses, peers, addresses6),
                  adopt=docker_network.adoptable_bridges(spec, have_docker, current.get("links")) if have_docker
                  is not None else (),
                  lingering={i["host_ifname"] for c in spec["containers"] if c.get("absent") for i in c["interfaces"]})
    actions, conflicts = diff(desired, current, ctx)
    # the ports the plugin's endpoints publish are in netstitch's maps too (a new spec: the input stays as it is)
    nft_spec, nft_addresses = plugin_core.with_published(spec, addresses, plugin) if plugin else (spec, addresses)
    tables = nft.desired_tables(nft_spec, nft_addresses, links, sysctl.bridge_nf(current), addresses6,
                                sysctl.bridge_nf6(current))
    nft_cmds, nft_texts = nft.diff_all(tables, current.get("nft"))
    context = describe.Context(desired, current, spec=spec, previous=previous, addresses=addresses, leases=leases)
    return Computed(desired=desired, leases=new_leases, actions=actions, nft_cmds=nft_cmds, nft_texts=nft_texts,
                    conflicts=conflicts, warnings=warnings, context=context, tables=tables,
                    nft_current=current.get("nft"), _changes=None)
