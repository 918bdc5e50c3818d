"""Apply one host's spec: lock, read, allocate, plan, execute, verify. The one entry point modules and tools use.

    result = engine.apply(spec, check_mode=False)

Reads the kernel with a constant number of dumps per namespace, writes nothing when nothing differs (the drivers
count every write), serialises concurrent applies on a host with a lock, and verifies afterwards by reading back and
planning again: a non-empty second plan is a failure that names what still differs.
"""

import copy
import fcntl
import json
import os
import time

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import dockerplan, ipam, nftplan
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import plan as planner
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import state as st
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers import dockeruser, hostsfile
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.model import ALIAS_PREFIX

DEFAULT_STATE_DIR = "/var/lib/netstitch"
LOCK_TIMEOUT = 300.0
VERIFY_ATTEMPTS = 4


class HostLock(object):
    """An exclusive flock on <state_dir>/<host>.lock, held for the whole apply."""

    def __init__(self, state_dir, host, timeout=LOCK_TIMEOUT):
        self.path = os.path.join(state_dir, "%s.lock" % host)
        self.timeout = timeout
        self.fd = None
        self.waited = 0.0

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start > self.timeout:
                    os.close(self.fd)
                    raise ApplyError("another netstitch apply holds %s for more than %gs" % (self.path, self.timeout))
                time.sleep(0.05)
        self.waited = time.monotonic() - start
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class HostState(object):
    """netstitch's small per-host memory: address leases and the namespaces it created."""

    def __init__(self, state_dir, host):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "%s.json" % host)
        try:
            with open(self.path) as f:
                text = f.read()
            data = json.loads(text)
        except (OSError, ValueError):
            text, data = None, {}
        self.leases = data.get("leases", {})
        self.owned_netns = set(data.get("owned_netns", []))
        self.spec = data.get("spec")        # the last spec applied here (for gather and drift reports)
        self.peers = data.get("peers")      # and the facts of the other hosts it was applied with
        # what the file holds, as data (a second parse, never shared with the live attributes): save() compares
        # with it and writes only on a difference (cheaper than rendering the text every run)
        self._saved = self._normal(json.loads(text) if data else {})

    @staticmethod
    def _normal(data):
        return {"leases": data.get("leases", {}), "owned_netns": sorted(data.get("owned_netns", [])),
                "spec": data.get("spec"), "peers": data.get("peers")}

    def _data(self):
        return {"leases": self.leases, "owned_netns": sorted(self.owned_netns), "spec": self.spec,
                "peers": self.peers}

    def _dump(self):
        return json.dumps(self._data(), sort_keys=True, indent=1)

    def save(self):
        data = self._data()
        if data == self._saved:
            return
        text = self._dump()
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.path)
        self._saved = self._normal(json.loads(text))


def _namespaces(spec):
    # a Docker container's namespace is the /proc path resolve_docker() put in "netns"; absent ones have none
    return sorted({c.get("netns") or c["docker"] for c in spec["containers"] if not c.get("absent")})


def _docker_users(spec, previous=None):
    """What on this host needs the Docker Engine (for error messages), or "" when nothing does."""
    conts = [c["name"] for c in spec["containers"] if c["kind"] == "docker"]
    nets = sorted(set(dockerplan.desired(spec)) | set(dockerplan.desired(previous) if previous else ()))
    parts = []
    if conts:
        parts.append("Docker container%s %s" % ("s" if len(conts) > 1 else "", ", ".join(conts)))
    if nets:
        parts.append("Docker network%s %s" % ("s" if len(nets) > 1 else "", ", ".join(nets)))
    return " and ".join(parts)


