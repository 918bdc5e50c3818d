"""Reconcile this host with its spec: lock, read, compute (planner), execute, verify; roll back a failed apply.

Reads the kernel with a constant number of dumps per namespace, writes nothing when nothing differs (the drivers
count every write), serialises concurrent applies on a host with a lock, and verifies afterwards by reading back and
planning again: a non-empty second plan is a failure that names what still differs. Crash-consistent: an intent
record before the first write, every object marked or recorded before it exists (see durable, marks), and a failure
part-way returns the host to the last successful apply (_execute, _rollback).
"""

import contextlib
import copy
import os
import time
from typing import Any, Dict, Optional

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import describe, faults, planner, ports, speccache, summary
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.hostspec import version_problem
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError, NetstitchError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.lock import LOCK_TIMEOUT, HostLock
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.machine import (
    Host, namespaces, resolve_docker, without_docker)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host.statefile import DEFAULT_STATE_DIR, HostState
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import attach, docker_network, inbound
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.routed import merge_peer_link_locals
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds.tinc import merge_peer_keys
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside as plugin_state

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
    """After a teardown: the host's state file, its tinc directory, its lock and the command line's cached spec go
    (nothing left of netstitch)."""
    speccache.forget(os.path.join(state_dir, speccache.DIR), host_name)
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
          probe_peers: bool = True, docker_force: bool = False, rollback: bool = True,
          state: str = "present", docker: bool = True) -> Dict[str, Any]:
    """Reconcile this host with its spec. Returns a result dict (changed, actions, changes, plan, writes,
    endpoints, diff). ``peers`` = {host: facts from prepare()} when the spec needs them (tinc keys, addresses of
    linked containers). ``docker_force``: re-create or remove Docker networks even while containers are connected
    to them. ``rollback``: when the apply fails part-way (a kernel refusal, a failed verification, any error),
    return the host to the last successful apply before raising (see _rollback); False leaves it as the failure
    found it. ``state="absent"``: tear the host down (only spec["host"] is read; see teardown()).
    ``docker=False``: leave Docker alone in this run (at boot, before the Docker Engine runs: see
    machine.without_docker); the spec is recorded whole, for the watcher to apply once Docker is up.
    Check mode writes nothing at all: not the state directory, not even the lock file."""
    t0 = time.monotonic()
    absent = state == "absent"
    if not absent:
        check_version(spec)
    if not check_mode:
        faults.arm_from_env()
    spec = copy.deepcopy(spec)
    warnings = [] if absent else merge_peer_keys(spec, peers) + merge_peer_link_locals(spec, peers)
    own = host is None
    host = host or Host()
    try:
        with HostLock(state_dir, spec["host"], lock_timeout, create=not check_mode) as lock:
            hstate = HostState(state_dir, spec["host"])
            if absent:
                spec = empty_spec(spec["host"], hstate.spec)
            if hstate.pending:
                warnings.append("the previous apply on host %s was interrupted (started %s); what it made carries "
                                "netstitch's marks or is recorded, and this run reconciles it"
                                % (spec["host"], hstate.pending.get("started", "at an unknown time")))
            if not absent:
                spec = _auto_ports(host, spec, hstate, check_mode)
            run_spec, dwarn = resolve_docker(host, spec, hstate.spec) if docker else without_docker(host, spec)
            warnings += dwarn
            current = host.read(run_spec, hstate)
            t_read = time.monotonic() - t0
            # what a rollback returns to, taken before this run records any new lease
            checkpoint = hstate.checkpoint()
            with (plugin_state.lease_lock(state_dir, spec["host"]) if not check_mode else _nothing()):
                # the short lock the Docker plugin takes as well: leases are decided and recorded under it, with the
                # plugin's leases as they are now (check mode only reads, and makes no lock file)
                current["docker_plugin"] = plugin_state.load(state_dir, spec["host"])
                plan = planner.compute(run_spec, current, hstate.leases, peers, docker_force, previous=hstate.spec)
                if not check_mode and not plan.conflicts and plan.leases != hstate.leases:
                    hstate.leases = plan.leases
                    hstate.save()
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
                "published": ports.published(spec, hstate.ports),
            }
            if inbound.outside_routes(spec):
                result["outside_routes"] = inbound.outside_routes(spec)     # routed gateways (kinds.inbound)
            if not check_mode:
                _execute(host, hstate, spec, run_spec, plan, current, peers, rollback, checkpoint, docker)
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


