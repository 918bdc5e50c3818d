"""Reconcile this host with its spec: lock, read, compute (planner), execute, verify.

Reads the kernel with a constant number of dumps per namespace, writes nothing when nothing differs (the drivers
count every write), serialises concurrent applies on a host with a lock, and verifies afterwards by reading back and
planning again: a non-empty second plan is a failure that names what still differs.
"""

import copy
import os
import time
from typing import Any, Dict, Optional

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe, planner, summary
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.hostspec import version_problem
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.lock import LOCK_TIMEOUT, HostLock
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import Host, namespaces, resolve_docker
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.tinc import merge_peer_keys

VERIFY_ATTEMPTS = 4


def empty_spec(host_name, previous=None):
    """The spec of a host with nothing on it (teardown): applying it removes everything netstitch owns there."""
    spec = {"version": (previous or {}).get("version", 1), "host": host_name, "networks": [], "containers": [],
            "publish": [], "links": []}
    if (previous or {}).get("docker_host"):
        spec["docker_host"] = previous["docker_host"]     # its Docker networks are on the engine it named
    return spec


def teardown(host_name, check_mode=False, state_dir=DEFAULT_STATE_DIR, lock_timeout=LOCK_TIMEOUT, host=None,
             docker_force=False):
    """Remove everything netstitch owns on this host (state: absent): its interfaces, the namespaces it created,
    routes, nft tables, tinc daemons, units and keys, labelled Docker networks, hosts-file blocks, DOCKER-USER
    rules, then its state file. Nothing it did not make is touched (a forwarding sysctl it raised stays raised)."""
    return apply({"host": host_name}, check_mode=check_mode, state_dir=state_dir, lock_timeout=lock_timeout,
                 host=host, probe_peers=False, docker_force=docker_force, state="absent")


def _forget(state_dir, host_name, hstate, lock):
    """After a teardown: the host's state file, its tinc directory and its lock go (nothing left of netstitch)."""
    for path in (hstate.path, hstate.path + ".tmp", lock.path):
        try:
            os.unlink(path)
        except OSError:
            pass
    for d in (os.path.join(state_dir, "tinc", host_name), os.path.join(state_dir, "tinc")):
        try:
            os.rmdir(d)
        except OSError:
            pass


def apply(spec: Dict[str, Any], check_mode: bool = False, state_dir: str = DEFAULT_STATE_DIR,
          lock_timeout: float = LOCK_TIMEOUT, host: Optional[Host] = None, peers: Optional[Dict[str, Any]] = None,
          probe_peers: bool = True, docker_force: bool = False, state: str = "present") -> Dict[str, Any]:
    """Reconcile this host with its spec. Returns a result dict (changed, actions, changes, plan, writes,
    endpoints, diff). ``peers`` = {host: facts from prepare()} when the spec needs them (tinc keys, addresses of
    linked containers). ``docker_force``: re-create or remove Docker networks even while containers are connected
    to them. ``state="absent"``: tear the host down (only spec["host"] is read; see teardown())."""
    t0 = time.monotonic()
    absent = state == "absent"
    if not absent:
        check_version(spec)
    spec = copy.deepcopy(spec)
    warnings = [] if absent else merge_peer_keys(spec, peers)
    own = host is None
    host = host or Host()
    try:
        with HostLock(state_dir, spec["host"], lock_timeout) as lock:
            hstate = HostState(state_dir, spec["host"])
            if absent:
                spec = empty_spec(spec["host"], hstate.spec)
            run_spec, dwarn = resolve_docker(host, spec, hstate.spec)
            warnings += dwarn
            current = host.read(run_spec, hstate)
            t_read = time.monotonic() - t0
            plan = planner.compute(run_spec, current, hstate.leases, peers, docker_force, previous=hstate.spec)
            warnings += plan.warnings
            if plan.conflicts:
                raise ApplyError("nothing was changed on host %s because of %d conflict%s:\n  - %s" % (
                    spec["host"], len(plan.conflicts), "" if len(plan.conflicts) == 1 else "s",
                    "\n  - ".join(plan.conflicts)))
            texts = [a["text"] for a in plan.actions] + plan.nft_texts
            chs = plan.changes
            leftovers = (hstate.path, os.path.join(state_dir, "tinc", spec["host"]))
            if absent and any(os.path.exists(p) for p in leftovers):
                texts.append("remove netstitch's state of host %s from %s" % (spec["host"], state_dir))
                chs = chs + [describe.state_change(spec["host"], state_dir)]
            result = {
                "changed": bool(texts),
                "actions": texts,
                "changes": describe.lines(chs),
                "plan": dict(describe.grouped(chs)),
                "endpoints": summary.endpoints(plan.desired),
                "diff": describe.diff(chs, spec["host"]),
            }
            if not check_mode:
                _execute(host, hstate, plan, spec, peers)
                if texts:
                    _verify(host, run_spec, hstate, current, plan.actions, peers)
                if absent:
                    _forget(state_dir, spec["host"], hstate, lock)
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


def check_version(spec: Dict[str, Any]) -> None:
    """Refuse a host spec of another format version, saying so (before anything is read or changed)."""
    problem = version_problem(spec)
    if problem:
        raise ApplyError("host %s: %s" % (spec.get("host") if isinstance(spec, dict) else "?", problem))


def _execute(host, hstate, plan, spec, peers):
    # what the host is being made to match, recorded also when a step fails: gather then reports it out of sync
    hstate.spec = spec
    hstate.peers = peers
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