def resolve_docker(host, spec, previous=None):
    """Connect to this host's Docker Engine when the spec (or the last one applied here) involves Docker, and point
    each Docker container at its network namespace for this run. Returns (spec for this run, warnings); a spec
    without Docker is returned as it is, and then neither the SDK nor the engine is needed."""
    why = _docker_users(spec, previous)
    if not why:
        host.docker = None
        return spec, []
    # the engine the spec names; a spec that names none cleans up on the engine the last one named
    engine = host.docker_engine(spec if spec.get("docker_host") or not previous else
                                dict(spec, docker_host=previous.get("docker_host")), why)
    if not any(c["kind"] == "docker" for c in spec["containers"]):
        return spec, []
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers import docker as docker_mod
    return docker_mod.resolve_containers(spec, engine)


def view(desired=None, current=None):
    """A readable summary of what netstitch manages on a host, from the desired or the current state (for --diff)."""
    out = {"bridges": {}, "endpoints": {}}
    if desired is not None:
        for name, b in desired["bridges"].items():
            out["bridges"][name] = {"network": b["network"], "mtu": b["mtu"], "addresses": b["addresses"]}
        for hname, e in desired["endpoints"].items():
            out["endpoints"]["%s/%s" % (e["container"], e["ifname"])] = {
                "network": e["network"], "host_ifname": hname, "address": e["address"], "mtu": e["mtu"],
                "mac": e["mac"], "default_route": e["gateway"]}
        out["namespaces"] = desired["netns"]
        return out
    # container ends by (index of the host end, own index): one pass, not a scan of every namespace per veth
    peers = {}
    for ns, nstate in (current.get("netns") or {}).items():
        for pname, peer in (nstate or {}).get("links", {}).items():
            peers.setdefault((peer.get("peer_index"), peer["index"]), (pname, peer, nstate))
    for name, l in sorted(current["links"].items()):
        if not st.owned(l):
            continue
        words = l["alias"][len(ALIAS_PREFIX):].split()
        if l["kind"] == "bridge":
            out["bridges"][name] = {"network": words[1] if len(words) > 1 else None, "mtu": l["mtu"],
                                    "addresses": [a for a in l["addresses"] if ":" not in a]}
        elif l["kind"] == "veth" and len(words) >= 3:
            ep = {"network": words[2], "host_ifname": name, "mtu": l["mtu"]}
            cont, _sep, ifname = words[1].partition("/")
            pname, peer, nstate = peers.get((l["index"], l.get("peer_index")), (None, None, None))
            if peer is not None:
                route = nstate.get("default_route") or {}
                ep.update({"address": ([a for a in peer["addresses"] if ":" not in a] or [None])[0],
                           "mtu": peer["mtu"], "mac": peer["mac"],
                           "default_route": route.get("gateway") if route.get("dev") == pname else None})
            out["endpoints"]["%s/%s" % (cont, ifname)] = ep
    out["namespaces"] = sorted(set(current.get("owned_netns", [])) & set(current.get("named_netns", [])))
    return out


