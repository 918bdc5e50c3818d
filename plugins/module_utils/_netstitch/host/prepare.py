"""The first phase of a run, on each host that other hosts need facts from (compile says when): this host's
allocated addresses, reserved in its lease file, and its tinc public keys (generated here if missing; private keys
never leave the host)."""

from typing import Any, Dict, Optional, Tuple

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import ipam
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.lock import LOCK_TIMEOUT, HostLock, NoLock
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import Host, resolve_docker
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.reconcile import check_version
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import routed, tinc
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import core as plugin_core
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside as plugin_state


def prepare(spec: Dict[str, Any], check_mode: bool = False, state_dir: str = DEFAULT_STATE_DIR,
            lock_timeout: float = LOCK_TIMEOUT, host: Optional[Host] = None) -> Tuple[Dict[str, Any], bool]:
    """Returns (facts, changed): facts = {"addresses": {"container/ifname": address}, "tinc": {network: key}}, and
    "addresses6" (the same of IPv6) when the host has dual-stack networks."""
    check_version(spec)
    own = host is None
    host = host or Host()
    try:
        with HostLock(state_dir, spec["host"], lock_timeout, create=not check_mode):
            hstate = HostState(state_dir, spec["host"])
            run_spec = resolve_docker(host, spec, hstate.spec)[0]
            current = host.read(run_spec, hstate)
            link_local = _underlay_link_local(host, spec, current)
            with plugin_state.lease_lock(state_dir, spec["host"]):      # addresses the Docker plugin gave stay its own
                extra = plugin_core.reserved(plugin_state.load(state_dir, spec["host"]))
                addresses, leases = ipam.allocate(run_spec, current, hstate.leases, extra)
                # the IPv6 leases too (beside the IPv4 ones, as apply keeps them): never dropped between the phases
                addresses6, leases6 = ipam.allocate6(run_spec, current, hstate.leases)
                for net, ls in leases6.items():
                    leases.setdefault(net, {}).update(ls)
                changed = leases != hstate.leases
                if not check_mode:
                    hstate.leases = leases
                    hstate.save()
            keys, kchanged = tinc_keys(spec, check_mode, state_dir, lock=False)
    finally:
        if own:
            host.close()
    facts = {"addresses": {"%s/%s" % k: str(v) for k, v in sorted(addresses.items())}, "tinc": keys}
    if addresses6:
        # IPv6 addresses on dual-stack networks (an overlay's links between hosts hold for IPv6 with them)
        facts["addresses6"] = {"%s/%s" % k: str(v) for k, v in sorted(addresses6.items())}
    if link_local is not None:
        facts["underlay_link_local"] = link_local     # the next hop of this host's IPv6 slices (kinds.routed)
    return facts, changed or kchanged


def _underlay_link_local(host, spec, current):
    """The kernel's IPv6 link-local address of the interface holding this host's underlay address, when a routed
    overlay routes the IPv6 slices via link-local next hops (over an IPv4 underlay); else None."""
    for n in spec["networks"]:
        o = n.get("overlay") or {}
        if any(r["via"] is None for r in o.get("routes6", [])):
            dev = routed.uplink(current.get("links", {}), o["local"])
            return host.netlink.link_local(dev) if dev else None
    return None


def tinc_keys(spec: Dict[str, Any], check_mode: bool = False, state_dir: str = DEFAULT_STATE_DIR,
              lock: bool = True) -> Tuple[Dict[str, Optional[str]], bool]:
    """Make sure this host has a tinc key pair for each of its tinc networks; return (public keys, changed)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.tinc import Tinc, public_key
    t = Tinc(state_dir, spec["host"])
    keys, changed = {}, False
    with (HostLock(state_dir, spec["host"], create=not check_mode) if lock else NoLock()):
        for net in tinc.networks(spec):
            if check_mode:
                keys[net] = public_key(t.confdir(net), spec["host"])
                changed = changed or keys[net] is None
            else:
                keys[net], gen = t.ensure_key(net)
                changed = changed or gen
    return keys, changed
