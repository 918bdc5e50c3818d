"""Netlink driver: reads a host's state with a constant number of dumps per namespace and executes the planner's
actions. Every write goes through ``_write`` so the number of kernel writes is counted. The netlink messages
themselves are made and decoded by the small client in ``rtnl`` (one socket per namespace)."""

import ctypes
import ctypes.util
import errno
import os
import random
import socket
import threading

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import state as st
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers import rtnl
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.drivers.rtnl import NetlinkError
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.plan import ROUTE_PROTO, ZERO_MAC

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2
IFF_UP = 1
NUD_PERMANENT = 0x80
NTF_SELF = 0x02

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def ns_path(ns):
    return ns if ns.startswith("/") else os.path.join(NETNS_RUN_DIR, ns)


CLONE_NEWNS, CLONE_FS = 0x00020000, 0x00000200
_nsfs = []


def _nsfs_dev():
    """The device of nsfs, the file system every namespace file lives on (one superblock for the whole kernel)."""
    if not _nsfs:
        _nsfs.append(os.stat("/proc/self/ns/net").st_dev)
    return _nsfs[0]


def netns_usable(path):
    """Whether ``path`` is a live network namespace: a bind mount of a namespace file, not the empty file that is
    left when the mount went away (made in a mount namespace that has since ended, or half-made)."""
    try:
        return os.stat(path).st_dev == _nsfs_dev()
    except OSError:
        return False


def _entries():
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        return []


def list_named_netns():
    """The names in /run/netns that are live namespaces (dead entries are left out: see stale_named_netns)."""
    return [n for n in _entries() if netns_usable(os.path.join(NETNS_RUN_DIR, n))]


def stale_named_netns():
    """Names in /run/netns that are no namespace (``ip netns list`` says "Peer netns reference is invalid")."""
    return [n for n in _entries() if not netns_usable(os.path.join(NETNS_RUN_DIR, n))]


