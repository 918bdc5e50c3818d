"""Netlink driver (pyroute2): reads a host's state with a constant number of dumps per namespace and executes the
planner's actions. Every write goes through ``_write`` so the number of kernel writes is counted."""

import ctypes
import ctypes.util
import errno
import os
import socket
import threading

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import state as st
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.plan import ROUTE_PROTO, ZERO_MAC

try:
    from pyroute2 import IPRoute, netns as pr_netns
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_PYROUTE2 = False

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


def list_named_netns():
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except OSError:
        return []


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


def create_named_netns(names):
    """Create named network namespaces without forking: a helper thread unshares its own network namespace and
    bind-mounts it at /run/netns/NAME, once per name (unshare(CLONE_NEWNET) affects only the calling thread)."""
    if not names:
        return
    _ensure_run_dir()
    errors = []

    def work():
        libc = _lib()
        for name in names:
            path = ns_path(name)
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

    t = threading.Thread(target=work, name="netstitch-netns")
    t.start()
    t.join()
    if errors:
        raise ApplyError("could not create network namespaces: " + "; ".join(errors))


def remove_named_netns(name):
    path = ns_path(name)
    _lib().umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _vxlan_view(info):
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    if data is None:
        return None
    return {"vni": data.get_attr("IFLA_VXLAN_ID"), "port": data.get_attr("IFLA_VXLAN_PORT"),
            "local": data.get_attr("IFLA_VXLAN_LOCAL"), "learning": bool(data.get_attr("IFLA_VXLAN_LEARNING"))}


def _link_view(msg, names_by_index):
    info = msg.get_attr("IFLA_LINKINFO")
    master = msg.get_attr("IFLA_MASTER")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    view = {
        "index": msg["index"],
        "kind": kind,
        "alias": msg.get_attr("IFLA_IFALIAS"),
        "master": names_by_index.get(master) if master else None,
        "mtu": msg.get_attr("IFLA_MTU"),
        "up": bool(msg["flags"] & IFF_UP),
        "mac": msg.get_attr("IFLA_ADDRESS"),
        "peer_index": msg.get_attr("IFLA_LINK"),
        "addresses": [],
    }
    if kind == "vxlan":
        view["vxlan"] = _vxlan_view(info)
        view["fdb"] = []
    return view


