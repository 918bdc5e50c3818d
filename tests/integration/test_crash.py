"""Crash consistency, tested at every write point, not at random moments.

How the kill is made: through the engine's own fault seam (plugins/module_utils/_netstitch/faults.py). Every driver
passes a write point just before each write (each netlink request, the nft transaction, each state/hosts-file write
and rename, each step of making or removing a namespace, tinc and Docker calls). ``NETSTITCH_FAULT=count:FILE``
enumerates the points of a run; ``NETSTITCH_FAULT=kill:N`` makes the process SIGKILL itself just before point N. The
apply runs in a forked child of the test's helper process (everything already imported, so a run costs milliseconds,
not an interpreter start), and the kill is a real SIGKILL of that child: no finally clause, no flush, no atexit.
Why not strace's ``-e inject=SYSCALL:signal=KILL:when=N``: it counts the calls of each system call separately, and
most of them are not writes (a netlink dump's sendto, the reads of files), so covering every write takes a sweep per
system call (sendto, sendmsg, write, rename, unlink, mount, umount2, unshare...) with many runs that kill at a read,
each under ptrace with a fresh interpreter; the seam names each point and needs one run per write.

For every point of a representative apply (bridges, veths, a VXLAN peer, a published port, a link with a hosts-file
name, namespaces made), of the prune back, and of a fresh host's first apply (no state directory yet): kill
there, rerun, and check that the rerun converges, that a further rerun changes nothing (zero writes), that nothing
leaked (interface, namespace, file, nft object), that every link netstitch made has its alias, that the state file is
valid, that the address of a container that was there before did not change, and that foreign objects are
byte-identical.

The same for a tinc overlay (key generation, configuration files, the daemon and its TAP port), up and down.

The rollback: a failure injected at every action index of the same plan (then at the nft transaction and at the
verification) leaves the host byte-identical to the last successful apply: ip -d link/addr, routes, permanent
neighbours, static FDB entries of every namespace, netstitch's nft tables and the state file. A rollback that fails
too lists what is left. State-directory faults (read-only and full tmpfs, state files of the wrong shape) are clean
errors with the host as it was; a half-made namespace is repaired when netstitch's and reported when not.
"""

import json
import os
import shutil
import time

import pytest

import nskit
from nskit import assert_noop, run

MARK_GROUP = 0x6e7374


def topologies(env):
    """(A, B): A = one network and one container (the state before); B = A plus a second network with a VXLAN
    overlay and a peer host, three more containers (one on both networks), a published port and a named link."""
    hosts = {env.HOST: {"underlay": env.underlay}, "peer": {"underlay": "192.0.2.200"}}
    keep = {"host": env.HOST, "netns": env.ns("keep"), "interfaces": [{"network": "front"}]}
    a = {"version": 1, "hosts": hosts, "networks": {"front": {"subnet": "10.81.1.0/24"}},
         "containers": {"keep": keep}}
    b = {"version": 1, "hosts": hosts,
         "networks": {"front": {"subnet": "10.81.1.0/24"},
                      "ov": {"subnet": "10.81.2.0/24", "overlay": {"type": "vxlan", "vni": 81}}},
         "containers": {
             "keep": keep,
             "web": {"host": env.HOST, "netns": env.ns("web"),
                     "interfaces": [{"network": "front"}, {"network": "ov", "default_route": False}],
                     "publish": [{"host_port": 8080, "container_port": 80}]},
             "cli": {"host": env.HOST, "netns": env.ns("cli"), "interfaces": [{"network": "front"}]},
             "db": {"host": env.HOST, "netns": env.ns("db"), "interfaces": [{"network": "ov"}]},
             "far": {"host": "peer", "netns": "far", "interfaces": [{"network": "ov"}]}},
         "links": [{"client": "cli", "server": "web", "ports": [80], "name": "webby"}]}
    return a, b