class Host(object):
    """The drivers for the host this process runs in (created lazily so planning-only paths need no kernel)."""

    def __init__(self):
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers.netlink import Netlink
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers.nft import Nft
        self.netlink = Netlink()
        self.nft = Nft()
        self.tinc = None
        self.files = 0
        self.iptables = 0
        self.docker = None      # the Docker Engine client, only for a spec that involves Docker

    def close(self):
        self.netlink.close()
        if self.docker is not None:
            self.docker.close()

    def docker_engine(self, spec, why):
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers import docker as docker_mod
        url = docker_mod.url_of(spec)
        if self.docker is None or self.docker.url != url or self.docker.host != spec["host"]:
            if self.docker is not None:
                self.docker.close()
            self.docker = None
            self.docker = docker_mod.Engine(url, spec["host"], why)
        return self.docker

    def _tinc(self, state_dir, host):
        from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers.tinc import Tinc
        if self.tinc is None or self.tinc.host != host:
            self.tinc = Tinc(state_dir, host)
        return self.tinc

    def read(self, spec, hstate, namespaces=None):
        cur = self.netlink.read(_namespaces(spec) if namespaces is None else namespaces,
                                sysctls=(planner.SYSCTL_FORWARD, planner.SYSCTL_BRIDGE_NF))
        # a namespace netstitch made that has since gone is no longer netstitch's: someone may reuse the name; one whose
        # entry is dead (its mount went away) stays netstitch's, to be made again or its entry removed
        hstate.owned_netns &= set(cur["named_netns"]) | set(cur.get("stale_netns", ()))
        cur["owned_netns"] = sorted(hstate.owned_netns)
        cur["nft"] = nftplan.current_tables({f: self.nft.read(f) for f in ("inet", "bridge")})
        cur["hosts_files"] = {ns: hostsfile.read_block(ns) for ns in _netns_containers(spec)}
        cur["docker_user"] = dockeruser.read()
        tinc_nets = [n["name"] for n in spec["networks"] if (n.get("overlay") or {}).get("type") == "tinc"]
        cur["tinc"] = self._tinc(hstate.state_dir, spec["host"]).read(tinc_nets)
        if self.docker is not None and dockerplan.needed(spec, hstate.spec):
            cur["docker_networks"] = self.docker.networks(set(dockerplan.desired(spec)))
        return cur

    def execute(self, action):
        op = action["op"]
        if op == "hosts_write":
            self.files += 1
            return hostsfile.write_block(action["netns"], action["entries"])
        if op in ("docker_user_add", "docker_user_del"):
            self.iptables += 1
            return dockeruser.change("-I" if op == "docker_user_add" else "-D", action["rule"])
        if op.startswith("docker_net_"):
            return self.docker.execute(action)
        if op.startswith("tinc_"):
            return self.tinc.execute(action, self.netlink)
        self.netlink.execute(action)
        if op == "netns_del" and hostsfile.read_block(action["netns"]) is not None:
            # the names netstitch gave the namespace go with it
            self.files += 1
            hostsfile.write_block(action["netns"], [])
        return None

    @property
    def writes(self):
        return {"netlink": self.netlink.writes, "nft": self.nft.writes, "tinc": self.tinc.writes if self.tinc else 0,
                "files": self.files, "iptables": self.iptables, "docker": self.docker.writes if self.docker else 0}


def merge_peer_keys(spec, peers):
    """Put the peers' tinc public keys (gathered from every host in the run by prepare()) into a host spec; return
    warnings for peers without a key (a host that is down or not yet set up)."""
    warnings = []
    for n in spec["networks"]:
        o = n.get("overlay") or {}
        if o.get("type") != "tinc":
            continue
        for p in o["peers"]:
            key = (((peers or {}).get(p["host"]) or {}).get("tinc") or {}).get(n["name"])
            p["pubkey"] = key
            if not key:
                warnings.append("network %s: no tinc key from peer %s (down or not reached in this run); "
                                "it is left out until a run reaches it" % (n["name"], p["host"]))
    return warnings


def prepare(spec, check_mode=False, state_dir=DEFAULT_STATE_DIR, lock_timeout=LOCK_TIMEOUT, host=None):
    """The facts other hosts need before they apply (first phase of a run, only when compile.needs_prepare says
    so): this host's allocated addresses {"container/ifname": address} (reserved in its lease file) and its tinc
    public keys {network: key} (generated on the host if missing; private keys never leave it).
    Returns (facts, changed)."""
    own = host is None
    host = host or Host()
    try:
        with HostLock(state_dir, spec["host"], lock_timeout):
            hstate = HostState(state_dir, spec["host"])
            run_spec = resolve_docker(host, spec, hstate.spec)[0]
            current = host.read(run_spec, hstate)
            addresses, leases = ipam.allocate(run_spec, current, hstate.leases)
            changed = leases != hstate.leases
            if not check_mode:
                hstate.leases = leases
                hstate.save()
            keys, kchanged = tinc_keys(spec, check_mode, state_dir, lock=False)
    finally:
        if own:
            host.close()
    facts = {"addresses": {"%s/%s" % k: str(v) for k, v in sorted(addresses.items())}, "tinc": keys}
    return facts, changed or kchanged