def _auto_ports(host, spec, hstate, check_mode):
    """The spec with every automatic host port chosen (ports.py); a new choice is recorded at once (not in check
    mode), like an address lease, so a run that fails later keeps it too."""
    if not any(p.get("host_port") is None for p in spec.get("publish", [])):
        if hstate.ports and not check_mode:
            hstate.ports = {}
            hstate.save()
        return spec
    listening, ephemeral = host.ports_in_use()
    others = host.ports_published_by_others(spec, hstate)
    spec, chosen, _fresh, problems = ports.resolve(spec, hstate.ports, listening, ephemeral, others)
    if problems:
        raise ApplyError("nothing was changed on host %s: %s" % (spec["host"], "; ".join(problems)))
    if chosen != hstate.ports:
        hstate.ports = chosen
        if not check_mode:
            hstate.save()
    return spec


@contextlib.contextmanager
def _nothing():
    yield


def check_version(spec: Dict[str, Any]) -> None:
    """Refuse a host spec of another format version, saying so (before anything is read or changed)."""
    problem = version_problem(spec)
    if problem:
        raise ApplyError("host %s: %s" % (spec.get("host") if isinstance(spec, dict) else "?", problem))


def _run_actions(host, hstate, actions, nft_cmds, start=0):
    """Execute actions (batched) and the nft transaction; every planned action index passes the fault seam first
    (the nft transaction is the index after the last action; ``start``: the index of the first action)."""
    index = start
    remade = {a["netns"] for a in actions if a["op"] == "netns_add"}
    for a in batched(actions):
        for sub in a.get("actions") or [a]:
            faults.action(index, sub["text"])
            index += 1
        if a["op"] == "port_attach" and hstate.attached.get(a["name"]) != {"bridge": a["master"], "index": a["index"]}:
            # the record before the enslavement (kinds.attach): a crash right after it leaves one netstitch knows
            hstate.attached[a["name"]] = {"bridge": a["master"], "index": a["index"]}
            hstate.save()
        host.execute(a)
        if a["op"] == "port_release":
            hstate.attached.pop(a["name"], None)
        if a["op"] == "netns_del" or (a["op"] == "netns_clear" and a["netns"] not in remade):
            hstate.owned_netns.discard(a["netns"])
    if nft_cmds:
        faults.action(index, "nftables transaction")
        host.nft.apply(nft_cmds)
    return index + (1 if nft_cmds else 0)


def _execute(host, hstate, spec, run_spec, plan, current, peers, rollback, checkpoint, docker=True):
    """Carry out a computed plan, crash-consistently:
    1. intent: the namespaces about to be made join owned_netns and ``pending`` is set, in the state file, fsync'd,
       before the first write to the host (a full or read-only state directory stops the run here, host untouched);
    2. actions, nft transaction, verification;
    3. the new checkpoint (spec, leases, peers) is recorded and ``pending`` cleared.
    A failure in 2 or 3 rolls back to the previous checkpoint (unless ``rollback`` is False) and raises.
    A run that makes, removes or clears namespaces where the rest of the system would not see them (a private mount
    namespace, netns.MountScope) is refused before 1."""
    if not plan.actions and not plan.nft_cmds:
        hstate.leases, hstate.spec, hstate.peers, hstate.pending = plan.leases, spec, peers, None
        _keep_attached(hstate, plan.desired)
        hstate.save("the host already matched the spec (nothing was changed on it)")
        return
    if any(a["op"] in ("netns_add", "netns_del", "netns_clear") for a in plan.actions):
        host.netlink.mount_scope()
    made = sorted(a["netns"] for a in plan.actions if a["op"] == "netns_add")
    hstate.owned_netns.update(made)
    hstate.pending = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "netns": made,
                      "actions": len(plan.actions) + (1 if plan.nft_cmds else 0)}
    hstate.save()
    try:
        # Docker networks of netstitch's plugin: Docker asks the plugin while it creates them, and the plugin answers
        # from the recorded spec, so they are made once this run's spec is recorded (this run holds no lease lock
        # here: the plugin takes it; the host lock it takes only for published ports, which a creation has none of)
        later = [a for a in plan.actions if a["op"] in ("docker_net_create", "docker_net_recreate")
                 and docker_network.plugin_driven(a["want"])]
        first = [a for a in plan.actions if a not in later]
        count = _run_actions(host, hstate, first, plan.nft_cmds)
        if later:
            hstate.leases, hstate.spec, hstate.peers = plan.leases, spec, peers
            hstate.save()
            count = _run_actions(host, hstate, later, [], start=count)
        faults.action(count, "verification")
        _verify(host, run_spec, hstate, current, plan.actions, peers)
        hstate.leases, hstate.spec, hstate.peers, hstate.pending = plan.leases, spec, peers, None
        _keep_attached(hstate, plan.desired)
        hstate.save("the host was changed as planned, but that could not be recorded (the next apply finds it: "
                    "all of it is marked or recorded as netstitch's)")
    except Exception as e:      # any failure, a bug included: the host must not be left half-way
        why = str(e) if isinstance(e, NetstitchError) else "%s: %s" % (type(e).__name__, e)
        head = "apply failed on host %s: %s" % (spec["host"], why)
        if not rollback:
            # what the host was being made to match: gather then reports the host out of sync with it
            hstate.leases, hstate.spec, hstate.peers = plan.leases, spec, peers
            try:
                hstate.save()
            except NetstitchError:
                pass
            raise ApplyError("%s\nnot rolled back (rollback: false): the host is left as the failure found it; the "
                             "next apply continues from there" % head)
        err, texts = _rollback(host, hstate, checkpoint, spec, docker)
        last = "the last successful apply" if checkpoint["spec"] is not None else \
            "the state before netstitch's first apply here"
        if err is None:
            raise ApplyError("%s\nrolled back to %s (%s)" % (
                head, last, "%d change%s undone" % (len(texts), "" if len(texts) == 1 else "s") if texts else
                "nothing had changed yet"))
        raise ApplyError("%s\nthe rollback to %s failed as well: %s\nleft on the host (still to undo):\n  - %s"
                         % (head, last, err, "\n  - ".join(texts) or "(nothing found)"))


