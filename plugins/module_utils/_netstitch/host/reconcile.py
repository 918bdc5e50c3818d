"""Reconcile this host with its spec: lock, read, compute (planner), execute, verify.

Reads the kernel with a constant number of dumps per namespace, writes nothing when nothing differs (the drivers
count every write), serialises concurrent applies on a host with a lock, and verifies afterwards by reading back and
planning again: a non-empty second plan is a failure that names what still differs.
"""

import copy
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import planner, summary
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.hostspec import version_problem
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.lock import LOCK_TIMEOUT, HostLock
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import Host, namespaces, resolve_docker
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.tinc import merge_peer_keys
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside as plugin_state

VERIFY_ATTEMPTS = 4


def apply(spec, check_mode=False, state_dir=DEFAULT_STATE_DIR, lock_timeout=LOCK_TIMEOUT, host=None, peers=None,
          probe_peers=True, docker_force=False):
    """Reconcile this host with its spec. Returns a result dict (changed, actions, writes, endpoints, diff).
    ``peers`` = {host: facts from prepare()} when the spec needs them (tinc keys, addresses of linked containers).
    ``docker_force``: re-create or remove Docker networks even while containers are connected to them."""
    t0 = time.monotonic()
    check_version(spec)
    spec = copy.deepcopy(spec)
    warnings = merge_peer_keys(spec, peers)
    own = host is None
    host = host or Host()
    try:
        with HostLock(state_dir, spec["host"], lock_timeout) as lock:
            hstate = HostState(state_dir, spec["host"])
            run_spec, dwarn = resolve_docker(host, spec, hstate.spec)
            warnings += dwarn
            current = host.read(run_spec, hstate)
            t_read = time.monotonic() - t0
            with plugin_state.lease_lock(state_dir, spec["host"]):
                # the short lock the Docker plugin takes as well: leases are decided and recorded under it, with the
                # plugin's leases as they are now
                current["docker_plugin"] = plugin_state.load(state_dir, spec["host"])
                plan = planner.compute(run_spec, current, hstate.leases, peers, docker_force)
                if not check_mode and not plan.conflicts and plan.leases != hstate.leases:
                    hstate.leases = plan.leases
                    hstate.save()
            warnings += plan.warnings
            if plan.conflicts:
                raise ApplyError("nothing was changed on host %s because of %d conflict%s:\n  - %s" % (
                    spec["host"], len(plan.conflicts), "" if len(plan.conflicts) == 1 else "s",
                    "\n  - ".join(plan.conflicts)))
            texts = [a["text"] for a in plan.actions] + plan.nft_texts
            result = {
                "changed": bool(texts),
                "actions": texts,
                "endpoints": summary.endpoints(plan.desired),
                "diff": {"before": summary.view(current=current), "after": summary.view(desired=plan.desired)},
            }
            if not check_mode:
                _execute(host, hstate, plan, spec, peers)
                if texts:
                    _verify(host, run_spec, hstate, current, plan.actions, peers)
            if probe_peers:
                warnings += _probe_peers(spec)
            result["writes"] = host.writes
            result["warnings"] = warnings
            result["timing"] = {"read": round(t_read, 4), "total": round(time.monotonic() - t0, 4),
                                "lock_wait": round(lock.waited, 4)}
            return result
    finally:
        if own:
            host.close()


def check_version(spec):
    """Refuse a host spec of another format version, saying so (before anything is read or changed)."""
    problem = version_problem(spec)
    if problem:
        raise ApplyError("host %s: %s" % (spec.get("host") if isinstance(spec, dict) else "?", problem))


def _execute(host, hstate, plan, spec, peers):
    try:
        for a in batched(plan.actions):
            host.execute(a)
            if a["op"] == "netns_add":
                hstate.owned_netns.add(a["netns"])
            elif a["op"] == "netns_del":
                hstate.owned_netns.discard(a["netns"])
    finally:
        hstate.save()   # namespaces made before a failing action are netstitch's: record them anyway
    hstate.leases = plan.leases
    hstate.spec = spec
    hstate.peers = peers
    hstate.save()
    host.nft.apply(plan.nft_cmds)


def _probe_peers(spec):
    """Warn about overlay peers that do not answer on the underlay (the apply itself never depends on them)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.underlay import unreachable
    peers = {}
    for n in spec["networks"]:
        o = n.get("overlay") or {}
        for p in o.get("peers", []) + o.get("routes", []):
            addr = p.get("underlay") or p.get("via")
            peers.setdefault(addr, set()).add((p["host"], n["name"]))
    down = unreachable(peers)
    return ["peer %s (%s) does not answer on the underlay; networks %s will reach it once it is back"
            % (", ".join(sorted({h for h, _net in peers[a]})), a, ", ".join(sorted({n for _host, n in peers[a]})))
            for a in sorted(down)]


def batched(actions):
    """The actions as they are executed: a run of several link removals in the host namespace becomes one
    ``link_del_many`` action, which the netlink driver carries out as one kernel batch (see there)."""
    out, run = [], []
    for a in list(actions) + [None]:
        if a is not None and a["op"] == "link_del" and a.get("ns") is None:
            run.append(a)
            continue
        if len(run) > 1:
            out.append({"op": "link_del_many", "ns": None, "actions": run,
                        "text": "remove %d links: %s" % (len(run), ", ".join(x["name"] for x in run))})
        else:
            out += run
        run = []
        if a is not None:
            out.append(a)
    return out


def _touched_namespaces(actions):
    out = set()
    for a in actions:
        if a.get("ns"):
            out.add(a["ns"])
        if a.get("peer"):
            out.add(a["peer"]["netns"])
        if a["op"] == "netns_add":
            out.add(a["netns"])
    return out


def _verify(host, spec, hstate, before, actions, peers=None):
    """Read back (the host and the namespaces the actions touched) and plan again until nothing is left to do."""
    touched = sorted(_touched_namespaces(actions) & set(namespaces(spec)))
    for attempt in range(VERIFY_ATTEMPTS):
        fresh = host.read(spec, hstate, touched)
        merged = copy.copy(fresh)
        merged["netns"] = dict(before.get("netns") or {})
        merged["netns"].update(fresh["netns"])
        again = planner.compute(spec, merged, hstate.leases, peers)
        if not again.pending:
            return
        time.sleep(0.05 * (attempt + 1))
    raise ApplyError("verification failed on host %s: after applying, the kernel still differs from the plan:\n  - %s"
                     % (spec["host"], "\n  - ".join(again.pending)))