def tinc_keys(spec, check_mode=False, state_dir=DEFAULT_STATE_DIR, lock=True):
    """Make sure this host has a tinc key pair for each of its tinc networks; return (public keys, changed)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers.tinc import Tinc, public_key
    t = Tinc(state_dir, spec["host"])
    keys, changed = {}, False
    with (HostLock(state_dir, spec["host"]) if lock else _NoLock()):
        for n in spec["networks"]:
            if (n.get("overlay") or {}).get("type") != "tinc":
                continue
            if check_mode:
                keys[n["name"]] = public_key(t.confdir(n["name"]), spec["host"])
                changed = changed or keys[n["name"]] is None
            else:
                keys[n["name"]], gen = t.ensure_key(n["name"])
                changed = changed or gen
    return keys, changed


class _NoLock(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _netns_containers(spec):
    return sorted({c["netns"] for c in spec["containers"] if c["kind"] == "netns"})


def _address_of(ref, spec, addresses, peers):
    if ref["ip"]:
        return ref["ip"]
    if ref["host"] == spec["host"]:
        a = addresses.get((ref["container"], ref["ifname"]))
        return str(a) if a is not None else None
    return (((peers or {}).get(ref["host"]) or {}).get("addresses") or {}).get(
        "%s/%s" % (ref["container"], ref["ifname"]))


def resolve_links(spec, addresses, peers):
    """Links with addresses: [{index, network, protocol, ports, client_ip, server_match}], the hosts-file entries
    {netns: [[ip, name]]} of this host's clients, and warnings for addresses no one could tell."""
    nets = {n["name"]: n for n in spec["networks"]}
    netns_of = {c["name"]: c["netns"] for c in spec["containers"] if c["kind"] == "netns"}
    links, names, warnings = [], {}, []
    for ln in spec.get("links", []):
        client = _address_of(ln["client"], spec, addresses, peers)
        if ln["server"] is None:
            n = nets[ln["network"]]
            server = (n.get("overlay") or {}).get("subnet", n["subnet"])
        else:
            server = _address_of(ln["server"], spec, addresses, peers)
        if client is None or server is None:
            missing = ln["client"] if client is None else ln["server"]
            warnings.append("links[%d]: the address of %s on host %s is not known in this run (host down?); the link "
                            "is left out here until a run reaches it" % (ln["index"], missing["container"],
                                                                         missing["host"]))
            continue
        links.append({"index": ln["index"], "network": ln["network"], "protocol": ln["protocol"],
                      "ports": ln["ports"], "client_ip": client, "server_match": server})
        if ln["name"] and ln["client"]["host"] == spec["host"] and ln["client"]["container"] in netns_of:
            names.setdefault(netns_of[ln["client"]["container"]], []).append([server, ln["name"]])
    return links, {ns: sorted(e) for ns, e in names.items()}, warnings