def add_foreign(env):
    """Objects netstitch must never touch: a bridge and a veth pair into a namespace of the test's own, an nft
    table; returned as a function giving their byte-exact state."""
    fns = env.ns("fgn")
    nskit.add_netns(fns)
    env.ip("link", "add", "fgn0", "type", "bridge")
    env.ip("link", "set", "fgn0", "alias", "someone else", "up")
    env.ip("addr", "add", "10.99.0.1/24", "dev", "fgn0")
    env.ip("link", "add", "fgv0", "type", "veth", "peer", "name", "eth9", "netns", fns)
    env.nft("add", "table", "inet", "fgn")
    env.nft("add", "chain", "inet", "fgn", "c", "{ type filter hook forward priority 5 ; }")
    env.nft("add", "rule", "inet", "fgn", "c", "ip saddr 10.99.0.0/24 counter accept")

    def state():
        env.wait_settled([env.hostns, fns])
        return {"fgn0": nskit._untick(env.ip("-d", "addr", "show", "dev", "fgn0")),
                "fgv0": env.ip("-d", "link", "show", "fgv0"),
                "fns": run("ip", "-n", fns, "-d", "addr").stdout, "nft": env.nft("list", "table", "inet", "fgn").stdout}
    return state


def _text(*args):
    r = run(*args, check=False)
    return r.stdout if r.returncode == 0 else None


def model(env, namespaces):
    """What the host looks like, normalised for comparing a converged run with a clean one: per namespace the links
    (kind, alias, master, mtu, up, MAC except the random ones of veth host ends and VXLAN devices, IPv4
    addresses), IPv4 routes,
    permanent neighbours and static FDB entries; netstitch's nft tables; the names in /etc/netns; the namespaces."""
    out = {"netns": sorted(env.mine()), "tables": {f: nft_objects(env, f) for f in ("inet", "bridge")}}
    for ns in [env.hostns] + sorted(namespaces):
        if not nskit.netns_exists(ns):
            out[ns] = None
            continue
        links = {}
        for d in json.loads(run("ip", "-n", ns, "-j", "-d", "addr").stdout):
            kind = (d.get("linkinfo") or {}).get("info_kind")
            links[d["ifname"]] = {
                "kind": kind, "alias": d.get("ifalias"), "master": d.get("master"), "mtu": d["mtu"],
                "up": "UP" in d.get("flags", []),
                "mac": None if ns == env.hostns and kind in ("veth", "vxlan", "tun") else d["address"],
                "v4": sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in d.get("addr_info", [])
                             if a["family"] == "inet")}
        out[ns] = {"links": links, "routes": run("ip", "-n", ns, "-4", "route", "show", "table", "all").stdout,
                   "neigh": run("ip", "-n", ns, "-4", "neigh", "show", "nud", "permanent").stdout,
                   "fdb": sorted(l for l in run("bridge", "-n", ns, "fdb", "show").stdout.splitlines() if " dst " in l)}
    out["etc_netns"] = {}
    for name in sorted(namespaces):
        hosts = "/etc/netns/%s" % name
        out["etc_netns"][name] = (sorted(os.listdir(hosts)), _text("cat", hosts + "/hosts")) \
            if os.path.isdir(hosts) else None
    return out


def snapshot(env, namespaces):
    """Byte for byte: ip -d link/addr, routes, permanent neighbours and static FDB of every namespace, netstitch's nft
    tables, the state directory's files."""
    env.wait_settled([env.hostns] + namespaces)
    out = {"netns": sorted(env.mine()), "state": {}}
    for ns in [env.hostns] + sorted(namespaces):
        if not nskit.netns_exists(ns):
            out[ns] = None
            continue
        out[ns] = [nskit._untick(run("ip", "-n", ns, "-d", "link").stdout),
                   nskit._untick(run("ip", "-n", ns, "-d", "addr").stdout),
                   run("ip", "-n", ns, "route", "show", "table", "all").stdout,
                   run("ip", "-n", ns, "neigh", "show", "nud", "permanent").stdout,
                   [l for l in run("bridge", "-n", ns, "fdb", "show").stdout.splitlines() if "permanent" in l or
                    " dst " in l or "static" in l]]
    for f in ("inet", "bridge"):
        out["nft " + f] = env.nft("list", "table", f, "netstitch", check=False).stdout
    for name in sorted(os.listdir(env.state_dir)) if os.path.isdir(env.state_dir) else []:
        with open(os.path.join(env.state_dir, name), "rb") as fh:
            out["state"][name] = fh.read()
    return out