def _keep_attached(hstate, desired):
    """After a successful run: the records of the enslavements still wanted (kinds.attach); the others were released
    or are no longer netstitch's (gone, or moved by someone else)."""
    if hasattr(hstate, "attached"):
        hstate.attached = attach.records(desired, hstate.attached)


def _rollback(host, hstate, checkpoint, failed_spec, docker=True):
    """Return the host to a checkpoint (the last successful apply: its spec, leases and peers; none yet: an empty
    spec, which removes what the failed run made): re-plan toward it and apply that, then verify.
    Returns (None, undone action texts) or (error, what is left still to undo)."""
    prev = checkpoint["spec"] or {"host": failed_spec["host"], "networks": [], "containers": [], "links": []}
    faults.rollback()
    hstate.leases, hstate.spec, hstate.peers = checkpoint["leases"], checkpoint["spec"], checkpoint["peers"]
    run_prev = prev
    try:
        run_prev = (resolve_docker(host, prev, failed_spec) if docker else without_docker(host, prev))[0]
        current = host.read(run_prev, hstate, left=failed_spec)     # names the failed run gave left the spec
        plan = planner.compute(run_prev, current, hstate.leases, checkpoint["peers"])
        if plan.conflicts:
            raise ApplyError("conflicts: %s" % "; ".join(plan.conflicts))
        if any(a["op"] in ("docker_net_create", "docker_net_recreate") and docker_network.plugin_driven(a["want"])
               for a in plan.actions):
            hstate.save()       # the plugin answers Docker from the recorded spec: the checkpoint's
        _run_actions(host, hstate, plan.actions, plan.nft_cmds)
        if plan.actions or plan.nft_cmds:
            _verify(host, run_prev, hstate, current, plan.actions, checkpoint["peers"])
        undone = [a["text"] for a in plan.actions] + plan.nft_texts
    except Exception as e:      # report what is left rather than a second traceback
        why = str(e) if isinstance(e, NetstitchError) else "%s: %s" % (type(e).__name__, e)
        try:
            hstate.save()
        except NetstitchError:
            pass
        try:
            left = planner.compute(run_prev, host.read(run_prev, hstate, left=failed_spec), hstate.leases,
                                   checkpoint["peers"]).pending
        except Exception as e2:     # the host cannot even be read: say so
            left = ["(the host could not be read back: %s)" % e2]
        return why, left
    hstate.pending = None
    _keep_attached(hstate, plan.desired)
    try:
        hstate.save()
    except NetstitchError as e:
        # the kernel is back at the checkpoint; the file still holds the intent record, which the next apply
        # reconciles (what it lists is a superset of what exists)
        undone.append("(the state file could not be updated: %s)" % e)
    return None, undone


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
    # (and a namespace the run removed a macvlan from, whose container has left the spec: kinds.macvlan)
    touched = sorted(_touched_namespaces(actions) & (set(namespaces(spec)) | {
        a["ns"] for a in actions if a["op"] == "link_del" and a.get("ns")}))
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