class Computed(object):
    """What compute() works out for a host: desired state, new leases, actions (netlink, files, tinc), the nft
    transaction, its readable lines, conflicts and warnings."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def pending(self):
        return [a["text"] for a in self.actions] + self.nft_texts + self.conflicts


def compute(spec, current, hstate, peers=None, docker_force=False):
    """Pure: everything the host needs to do for a spec against a current state."""
    have_docker = current.get("docker_networks")
    if have_docker:
        # addresses Docker gave its containers on netstitch's networks are never handed out by netstitch
        spec = dockerplan.reserve_docker_addresses(spec, have_docker, hstate.leases)
    addresses, leases = ipam.allocate(spec, current, hstate.leases)
    desired = planner.desired_state(spec, addresses)
    if have_docker is not None:
        # a bridge of netstitch's Docker network that Docker re-made itself (its daemon came up first) is adopted
        adopt = dockerplan.adoptable_bridges(spec, have_docker, current.get("links"))
        if adopt:
            current = dict(current, links=dict(current["links"]))
            for name in adopt:
                current["links"][name] = dict(current["links"][name], alias=ALIAS_PREFIX + "adopt (made by Docker)")
    # the veths of a Docker container that is not running go with its namespace (the kernel tears it down a moment
    # after the container stops): neither pruned nor touched meanwhile
    gone = {i["host_ifname"] for c in spec["containers"] if c.get("absent") for i in c["interfaces"]}
    if gone & set(current.get("links", ())):
        current = dict(current, links={k: v for k, v in current["links"].items() if k not in gone})
    actions, conflicts = planner.plan(desired, current)
    if have_docker is not None:
        first, last, more = dockerplan.plan(spec, have_docker, docker_force)
        actions = first + actions + last
        conflicts = conflicts + more
    links, names, warnings = resolve_links(spec, addresses, peers)
    have_names = current.get("hosts_files") or {}
    for ns in sorted(set(names) | {n for n, v in have_names.items() if v}):
        if ns in desired["netns"] and (have_names.get(ns) or []) != names.get(ns, []):
            actions.append({"op": "hosts_write", "netns": ns, "entries": names.get(ns, []),
                            "text": "write names in /etc/netns/%s/hosts: %s" % (
                                ns, ", ".join("%s=%s" % (n, ip) for ip, n in names.get(ns, [])) or "none")})
    have_du = current.get("docker_user")
    if have_du is not None:      # Docker's firewall is here: open forwarding for netstitch's bridges in DOCKER-USER
        want_du = dockeruser.desired(desired["bridges"])
        for rule in sorted(set(have_du) - set(want_du)):
            actions.append({"op": "docker_user_del", "rule": list(rule),
                            "text": "remove from DOCKER-USER: %s" % " ".join(rule)})
        for rule in sorted(set(want_du) - set(have_du)):
            actions.append({"op": "docker_user_add", "rule": list(rule),
                            "text": "add to DOCKER-USER: %s" % " ".join(rule)})
    bridge_nf = (current.get("sysctl") or {}).get(planner.SYSCTL_BRIDGE_NF) == "1"
    tables = nftplan.desired_tables(spec, addresses, links, bridge_nf)
    nft_cmds, nft_texts = nftplan.diff_all(tables, current.get("nft"))
    return Computed(desired=desired, leases=leases, actions=actions, nft_cmds=nft_cmds, nft_texts=nft_texts,
                    conflicts=conflicts, warnings=warnings)


def without_docker(spec):
    """The spec for a run that leaves Docker alone (at boot, before the Docker Engine runs): its Docker containers are
    absent (not running yet; their leases stay) and nothing is asked of the engine. The watcher, which starts after
    Docker, applies the whole spec."""
    out = dict(spec)
    out["containers"] = [dict(c, netns=None, absent=True) if c.get("kind") == "docker" else c
                         for c in spec["containers"]]
    return out


def apply(spec, check_mode=False, state_dir=DEFAULT_STATE_DIR, lock_timeout=LOCK_TIMEOUT, host=None, peers=None,
          probe_peers=True, docker_force=False, docker=True):
    """Reconcile this host with its spec. Returns a result dict (changed, actions, writes, endpoints, diff).
    ``peers`` = {host: facts from prepare()} when the spec needs them (tinc keys, addresses of linked containers).
    ``docker_force``: re-create or remove Docker networks even while containers are connected to them.
    ``docker=False``: leave Docker alone for this run (see without_docker); the spec is kept whole in the state."""
    t0 = time.monotonic()
    spec = copy.deepcopy(spec)
    warnings = merge_peer_keys(spec, peers)
    own = host is None
    host = host or Host()
    try:
        with HostLock(state_dir, spec["host"], lock_timeout) as lock:
            hstate = HostState(state_dir, spec["host"])
            if docker:
                run_spec, dwarn = resolve_docker(host, spec, hstate.spec)
            else:
                host.docker, run_spec, dwarn = None, without_docker(spec), []
            warnings += dwarn
            current = host.read(run_spec, hstate)
            t_read = time.monotonic() - t0
            plan = compute(run_spec, current, hstate, peers, docker_force)
            desired, leases, actions, conflicts = plan.desired, plan.leases, plan.actions, plan.conflicts
            nft_cmds, nft_texts = plan.nft_cmds, plan.nft_texts
            warnings += plan.warnings
            if conflicts:
                raise ApplyError("nothing was changed on host %s because of %d conflict%s:\n  - %s" % (
                    spec["host"], len(conflicts), "" if len(conflicts) == 1 else "s", "\n  - ".join(conflicts)))
            texts = [a["text"] for a in actions] + nft_texts
            result = {
                "changed": bool(texts),
                "actions": texts,
                "endpoints": _endpoints(desired),
                "diff": {"before": view(current=current), "after": view(desired=desired)},
            }
            if not check_mode:
                if any(a["op"] in ("netns_add", "netns_del") for a in actions):
                    host.netlink.mount_scope()    # refuses before any change where namespaces would not be seen
                try:
                    for a in _batched(actions):
                        host.execute(a)
                        if a["op"] == "netns_add":
                            hstate.owned_netns.add(a["netns"])
                        elif a["op"] == "netns_del":
                            hstate.owned_netns.discard(a["netns"])
                finally:
                    hstate.save()   # namespaces made before a failing action are netstitch's: record them anyway
                hstate.leases = leases
                hstate.spec = spec
                hstate.peers = peers
                hstate.save()
                host.nft.apply(nft_cmds)
                if texts:
                    _verify(host, run_spec, hstate, current, actions, peers)
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


def _probe_peers(spec):
    """Warn about overlay peers that do not answer on the underlay (the apply itself never depends on them)."""
    from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers.probe import unreachable
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


def _batched(actions):
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
    touched = sorted(_touched_namespaces(actions) & set(_namespaces(spec)))
    for attempt in range(VERIFY_ATTEMPTS):
        fresh = host.read(spec, hstate, namespaces=touched)
        merged = copy.copy(fresh)
        merged["netns"] = dict(before.get("netns") or {})
        merged["netns"].update(fresh["netns"])
        again = compute(spec, merged, hstate, peers)
        if not again.pending:
            return
        time.sleep(0.05 * (attempt + 1))
    raise ApplyError("verification failed on host %s: after applying, the kernel still differs from the plan:\n  - %s"
                     % (spec["host"], "\n  - ".join(again.pending)))


def _endpoints(desired):
    return [{"container": e["container"], "interface": e["ifname"], "network": e["network"],
             "address": e["address"], "mac": e["mac"], "host_ifname": h, "netns": e["netns"]}
            for h, e in sorted(desired["endpoints"].items(), key=lambda kv: (kv[1]["container"], kv[1]["ifname"]))]


def gather(host_name, state_dir=DEFAULT_STATE_DIR, host=None):
    """What netstitch manages on this host now: bridges, endpoints with addresses, namespaces it created, its nft
    table; plus ``in_sync``: whether the kernel still matches the last applied spec (drift shows as pending actions)."""
    own = host is None
    host = host or Host()
    try:
        hstate = HostState(state_dir, host_name)
        spec = hstate.spec or {"host": host_name, "networks": [], "containers": []}
        spec = resolve_docker(host, spec)[0]
        current = host.read(spec, hstate)
        out = view(current=current)
        out["nft_rules"] = [r["rule"].get("comment") for f in ("inet", "bridge")
                            for r in (host.nft.read(f) or {}).get("nftables", []) if "rule" in r]
        out["leases"] = hstate.leases
        if hstate.spec is not None:
            out["pending"] = compute(spec, current, hstate, hstate.peers).pending
            out["in_sync"] = not out["pending"]
        else:
            out["pending"], out["in_sync"] = [], None
        return out
    finally:
        if own:
            host.close()