def check_invariants(env, namespaces, want, keep_addr, foreign, foreign_before, where):
    """Everything a converged host must satisfy (see the module's docstring); ``want``: model of a clean run."""
    got = model(env, namespaces)
    assert got == want, "%s: the host differs from a clean run:\n%s" % (where, _diff(want, got))
    # every link netstitch made (its creation mark) is named as netstitch's
    for d in json.loads(env.ip("-j", "-d", "link")):
        if str(d.get("group")) == str(MARK_GROUP) or d["ifname"] not in ("lo", "eth0", "fgn0", "fgv0"):
            assert (d.get("ifalias") or "").startswith("netstitch "), "%s: link %s has no netstitch alias" % (
                where, d["ifname"])
    # no half-made namespace, no file left beside the state
    for n in nskit.netns_list():
        if n.startswith(env.hostns + "-"):
            assert os.stat("/run/netns/" + n).st_dev != os.stat("/run/netns").st_dev, "%s: half-made %s" % (where, n)
    files = sorted(f for f in os.listdir(env.state_dir) if f != "tinc")
    # the state file, the host lock and the lease lock the Docker plugin shares with applies
    assert files == ["%s.json" % env.HOST, "%s.lease.lock" % env.HOST, "%s.lock" % env.HOST], \
        "%s: state dir holds %s" % (where, files)
    tinc = os.path.join(env.state_dir, "tinc", env.HOST)
    for net in os.listdir(tinc) if os.path.isdir(tinc) else []:
        left = [f for f in os.listdir(os.path.join(tinc, net)) + os.listdir(os.path.join(tinc, net, "hosts"))
                if f.endswith(".tmp")]
        assert not left and net in got_tinc(want), "%s: tinc files %s left in %s" % (where, left, net)
    with open(os.path.join(env.state_dir, "%s.json" % env.HOST)) as f:
        data = json.load(f)
    assert isinstance(data["leases"], dict) and "pending" not in data, "%s: state file %s" % (where, data)
    assert set(data["owned_netns"]) == set(got["netns"]) - {env.ns("fgn")}, "%s: owned %s" % (
        where, data["owned_netns"])
    assert env.link("eth0", ns=env.ns("keep"))["addresses"] == keep_addr, "%s: keep's address changed" % where
    assert foreign() == foreign_before, "%s: a foreign object changed" % where


def got_tinc(model_):
    """The tinc networks that a model's host has netstitch's TAP device for."""
    return {link["alias"].split()[-1] for m in model_.values() if isinstance(m, dict) and "links" in m
            for link in m["links"].values() if link["kind"] == "tun" and
            (link["alias"] or "").startswith("netstitch tap ")}


def _diff(want, got, path=""):
    """The paths at which two nested values differ, with both sides."""
    if isinstance(want, dict) and isinstance(got, dict):
        return "".join(_diff(want.get(k), got.get(k), "%s/%s" % (path, k)) for k in sorted(set(want) | set(got))
                       if want.get(k) != got.get(k))
    return "%s:\n  want %s\n  got  %s\n" % (path, json.dumps(want, sort_keys=True, default=str)[:800],
                                            json.dumps(got, sort_keys=True, default=str)[:800])


def nft_objects(env, family):
    """netstitch's nft table of a family as a sorted list of its objects without handles (None: no table); the
    order chains are listed in is their creation order, which says nothing about the state."""
    r = env.nft("-j", "list", "table", family, "netstitch", check=False)
    if r.returncode != 0:
        return None
    out = []
    for obj in json.loads(r.stdout)["nftables"]:
        for kind, body in obj.items():
            if kind != "metainfo":
                out.append(json.dumps({kind: {k: v for k, v in body.items() if k != "handle"}}, sort_keys=True))
    return sorted(out)


def points(env, topo, path):
    """The write points of an apply of ``topo`` from the host's present state (run for real, in a child)."""
    if os.path.exists(path):
        os.unlink(path)
    assert env.call("apply", topo, fork=True, fault="count:%s" % path) == {"exit": 0}
    with open(path) as f:
        return [l.rstrip("\n").split(" ", 1)[1] for l in f]