class Netlink(object):
    """One driver per run: one socket for the host namespace, one per container namespace, opened on demand."""

    def __init__(self):
        if not HAS_PYROUTE2:
            raise ApplyError("the Python package 'pyroute2' is needed on the managed host (pip install pyroute2)")
        self.writes = 0
        self.ipr = IPRoute()
        self._ns = {}
        self._index = {None: {}}   # ns -> {ifname: index}

    def close(self):
        for s in self._ns.values():
            s.close()
        self._ns.clear()
        self.ipr.close()

    # -- sockets ---------------------------------------------------------------------------------------------------
    def sock(self, ns):
        if ns is None:
            return self.ipr
        s = self._ns.get(ns)
        if s is None:
            fd = os.open(ns_path(ns), os.O_RDONLY)
            try:
                pr_netns.pushns(fd)
                try:
                    s = IPRoute()
                finally:
                    pr_netns.popns()
            finally:
                os.close(fd)
            self._ns[ns] = s
        return s

    # -- reading ---------------------------------------------------------------------------------------------------
    def _read_links(self, s):
        msgs = list(s.get_links())
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in msgs}
        links = {}
        by_index = {}
        for m in msgs:
            v = _link_view(m, names)
            links[names[m["index"]]] = v
            by_index[m["index"]] = v
        for a in s.get_addr(family=socket.AF_INET):
            v = by_index.get(a["index"])
            if v is not None:
                v["addresses"].append("%s/%d" % (a.get_attr("IFA_ADDRESS"), a["prefixlen"]))
        for v in links.values():
            v["addresses"].sort()
        return links

    def _gateway_routes(self, s, names):
        """(default route or None, other routes via a gateway) of a container namespace's main table."""
        default, other = None, []
        for r in s.get_routes(family=socket.AF_INET, table=254):
            gw = r.get_attr("RTA_GATEWAY")
            if not gw:
                continue
            dev = names.get(r.get_attr("RTA_OIF"))
            if r["dst_len"] == 0:
                default = default or {"gateway": gw, "dev": dev}
            else:
                other.append({"dst": "%s/%d" % (r.get_attr("RTA_DST"), r["dst_len"]), "gateway": gw, "dev": dev})
        return default, other

    def _neighbours(self, s, names):
        out = []
        for n in s.get_neighbours(family=socket.AF_INET):
            if n["state"] & NUD_PERMANENT:
                out.append({"dev": names.get(n["ifindex"]), "ip": n.get_attr("NDA_DST"), "mac": n.get_attr("NDA_LLADDR")})
        return out

    def _fdb(self, links):
        """Remote entries (with a destination) of the VXLAN devices netstitch owns: one dump."""
        vx = {l["index"]: l for l in links.values() if l.get("kind") == "vxlan" and st.owned(l)}
        if not vx:
            return
        for f in self.ipr.fdb("dump"):
            l = vx.get(f["ifindex"])
            dst = f.get_attr("NDA_DST")
            if l is not None and dst and f["flags"] & NTF_SELF:
                l["fdb"].append([f.get_attr("NDA_LLADDR"), dst])
        for l in vx.values():
            l["fdb"].sort()

    def _routes(self):
        out = {}
        for r in self.ipr.get_routes(family=socket.AF_INET, table=254, proto=ROUTE_PROTO):
            if r["proto"] == ROUTE_PROTO:
                out["%s/%d" % (r.get_attr("RTA_DST") or "0.0.0.0", r["dst_len"])] = {"via": r.get_attr("RTA_GATEWAY")}
        return out

    def read(self, namespaces, sysctls=()):
        """Current state of the host namespace and the given container namespaces (missing ones map to None)."""
        links = self._read_links(self.ipr)
        self._index[None] = {n: l["index"] for n, l in links.items()}
        self._fdb(links)
        out = {"links": links, "netns": {}, "named_netns": list_named_netns(), "sysctl": {}, "routes": self._routes()}
        for ns in namespaces:
            if not os.path.exists(ns_path(ns)):
                out["netns"][ns] = None
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
        return bool(self.sock(ns).link_lookup(ifname=name))

    def _idx(self, ns, name):
        idx = self._index.setdefault(ns, {}).get(name)
        if idx is None:
            msgs = self.sock(ns).link("get", ifname=name)
            idx = msgs[0]["index"]
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

    def _do_netns_add(self, a):
        self.writes += 1
        create_named_netns([a["netns"]])

    def _do_netns_del(self, a):
        self.writes += 1
        s = self._ns.pop(a["netns"], None)
        if s is not None:
            s.close()
        remove_named_netns(a["netns"])

    def _do_bridge_add(self, a):
        self._write(self.ipr.link, "add", ifname=a["name"], kind="bridge", address=a["mac"], mtu=a["mtu"])
        idx = self._idx(None, a["name"])
        self._write(self.ipr.link, "set", index=idx, ifalias=a["alias"])

    def _do_veth_add(self, a):
        p = a["peer"]
        fd = os.open(ns_path(p["netns"]), os.O_RDONLY)
        try:
            self._write(self.ipr.link, "add", ifname=a["name"], kind="veth", mtu=a["mtu"],
                        master=self._idx(None, a["master"]), state="up",
                        peer={"ifname": p["name"], "net_ns_fd": fd, "mtu": p["mtu"], "address": p["mac"]})
        finally:
            os.close(fd)
        self._write(self.ipr.link, "set", index=self._idx(None, a["name"]), ifalias=a["alias"])

    def _do_link_set(self, a):
        ns, ch = a["ns"], a["changes"]
        s = self.sock(ns)
        kw = {}
        if "mtu" in ch:
            kw["mtu"] = ch["mtu"]
        if "mac" in ch:
            kw["address"] = ch["mac"]
        if "alias" in ch:
            kw["ifalias"] = ch["alias"]
        if "master" in ch:
            kw["master"] = self._idx(ns, ch["master"])
        if ch.get("up"):
            kw["state"] = "up"
        self._write(s.link, "set", index=self._idx(ns, a["name"]), **kw)

    def _do_addr_add(self, a):
        addr, plen = a["address"].split("/")
        self._write(self.sock(a["ns"]).addr, "add", index=self._idx(a["ns"], a["name"]), address=addr, prefixlen=int(plen))

    def _do_addr_del(self, a):
        addr, plen = a["address"].split("/")
        self._write(self.sock(a["ns"]).addr, "del", index=self._idx(a["ns"], a["name"]), address=addr, prefixlen=int(plen))

    def _do_route_replace(self, a):
        self._write(self.sock(a["ns"]).route, "replace", dst="0.0.0.0/0", gateway=a["gateway"],
                    oif=self._idx(a["ns"], a["dev"]))

    def _do_route_del_default(self, a):
        self._write(self.sock(a["ns"]).route, "del", dst="0.0.0.0/0", gateway=a["gateway"],
                    oif=self._idx(a["ns"], a["dev"]))

    def _do_route_add_ns(self, a):
        self._write(self.sock(a["ns"]).route, "replace", dst=a["dst"], gateway=a["gateway"],
                    oif=self._idx(a["ns"], a["dev"]))

    def _do_route_del_ns(self, a):
        self._write(self.sock(a["ns"]).route, "del", dst=a["dst"], gateway=a["gateway"],
                    oif=self._idx(a["ns"], a["dev"]))

    def _do_route_add(self, a):
        self._write(self.ipr.route, "replace" if a.get("replace") else "add", dst=a["dst"], gateway=a["via"],
                    proto=ROUTE_PROTO)

    def _do_route_del(self, a):
        self._write(self.ipr.route, "del", dst=a["dst"], gateway=a["via"], proto=ROUTE_PROTO)

    def _do_vxlan_add(self, a):
        self._write(self.ipr.link, "add", ifname=a["name"], kind="vxlan", vxlan_id=a["vni"], vxlan_local=a["local"],
                    vxlan_port=a["port"], vxlan_learning=1 if a["learning"] else 0, mtu=a["mtu"],
                    master=self._idx(None, a["master"]), state="up")
        self._write(self.ipr.link, "set", index=self._idx(None, a["name"]), ifalias=a["alias"])

    def _do_fdb_add(self, a):
        # the all-zero MAC (flooding) has one entry per peer: append; a unicast MAC has one destination: add
        self._write(self.ipr.fdb, "append" if a["mac"] == ZERO_MAC else "add", ifindex=self._idx(None, a["dev"]),
                    lladdr=a["mac"], dst=a["dst"])

    def _do_fdb_del(self, a):
        self._write(self.ipr.fdb, "del", ifindex=self._idx(None, a["dev"]), lladdr=a["mac"], dst=a["dst"])

    def _do_neigh_replace(self, a):
        self._write(self.sock(a["ns"]).neigh, "replace", dst=a["ip"], lladdr=a["mac"],
                    ifindex=self._idx(a["ns"], a["dev"]), state=NUD_PERMANENT)

    def _do_neigh_del(self, a):
        self._write(self.sock(a["ns"]).neigh, "del", dst=a["ip"], ifindex=self._idx(a["ns"], a["dev"]))

    def _do_link_del(self, a):
        try:
            self._write(self.sock(a["ns"]).link, "del", index=self._idx(a["ns"], a["name"]))
        except NetlinkError as e:
            if e.code != errno.ENODEV:  # already gone (its namespace was destroyed meanwhile): that is the goal
                raise
        self._index.get(a["ns"], {}).pop(a["name"], None)


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