def _ensure_run_dir():
    """Make /run/netns a shared mount point, as `ip netns add` does, so namespaces made here are seen everywhere."""
    libc = _lib()
    if not os.path.isdir(NETNS_RUN_DIR):
        os.makedirs(NETNS_RUN_DIR, 0o755)
    if libc.mount(b"none", NETNS_RUN_DIR.encode(), None, MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:
        raise OSError(ctypes.get_errno(), "mount --make-shared %s failed" % NETNS_RUN_DIR)
    if libc.mount(NETNS_RUN_DIR.encode(), NETNS_RUN_DIR.encode(), b"none", MS_BIND | MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), "bind mount of %s failed" % NETNS_RUN_DIR)
    if libc.mount(b"none", NETNS_RUN_DIR.encode(), None, MS_SHARED | MS_REC, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-shared %s failed" % NETNS_RUN_DIR)


def _run_dir_mount_fields():
    """The propagation fields (``shared:N``, ``master:N``) of the mount that holds /run/netns in this process's
    mount namespace (the mount at /run/netns itself, else the deepest one above it)."""
    best, fields = -1, []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split(" - ")[0].split()
                point = parts[4].replace("\\040", " ")
                if NETNS_RUN_DIR == point or NETNS_RUN_DIR.startswith(point.rstrip("/") + "/"):
                    if len(point) >= best:      # later lines are mounted on top of earlier ones
                        best, fields = len(point), parts[6:]
    except OSError:
        pass
    return fields


class MountScope(object):
    """Where namespace files must be mounted for the rest of the system to see them.

    Normally here. But a process in a mount namespace of its own whose mounts do not propagate back (as under
    ``ip netns exec``, which makes a private copy that is a slave of the system's) would leave every namespace it
    makes visible only to itself: once it ends, /run/netns holds dead files. Then the mounts are made in PID 1's mount
    namespace (what ``ip netns add`` would see from a shell), from a helper thread, and they propagate into this one
    as into every other. Where PID 1's mount namespace cannot be entered, it refuses, saying why and what to do."""

    def __init__(self):
        self.fd = None          # PID 1's mount namespace, when it is not this one and mounts must go there
        self.problem = None
        fields = _run_dir_mount_fields()
        if not any(f.startswith("master:") for f in fields):
            return              # not a slave: what is mounted here reaches the peers (or this is the only view)
        try:
            fd = os.open("/proc/1/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            self.problem = (
                "this process runs in a mount namespace of its own whose mounts do not reach the rest of the system "
                "(as under `ip netns exec`; %s is a slave mount here), and PID 1's mount namespace cannot be entered "
                "(%s): network namespaces made here would be dead files in /run/netns once it ends. Run it in the "
                "host's network namespace without a new mount namespace instead, e.g. `nsenter --net=/run/netns/HOST "
                "bin/netstitch apply ...`" % (NETNS_RUN_DIR, e.strerror))
            return
        if os.fstat(fd).st_ino == os.stat("/proc/self/ns/mnt").st_ino:
            os.close(fd)        # PID 1's own: nothing better to go to
            return
        self.fd = fd

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def check(self):
        if self.problem:
            raise ApplyError(self.problem)

    def run(self, fn):
        """Run ``fn()`` in a helper thread, in the mount namespace where namespace files must be made (unshare and
        setns affect only the calling thread); return what it returned, raise what it raised."""
        self.check()
        out = []

        def work():
            try:
                if self.fd is not None:
                    libc = _lib()
                    if libc.unshare(CLONE_FS) != 0 or libc.setns(self.fd, CLONE_NEWNS) != 0:
                        raise ApplyError("could not enter PID 1's mount namespace to make network namespaces there: %s"
                                         % os.strerror(ctypes.get_errno()))
                out.append((True, fn()))
            except Exception as e:   # handed to the calling thread
                out.append((False, e))

        t = threading.Thread(target=work, name="netstitch-netns")
        t.start()
        t.join()
        ok, value = out[0]
        if not ok:
            raise value
        return value


def create_named_netns(names, scope=None):
    """Create named network namespaces without forking: a helper thread unshares its own network namespace and
    bind-mounts it at /run/netns/NAME, once per name (unshare(CLONE_NEWNET) affects only the calling thread). A dead
    entry of that name (a file whose mount is gone) is replaced."""
    if not names:
        return
    own = scope is None
    scope = scope or MountScope()
    try:
        errors = scope.run(lambda: _create(names))
    finally:
        if own:
            scope.close()
    for name in names:
        if not errors and not netns_usable(ns_path(name)):
            errors.append("%s was made but is not visible in this process's mount namespace" % ns_path(name))
    if errors:
        raise ApplyError("could not create network namespaces: " + "; ".join(errors))


def _create(names):
    _ensure_run_dir()
    libc = _lib()
    errors = []
    for name in names:
        path = ns_path(name)
        if os.path.lexists(path) and not netns_usable(path):
            libc.umount2(path.encode(), MNT_DETACH)
            try:
                os.unlink(path)
            except OSError as e:
                errors.append("%s is a dead entry that could not be removed: %s" % (path, e.strerror))
                continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
            os.close(fd)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
            continue
        if libc.unshare(CLONE_NEWNET) != 0:
            errors.append("unshare for %s: %s" % (name, os.strerror(ctypes.get_errno())))
            os.unlink(path)
            continue
        src = ("/proc/self/task/%d/ns/net" % threading.get_native_id()).encode()
        if libc.mount(src, path.encode(), b"none", MS_BIND, None) != 0:
            errors.append("bind mount for %s: %s" % (name, os.strerror(ctypes.get_errno())))
            os.unlink(path)
    return errors


def remove_named_netns(name, scope=None):
    path = ns_path(name)

    def remove():
        _lib().umount2(path.encode(), MNT_DETACH)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    own = scope is None
    scope = scope or MountScope()
    try:
        scope.run(remove)
    finally:
        if own:
            scope.close()


def _link_view(l, names_by_index):
    master = l["master"]
    view = {
        "index": l["index"],
        "kind": l["kind"],
        "alias": l["alias"],
        "master": names_by_index.get(master) if master else None,
        "mtu": l["mtu"],
        "up": bool(l["flags"] & IFF_UP),
        "mac": l["address"],
        "peer_index": l["link"],
        "addresses": [],
    }
    if l["kind"] == "vxlan":
        view["vxlan"] = l["vxlan"]
        view["fdb"] = []
    return view


class Netlink(object):
    """One driver per run: one socket for the host namespace, one per container namespace, opened on demand."""

    def __init__(self):
        self.writes = 0
        # the namespace this thread is in: sockets for other namespaces are made there, then the thread comes back
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.ipr = rtnl.Socket()
        self._ns = {}
        self._index = {None: {}}   # ns -> {ifname: index}
        self._scope = None         # MountScope, made at the first namespace added or removed

    def close(self):
        if self._scope is not None:
            self._scope.close()
            self._scope = None
        for s in self._ns.values():
            s.close()
        self._ns.clear()
        self.ipr.close()
        if self._home is not None:
            os.close(self._home)
            self._home = None

    # -- sockets ---------------------------------------------------------------------------------------------------
    def sock(self, ns):
        if ns is None:
            return self.ipr
        s = self._ns.get(ns)
        if s is None:
            s = self._ns[ns] = rtnl.Socket(ns_path(ns), self._home)
        return s

    # -- reading ---------------------------------------------------------------------------------------------------
    def _read_links(self, s):
        raw = s.links()
        names = {l["index"]: l["name"] for l in raw}
        links = {}
        by_index = {}
        for l in raw:
            v = _link_view(l, names)
            links[l["name"]] = v
            by_index[l["index"]] = v
        for index, addr in s.addresses4():
            v = by_index.get(index)
            if v is not None:
                v["addresses"].append(addr)
        for v in links.values():
            if len(v["addresses"]) > 1:
                v["addresses"].sort()
        return links

    def _gateway_routes(self, s, names):
        """(default route or None, other routes via a gateway) of a container namespace's main table."""
        default, other = None, []
        for r in s.routes4():
            gw = r["gateway"]
            if not gw:
                continue
            dev = names.get(r["oif"])
            if r["dst_len"] == 0:
                default = default or {"gateway": gw, "dev": dev}
            else:
                other.append({"dst": "%s/%d" % (r["dst"], r["dst_len"]), "gateway": gw, "dev": dev})
        return default, other

    def _neighbours(self, s, names):
        out = []
        for n in s.neighbours(socket.AF_INET):
            if n["state"] & NUD_PERMANENT:
                out.append({"dev": names.get(n["ifindex"]), "ip": n["dst"], "mac": n["lladdr"]})
        return out

    def _fdb(self, links):
        """Remote entries (with a destination) of the VXLAN devices netstitch owns: one dump."""
        vx = {l["index"]: l for l in links.values() if l.get("kind") == "vxlan" and st.owned(l)}
        if not vx:
            return
        for f in self.ipr.neighbours(rtnl.AF_BRIDGE):
            l = vx.get(f["ifindex"])
            if l is not None and f["dst"] and f["flags"] & NTF_SELF:
                l["fdb"].append([f["lladdr"], f["dst"]])
        for l in vx.values():
            l["fdb"].sort()

    def _routes(self):
        out = {}
        for r in self.ipr.routes4():
            if r["proto"] == ROUTE_PROTO:
                out["%s/%d" % (r["dst"] or "0.0.0.0", r["dst_len"])] = {"via": r["gateway"]}
        return out

    def read(self, namespaces, sysctls=()):
        """Current state of the host namespace and the given container namespaces (missing ones map to None)."""
        links = self._read_links(self.ipr)
        self._index[None] = {n: l["index"] for n, l in links.items()}
        self._fdb(links)
        out = {"links": links, "netns": {}, "named_netns": list_named_netns(), "stale_netns": stale_named_netns(),
               "sysctl": {}, "routes": self._routes()}
        for ns in namespaces:
            if not netns_usable(ns_path(ns)):
                out["netns"][ns] = None     # missing, or a dead entry (its mount is gone): made again if it is ours
                continue
            s = self.sock(ns)
            nlinks = self._read_links(s)
            names = {l["index"]: n for n, l in nlinks.items()}
            self._index[ns] = {n: l["index"] for n, l in nlinks.items()}
            default, routes = self._gateway_routes(s, names)
            out["netns"][ns] = {"links": nlinks, "default_route": default, "routes": routes,
                                "neighbours": self._neighbours(s, names)}
        for key in sysctls:
            out["sysctl"][key] = read_sysctl(key)
        return out

    # -- writing ---------------------------------------------------------------------------------------------------
    def _write(self, fn, *args, **kw):
        self.writes += 1
        return fn(*args, **kw)

    def link_exists(self, name, ns=None):
        return self.sock(ns).link_index(name) is not None

    def _idx(self, ns, name):
        idx = self._index.setdefault(ns, {}).get(name)
        if idx is None:
            idx = self.sock(ns).link_index(name)
            if idx is None:
                raise NetlinkError(errno.ENODEV)
            self._index[ns][name] = idx
        return idx

    def execute(self, action):
        op = action["op"]
        try:
            getattr(self, "_do_" + op)(action)
        except NetlinkError as e:
            raise ApplyError("%s: kernel said: %s" % (action["text"], e.args[1] if len(e.args) > 1 else e))
        except OSError as e:
            raise ApplyError("%s: %s" % (action["text"], e))

    def _do_sysctl_set(self, a):
        self.writes += 1
        write_sysctl(a["key"], a["value"])

    def mount_scope(self):
        """Where this run makes namespace files (see MountScope); raises ApplyError when it cannot make them where
        the rest of the system sees them. Engine calls it before the first change of a run that adds or removes
        namespaces, so such a run is refused before it changes anything."""
        if self._scope is None:
            self._scope = MountScope()
        self._scope.check()
        return self._scope

    def _do_netns_add(self, a):
        self.writes += 1
        create_named_netns([a["netns"]], self.mount_scope())

    def _do_netns_del(self, a):
        self.writes += 1
        s = self._ns.pop(a["netns"], None)
        if s is not None:
            s.close()
        remove_named_netns(a["netns"], self.mount_scope())

    def _do_bridge_add(self, a):
        self._write(self.ipr.link_add, a["name"], "bridge", mtu=a["mtu"], address=a["mac"])
        idx = self._idx(None, a["name"])
        self._write(self.ipr.link_set, idx, alias=a["alias"])

    def _do_veth_add(self, a):
        p = a["peer"]
        fd = os.open(ns_path(p["netns"]), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._write(self.ipr.veth_add, a["name"], a["mtu"], self._idx(None, a["master"]), True,
                        p["name"], fd, p["mtu"], p["mac"])
        finally:
            os.close(fd)
        self._write(self.ipr.link_set, self._idx(None, a["name"]), alias=a["alias"])

    def _do_link_set(self, a):
        ns, ch = a["ns"], a["changes"]
        self._write(self.sock(ns).link_set, self._idx(ns, a["name"]), mtu=ch.get("mtu"), address=ch.get("mac"),
                    alias=ch.get("alias"), master=self._idx(ns, ch["master"]) if "master" in ch else None,
                    up=bool(ch.get("up")))

    def _do_addr_add(self, a):
        addr, plen = a["address"].split("/")
        self._write(self.sock(a["ns"]).addr, "add", self._idx(a["ns"], a["name"]), addr, int(plen))

    def _do_addr_del(self, a):
        addr, plen = a["address"].split("/")
        self._write(self.sock(a["ns"]).addr, "del", self._idx(a["ns"], a["name"]), addr, int(plen))

    def _do_route_replace(self, a):
        self._write(self.sock(a["ns"]).route, "replace", "0.0.0.0/0", a["gateway"], oif=self._idx(a["ns"], a["dev"]))

    def _do_route_del_default(self, a):
        self._write(self.sock(a["ns"]).route, "del", "0.0.0.0/0", a["gateway"], oif=self._idx(a["ns"], a["dev"]))

    def _do_route_add_ns(self, a):
        self._write(self.sock(a["ns"]).route, "replace", a["dst"], a["gateway"], oif=self._idx(a["ns"], a["dev"]))

    def _do_route_del_ns(self, a):
        self._write(self.sock(a["ns"]).route, "del", a["dst"], a["gateway"], oif=self._idx(a["ns"], a["dev"]))

    def _do_route_add(self, a):
        self._write(self.ipr.route, "replace" if a.get("replace") else "add", a["dst"], a["via"], proto=ROUTE_PROTO)

    def _do_route_del(self, a):
        self._write(self.ipr.route, "del", a["dst"], a["via"], proto=ROUTE_PROTO)

    def _do_vxlan_add(self, a):
        self._write(self.ipr.vxlan_add, a["name"], a["vni"], a["local"], a["port"], a["learning"], a["mtu"],
                    self._idx(None, a["master"]))
        self._write(self.ipr.link_set, self._idx(None, a["name"]), alias=a["alias"])

    def _do_fdb_add(self, a):
        # the all-zero MAC (flooding) has one entry per peer: append; a unicast MAC has one destination: add
        self._write(self.ipr.fdb, "append" if a["mac"] == ZERO_MAC else "add", self._idx(None, a["dev"]), a["mac"],
                    a["dst"])

    def _do_fdb_del(self, a):
        self._write(self.ipr.fdb, "del", self._idx(None, a["dev"]), a["mac"], a["dst"])

    def _do_neigh_replace(self, a):
        self._write(self.sock(a["ns"]).neigh, "replace", self._idx(a["ns"], a["dev"]), a["ip"], a["mac"])

    def _do_neigh_del(self, a):
        try:
            self._write(self.sock(a["ns"]).neigh, "del", self._idx(a["ns"], a["dev"]), a["ip"])
        except NetlinkError as e:
            # the entry went with its interface (a container's veth replaced in the same run): that is the goal
            if e.code not in (errno.ENOENT, errno.ENODEV):
                raise

    def _do_link_del(self, a):
        try:
            self._write(self.sock(a["ns"]).link_del, self._idx(a["ns"], a["name"]))
        except NetlinkError as e:
            if e.code != errno.ENODEV:  # already gone (its namespace was destroyed meanwhile): that is the goal
                raise
        self._index.get(a["ns"], {}).pop(a["name"], None)

    def _do_link_del_many(self, a):
        """Remove several links of the host namespace in one kernel batch. Removing a link waits for an RCU grace
        period (about 20 ms each on this machine kind, whatever the tool); the kernel's group removal unregisters
        all the links of a group with one wait. So: put exactly these links in a link group that no other link
        here is in, check that with a dump, and remove the group; if anything is off, remove them one by one."""
        s = self.ipr
        group = _random_group()
        items = []
        for x in a["actions"]:
            try:
                idx = self._idx(None, x["name"])
                self._write(s.link_set, idx, group=group)
            except NetlinkError as e:
                if e.code == errno.ENODEV:      # already gone (as in _do_link_del): that is the goal
                    self._index[None].pop(x["name"], None)
                    continue
                raise ApplyError("%s: kernel said: %s" % (x["text"], e.args[1]))
            items.append((x, idx))
        if not items:
            return
        mine = {idx for _action, idx in items}
        clash = [l["name"] for l in s.links() if l["group"] == group and l["index"] not in mine]
        if not clash:
            try:
                self._write(s.link_del, group=group)
                for x, _idx in items:
                    self._index[None].pop(x["name"], None)
                return
            except NetlinkError:
                pass
        for x, _idx in items:
            try:
                self._do_link_del(x)
            except NetlinkError as e:
                raise ApplyError("%s: kernel said: %s" % (x["text"], e.args[1]))


def _random_group():
    """A link group number for one batch removal (random: the dump after marking proves no other link has it)."""
    return random.SystemRandom().randrange(1 << 24, 1 << 31)


def _sysctl_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def read_sysctl(key):
    try:
        with open(_sysctl_path(key)) as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(key, value):
    with open(_sysctl_path(key), "w") as f:
        f.write(str(value))