def kill_at_every_point(env, start, target, namespaces, want, keep_addr, foreign, foreign_before, tag, cold=False,
                        daemons=None):
    """From ``start`` applied, kill an apply of ``target`` at each of its write points; rerun; check; reset.
    ``cold``: and with no state directory at all (a host's first apply); ``daemons``: a check of the daemons."""
    def reset():
        env.apply(start, probe_peers=False)
        if cold:
            shutil.rmtree(env.state_dir)

    reset()
    names = points(env, target, os.path.join(os.path.dirname(env.state_dir), "points-%s" % tag))
    reset()
    assert names, "no write points counted"
    for n, what in enumerate(names, 1):
        where = "%s: killed at write point %d/%d (%s)" % (tag, n, len(names), what)
        assert env.call("apply", target, fork=True, fault="kill:%d" % n) == {"signal": 9}, where
        env.apply(target, probe_peers=False)
        assert_noop(env.apply(target, probe_peers=False))
        check_invariants(env, namespaces, want, keep_addr, foreign, foreign_before, where)
        assert daemons is None or daemons(), "%s: daemons left or missing" % where
        reset()
    return names


def test_a_kill_at_any_write_point_of_an_apply_or_a_prune_is_repaired_by_rerunning(env):
    t0 = time.monotonic()
    a, b = topologies(env)
    namespaces = [env.ns(c) for c in ("keep", "web", "cli", "db")]
    foreign = add_foreign(env)
    foreign_before = foreign()
    env.apply(a, probe_peers=False)      # keep's address is the one a fresh host gives it (the cold scenario)
    env.apply(b, probe_peers=False)
    want_b = model(env, namespaces)
    assert want_b[env.ns("cli")] is not None and want_b["etc_netns"][env.ns("cli")] is not None
    assert any(" dst 192.0.2.200" in l for l in want_b[env.hostns]["fdb"])
    env.apply(a, probe_peers=False)
    want_a = model(env, namespaces)
    keep_addr = env.link("eth0", ns=env.ns("keep"))["addresses"]
    try:
        applied = kill_at_every_point(env, a, b, namespaces, want_b, keep_addr, foreign, foreign_before, "apply")
        pruned = kill_at_every_point(env, b, a, namespaces, want_a, keep_addr, foreign, foreign_before, "prune")
        empty = {"version": 1, "hosts": a["hosts"], "networks": {}, "containers": {}}
        cold = kill_at_every_point(env, empty, a, namespaces, want_a, keep_addr, foreign, foreign_before, "cold",
                                   cold=True)
    finally:
        env.apply({"version": 1, "hosts": {env.HOST: {}}, "networks": {}, "containers": {}}, probe_peers=False)
    # the points cover every kind of write the brief names
    for kind in ("netlink link_add", "netlink veth_add", "netlink vxlan_add", "netlink fdb", "netlink link_set",
                 "netlink addr", "netlink route", "nft transaction", "netns file", "netns unshare", "netns mount",
                 "write ", "rename ", "hosts file"):
        assert any(p.startswith(kind) for p in applied), (kind, applied)
    for kind in ("netlink link_del", "netns umount", "netns unlink", "hosts file unlink", "nft transaction",
                 "rename "):
        assert any(p.startswith(kind) for p in pruned), (kind, pruned)
    assert cold[0].startswith("lock file") and any(p.startswith("netns mount") for p in cold), cold
    took = time.monotonic() - t0
    print("\nwrite points: apply %d, prune %d, first apply on a fresh host %d; all clean; %.1f s"
          % (len(applied), len(pruned), len(cold), took))
    assert took < 600, "the crash test took %.0f s" % took


def test_a_failure_at_any_action_index_rolls_the_host_back_byte_for_byte(env):
    a, b = topologies(env)
    namespaces = [env.ns(c) for c in ("keep", "web", "cli", "db")]
    foreign = add_foreign(env)
    foreign_before = foreign()
    env.apply(a, probe_peers=False)
    before = snapshot(env, namespaces)
    planned = env.apply(b, check=True)["actions"]
    index, failed = 0, []
    while True:
        r = env.call("apply", b, ok=None, fault_action=index, probe_peers=False)
        if r["ok"]:
            break           # past the last index (nft transaction, then verification): the apply went through
        assert r["type"] == "ApplyError" and "injected failure" in r["error"], r
        assert "rolled back to the last successful apply" in r["error"], r["error"]
        after = snapshot(env, namespaces)
        assert after == before, "failure at action %d: the host was not rolled back:\n%s" % (
            index, _diff(before, after))
        assert foreign() == foreign_before
        failed.append(r["error"])
        index += 1
    # every planned action (in the plan's order), then the nft transaction, then the verification
    assert len(failed) >= 3
    for i, err in enumerate(failed[:-2]):
        assert err.startswith("apply failed on host %s: %s: injected failure" % (env.HOST, planned[i])), (i, err)
    assert "nftables transaction: injected failure" in failed[-2] and "verification: injected" in failed[-1]
    env.apply(a, probe_peers=False)
    assert_noop(env.apply(a, probe_peers=False))
    print("\nrollback: failure injected at %d action indexes, all rolled back byte for byte" % len(failed))

    # a rollback that fails too says exactly what is left: what an apply of the last good topology would still do
    first_veth = next(i for i, t in enumerate(planned) if t.startswith("create veth"))
    r = env.call("apply", b, ok=False, fault_both=first_veth + 1, probe_peers=False)
    assert "rolled back" not in r["error"] and "the rollback to the last successful apply failed as well: " in \
        r["error"] and "injected failure" in r["error"], r["error"]
    left = r["error"].split("left on the host (still to undo):\n")[1].split("\n")
    still = env.apply(a, check=True)["actions"]
    assert left == ["  - " + t for t in still] and any(t.startswith("remove veth") for t in still), (left, still)
    env.apply(a, probe_peers=False)
    assert snapshot(env, namespaces) == before
    env.apply({"version": 1, "hosts": {env.HOST: {}}, "networks": {}, "containers": {}}, probe_peers=False)


@pytest.fixture
def tmpfs(tmp_path):
    """A small tmpfs of the test's own (mounted in a test directory, unmounted afterwards whatever happens)."""
    d = tmp_path / "tmpfs"
    d.mkdir()
    run("mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(d))
    try:
        yield str(d)
    finally:
        run("umount", "-l", str(d), check=False)


def _fill(directory):
    """Fill a file system up (one file, written until the kernel says it is full)."""
    fd = os.open(os.path.join(directory, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_state_directory_faults_are_clean_errors_and_leave_the_host_as_it_was(env, tmpfs):
    a, b = topologies(env)
    namespaces = [env.ns(c) for c in ("keep", "web", "cli", "db")]
    base = env.state_dir

    # read-only, before the first apply (no directory yet): the lock file cannot be made
    run("mount", "-o", "remount,ro", tmpfs)
    env.state_dir = os.path.join(tmpfs, "state")
    before = snapshot(env, namespaces)
    err = env.apply(a, ok=False)
    assert "lock file %s/%s.lock could not be made (Read-only file system)" % (env.state_dir, env.HOST) in \
        err["error"] and "nothing was changed" in err["error"] and "remount it read-write" in err["error"], err
    assert snapshot(env, namespaces) == before

    # read-only with a state there: the same, host as it was
    run("mount", "-o", "remount,rw", tmpfs)
    env.apply(a, probe_peers=False)
    run("mount", "-o", "remount,ro", tmpfs)
    before = snapshot(env, namespaces)
    err = env.apply(b, ok=False)
    assert "Read-only file system" in err["error"] and "nothing was changed" in err["error"], err
    assert snapshot(env, namespaces) == before
    assert_noop(env.apply(a, check=True))        # check mode still works: it writes nothing

    # full: the intent record cannot be written, so nothing is done (and no file is left beside the state)
    run("mount", "-o", "remount,rw", tmpfs)
    _fill(tmpfs)
    err = env.apply(b, ok=False)
    assert "state file %s/%s.json could not be written (No space left on device); nothing was changed on the " \
        "host. To fix: the file system is full: free some space." % (env.state_dir, env.HOST) in err["error"], err
    assert snapshot(env, namespaces) == before
    assert sorted(os.listdir(env.state_dir)) == ["%s.json" % env.HOST, "%s.lease.lock" % env.HOST, "%s.lock" % env.HOST]
    os.unlink(os.path.join(tmpfs, "filler"))
    env.apply(b, probe_peers=False)
    assert_noop(env.apply(b, probe_peers=False))

    # a state file of the wrong shape, or not JSON: a clean error naming the file, nothing done
    state = os.path.join(env.state_dir, "%s.json" % env.HOST)
    with open(state) as f:
        good = f.read()
    before = snapshot(env, namespaces)
    for bad, says in (("[1, 2]", "holds a JSON list where an object is expected"),
                      ('{"leases": [1, 2]}', "'leases' is a JSON list"),
                      ('{"leases": {"front": {"keep/eth0": 7}}}', "the leases of network 'front' are not"),
                      ('{"owned_netns": "x"}', "'owned_netns' is a JSON str"),
                      ('{"leases": {', "is not valid JSON")):
        with open(state, "w") as f:
            f.write(bad)
        for topo in (a, b):
            err = env.apply(topo, ok=False)
            assert "netstitch's state file %s" % state in err["error"] and says in err["error"] and \
                "move it away" in err["error"], (bad, err)
        assert snapshot(env, namespaces)["netns"] == before["netns"]
    with open(state, "w") as f:
        f.write(good)
    assert_noop(env.apply(b, probe_peers=False))
    env.apply({"version": 1, "hosts": {env.HOST: {}}, "networks": {}, "containers": {}}, probe_peers=False)
    env.state_dir = base


def test_a_half_made_namespace_is_repaired_when_netstitch_made_it_and_reported_when_not(env):
    a, b = topologies(env)
    env.apply(b, probe_peers=False)
    # a prune stopped between unmounting and unlinking leaves an empty file; the namespace is wanted again
    run("umount", "/run/netns/" + env.ns("db"))
    assert os.path.getsize("/run/netns/" + env.ns("db")) == 0
    res = env.apply(b, probe_peers=False)
    assert "clear half-made network namespace %s (an interrupted run left an empty /run/netns/%s)" % (
        env.ns("db"), env.ns("db")) in res["actions"], res["actions"]
    assert "create network namespace %s" % env.ns("db") in res["actions"]
    assert_noop(env.apply(b, probe_peers=False))
    # an empty file that netstitch did not make, where a container's namespace should be: a clear conflict
    alien = env.ns("alien")
    open("/run/netns/" + alien, "w").close()
    try:
        topo = dict(b, containers=dict(b["containers"], alien={"host": env.HOST, "netns": alien,
                                                               "interfaces": [{"network": "front"}]}))
        err = env.apply(topo, ok=False)
        assert "network namespace %s on host %s is half-made (/run/netns/%s is an empty file, not a namespace) " \
            "and netstitch did not create it: remove it with `ip netns del %s`" % (alien, env.HOST, alien, alien) \
            in err["error"], err
        assert os.path.exists("/run/netns/" + alien)
        assert_noop(env.apply(b, probe_peers=False))     # and it is not in the way of anything else
    finally:
        os.unlink("/run/netns/" + alien)
    env.apply({"version": 1, "hosts": {env.HOST: {}}, "networks": {}, "containers": {}}, probe_peers=False)
    assert env.mine() == []


def _tincds(env):
    """PIDs of the tinc daemons running with a configuration under this test's state directory."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"tincd") and env.state_dir.encode() in b" ".join(cmd):
            out.append(int(pid))
    return out


@pytest.mark.skipif(shutil.which("tincd") is None, reason="needs tincd")
def test_a_kill_at_any_write_point_of_a_tinc_overlay_is_repaired_by_rerunning(env):
    """The tinc writes (key generation, configuration files, starting and stopping the daemon, its TAP port), both
    ways: setting a tinc network up and removing it."""
    t0 = time.monotonic()
    a, _b = topologies(env)
    t = dict(a, networks=dict(a["networks"], tn={"subnet": "10.81.3.0/24", "overlay": {"type": "tinc"}}),
             containers=dict(a["containers"], tc={"host": env.HOST, "netns": env.ns("tc"),
                                                  "interfaces": [{"network": "tn"}]}))
    namespaces = [env.ns(c) for c in ("keep", "tc")]
    foreign = add_foreign(env)
    foreign_before = foreign()
    try:
        env.apply(a, probe_peers=False)
        keep_addr = env.link("eth0", ns=env.ns("keep"))["addresses"]
        env.apply(t, probe_peers=False)
        want_t = model(env, namespaces)
        assert want_t[env.hostns]["links"]["nstc-tn"]["alias"] == "netstitch tap tn" and len(_tincds(env)) == 1
        env.apply(a, probe_peers=False)
        want_a = model(env, namespaces)
        assert _tincds(env) == []
        up = kill_at_every_point(env, a, t, namespaces, want_t, keep_addr, foreign, foreign_before, "tinc up",
                                 daemons=lambda: len(_tincds(env)) == 1)
        down = kill_at_every_point(env, t, a, namespaces, want_a, keep_addr, foreign, foreign_before, "tinc down",
                                   daemons=lambda: _tincds(env) == [])
    finally:
        env.apply({"version": 1, "hosts": {env.HOST: {}}, "networks": {}, "containers": {}}, probe_peers=False)
        for pid in _tincds(env):     # only if a failure left one: the daemons of this test's state directory
            os.kill(pid, 9)
    for kind in ("tinc dir", "tinc keygen", "write ", "tinc start", "netlink link_set"):
        assert any(p.startswith(kind) for p in up), (kind, up)
    assert any(p.startswith("tinc stop") for p in down) and any(p.startswith("tinc remove") for p in down), down
    print("\nwrite points: tinc up %d, tinc down %d, all clean; %.1f s" % (len(up), len(down), time.monotonic() - t0))


def test_a_kill_at_any_write_point_of_overlays_over_an_ipv6_underlay_is_repaired_by_rerunning(env):
    """Over an IPv6 underlay (issue 15): a dual-stack VXLAN network (an IPv6 local address, FDB entries toward an
    IPv6 peer) and a routed one (the peer's IPv4 slice via its IPv6 address), set up and removed, killed at every
    write point; each rerun converges to what a clean run makes."""
    t0 = time.monotonic()
    a, _b = topologies(env)
    env.ip("-6", "addr", "add", "2001:db8:0:9::1/64", "dev", "eth0", "nodad")
    a = dict(a, hosts={env.HOST: {"underlay": "2001:db8:0:9::1/64"}, "peer": {"underlay": "2001:db8:0:9::200/64"}})
    t = dict(a, networks=dict(a["networks"],
                              ov={"subnet": "10.81.2.0/24", "subnet6": "2001:db8:81::/64",
                                  "overlay": {"type": "vxlan", "vni": 81}},
                              rt={"subnet": "10.82.0.0/16", "overlay": {"type": "routed"}}),
             containers=dict(a["containers"],
                             db={"host": env.HOST, "netns": env.ns("db"),
                                 "interfaces": [{"network": "ov"}, {"network": "rt", "default_route": False}]},
                             far={"host": "peer", "netns": "far", "interfaces": [{"network": "ov"}, {"network": "rt"}]}))
    namespaces = [env.ns(c) for c in ("keep", "db")]
    foreign = add_foreign(env)
    foreign_before = foreign()
    try:
        env.apply(a, probe_peers=False)
        keep_addr = env.link("eth0", ns=env.ns("keep"))["addresses"]
        env.apply(t, probe_peers=False)
        want_t = model(env, namespaces)
        assert any(" dst 2001:db8:0:9::200 " in l for l in want_t[env.hostns]["fdb"]), want_t[env.hostns]["fdb"]
        assert "via inet6 2001:db8:0:9::200" in want_t[env.hostns]["routes"], want_t[env.hostns]["routes"]
        env.apply(a, probe_peers=False)
        want_a = model(env, namespaces)
        up = kill_at_every_point(env, a, t, namespaces, want_t, keep_addr, foreign, foreign_before, "v6 underlay up")
        down = kill_at_every_point(env, t, a, namespaces, want_a, keep_addr, foreign, foreign_before,
                                   "v6 underlay down")
    finally:
        env.apply({"version": 1, "hosts": {env.HOST: {}}, "networks": {}, "containers": {}}, probe_peers=False)
    for kind in ("netlink vxlan_add", "netlink fdb", "netlink route"):
        assert any(p.startswith(kind) for p in up), (kind, up)
    assert any(p.startswith("netlink link_del") for p in down), down
    took = time.monotonic() - t0
    print("\nwrite points: IPv6 underlay up %d, down %d, all clean; %.1f s" % (len(up), len(down), took))
