"""Netlink driver: reads a host's state with a constant number of dumps per namespace and executes the planner's
actions. Every write goes through ``_write`` so the number of kernel writes is counted. The netlink messages
themselves are made and decoded by the small client in ``rtnl`` (one socket per namespace)."""

import errno
import ipaddress
import os
import random
import socket

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import ZERO_MAC, ops_of
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import rtnl
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netns import (
    MountScope, broken_named_netns, create_named_netns, list_named_netns, ns_path, remove_named_netns)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.linkview import canon, link_view
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.rtnl import NetlinkError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.sysctls import (  # noqa: F401
    in_netns, read_sysctl, write_sysctl)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import ROUTE_PROTO

IFF_UP = 1
NUD_PERMANENT = 0x80
NTF_SELF = 0x02


class Netlink(object):
    """One driver per run: one socket for the host namespace, one per container namespace, opened on demand."""

    def __init__(self):
        self.writes = 0
        # the namespace this thread is in: sockets for other namespaces are made there, then the thread comes back
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.ipr = rtnl.Socket()
        self._ns = {}
        self._index = {None: {}}   # ns -> {ifname: index}
        self._ops = None
        self.next_group = _random_group     # the link group of a batch removal (a seam for tests)
        self._scope = None                  # MountScope, made at the first namespace added or removed

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
            v = link_view(l, names)
            links[l["name"]] = v
            by_index[l["index"]] = v
        for index, addr in s.addresses4():
            v = by_index.get(index)
            if v is not None:
                v["addresses"].append(addr)
        for index, addr in s.addresses4(socket.AF_INET6):
            v = by_index.get(index)
            if v is not None:
                # canonical text (RFC 5952, as the host spec has it): a spelling never makes a change
                v["addresses6"].append(str(ipaddress.IPv6Interface(addr)))
        for v in links.values():
            if len(v["addresses"]) > 1:
                v["addresses"].sort()
            if len(v["addresses6"]) > 1:
                v["addresses6"].sort()
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

    def _routes6(self, s, names):
        """(the IPv6 default route via a gateway or None, the other IPv6 routes via a gateway) of a container
        namespace's main table, in canonical text."""
        default, other = None, []
        for r in s.routes4(family=socket.AF_INET6):
            if r["gateway"] and r["dst_len"] == 0:
                default = default or {"gateway": canon(r["gateway"]), "dev": names.get(r["oif"])}
            elif r["gateway"]:
                other.append({"dst": "%s/%d" % (canon(r["dst"]), r["dst_len"]), "gateway": canon(r["gateway"]),
                              "dev": names.get(r["oif"])})
        return default, other

    def _neighbours(self, s, names):
        """Permanent neighbour entries of both families (one dump); IPv6 ones in canonical text."""
        out = []
        for n in s.neighbours(socket.AF_UNSPEC):
            if n["state"] & NUD_PERMANENT and n["dst"]:
                ip = str(ipaddress.IPv6Address(n["dst"])) if ":" in n["dst"] else n["dst"]
                out.append({"dev": names.get(n["ifindex"]), "ip": ip, "mac": n["lladdr"]})
        return out

    def _fdb(self, links):
        """Remote entries (with a destination) of the VXLAN devices netstitch owns: one dump."""
        vx = {l["index"]: l for l in links.values() if l.get("kind") == "vxlan" and marks.owned(l)}
        if not vx:
            return
        for f in self.ipr.neighbours(rtnl.AF_BRIDGE):
            l = vx.get(f["ifindex"])
            # only permanent entries are netstitch's: what a learning VXLAN device learnt comes and goes
            if l is not None and f["dst"] and f["flags"] & NTF_SELF and f["state"] & NUD_PERMANENT:
                l["fdb"].append([f["lladdr"], canon(f["dst"])])
        for l in vx.values():
            l["fdb"].sort()

    def _routes(self):
        """netstitch's routes of the host's main table, both families: {dst: {"via"}} (and "dev" for a link-local
        next hop, which means something only on its interface)."""
        out = {}
        names = None
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in self.ipr.routes4(family=family):
                if r["proto"] != ROUTE_PROTO:
                    continue
                dst = "%s/%d" % (canon(r["dst"]) or ("::" if family == socket.AF_INET6 else "0.0.0.0"), r["dst_len"])
                out[dst] = {"via": canon(r["gateway"])}
                if r["gateway"] and r["gateway"].lower().startswith("fe80:"):
                    if names is None:
                        names = {i: n for n, i in self._index.get(None, {}).items()}
                    out[dst]["dev"] = names.get(r["oif"])
        return out

    def link_local(self, ifname):
        """The kernel's IPv6 link-local address of a host interface (without its prefix length), or None."""
        index = self.ipr.link_index(ifname)
        for i, addr in self.ipr.addresses4(socket.AF_INET6, scope=rtnl.RT_SCOPE_LINK):
            if i == index:
                return str(ipaddress.IPv6Interface(addr).ip)
        return None

    def read(self, namespaces, sysctls=()):
        """Current state of the host namespace and the given container namespaces (missing ones map to None)."""
        links = self._read_links(self.ipr)
        self._index[None] = {n: l["index"] for n, l in links.items()}
        self._fdb(links)
        named = list_named_netns()
        out = {"links": links, "netns": {}, "named_netns": named, "broken_netns": broken_named_netns(named),
               "sysctl": {}, "routes": self._routes()}
        broken = set(out["broken_netns"])
        for ns in namespaces:
            if ns in broken or not os.path.exists(ns_path(ns)):
                out["netns"][ns] = None     # missing, or half-made (no namespace to enter): see plan
                continue
            s = self.sock(ns)
            nlinks = self._read_links(s)
            names = {l["index"]: n for n, l in nlinks.items()}
            self._index[ns] = {n: l["index"] for n, l in nlinks.items()}
            default, routes = self._gateway_routes(s, names)
            out["netns"][ns] = {"links": nlinks, "default_route": default, "routes": routes,
                                "neighbours": self._neighbours(s, names)}
            # read even without an IPv6 address there: the kernel keeps a route via a gateway when the address goes
            route6, routes6 = self._routes6(s, names)
            routes += routes6
            if route6 is not None:      # only then: the current state of an IPv4-only host reads as before
                out["netns"][ns]["default_route6"] = route6
        for key in sysctls:
            out["sysctl"][key] = read_sysctl(key)
        return out

    # -- writing ---------------------------------------------------------------------------------------------------
    def _write(self, fn, *args, **kw):
        self.writes += 1
        faults.point("netlink %s" % fn.__name__)
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
        """Carry out one action of the netlink driver's operations (actions.OPS)."""
        if self._ops is None:
            # the table of operations: every op actions.OPS gives this driver has its handler (checked once)
            self._ops = {op: getattr(self, "_do_" + op) for op in ops_of("netlink")}
        try:
            self._ops[action["op"]](action)
        except NetlinkError as e:
            raise ApplyError("%s: kernel said: %s" % (action["text"], e.args[1] if len(e.args) > 1 else e))
        except OSError as e:
            raise ApplyError("%s: %s" % (action["text"], e))

    def _do_sysctl_set(self, a):
        self.writes += 1
        faults.point("sysctl %s" % a["key"])
        if not a.get("ns"):
            write_sysctl(a["key"], a["value"])
            return
        in_netns(a["ns"], self._home, write_sysctl, a["key"], a["value"])     # a container's own setting

    def read_ns_sysctl(self, ns, key):
        """A sysctl of a container namespace (kinds.chain: a service's forwarding), or None."""
        return in_netns(ns, self._home, read_sysctl, key)

    def mount_scope(self):
        """Where this run makes and removes namespace files (see netns.MountScope); raises ApplyError where it
        cannot do so where the rest of the system sees them. The reconcile calls it before the first change of a run
        that adds, removes or clears namespaces, so such a run is refused before it changes anything."""
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

    def _do_netns_clear(self, a):
        """Remove what an interrupted create or removal left at /run/netns/NAME (an empty file), or what a namespace
        made in a mount namespace that has ended left there (a dead entry)."""
        self.writes += 1
        remove_named_netns(a["netns"], self.mount_scope())

    def _do_bridge_add(self, a):
        self._write(self.ipr.link_add, a["name"], "bridge", mtu=a["mtu"], address=a["mac"], group=marks.MARK_GROUP)
        idx = self._idx(None, a["name"])
        self._write(self.ipr.link_set, idx, alias=a["alias"])

    def _do_veth_add(self, a):
        p = a["peer"]
        fd = os.open(ns_path(p["netns"]), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._write(self.ipr.veth_add, a["name"], a["mtu"], a["master"] and self._idx(None, a["master"]), True,
                        p["name"], fd, p["mtu"], p["mac"], group=marks.MARK_GROUP)
        finally:
            os.close(fd)
        self._write(self.ipr.link_set, self._idx(None, a["name"]), alias=a["alias"],
                    hairpin=True if a.get("hairpin") else None)

    def _do_link_set(self, a):
        ns, ch = a["ns"], a["changes"]
        self._write(self.sock(ns).link_set, self._idx(ns, a["name"]), mtu=ch.get("mtu"), address=ch.get("mac"),
                    alias=ch.get("alias"), master=self._idx(ns, ch["master"]) if "master" in ch else None,
                    up=bool(ch.get("up")))
        if "hairpin" in ch:     # after a change of master (the kernel applies slave data before it)
            self._write(self.sock(ns).link_set, self._idx(ns, a["name"]), hairpin=ch["hairpin"])

    def _do_macvlan_add(self, a):
        fd = os.open(ns_path(a["ns"]), os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._write(self.ipr.macvlan_add, a["name"], self._idx(None, a["parent"]), fd, a["mtu"], a["mac"],
                        group=marks.MARK_GROUP)
        finally:
            os.close(fd)
        self._write(self.sock(a["ns"]).link_set, self._idx(a["ns"], a["name"]), alias=a["alias"])

    def _do_port_attach(self, a):
        # by the index read when planned: an interface of that name made anew since is not the one planned for
        self._write(self.ipr.link_set, a["index"], master=self._idx(None, a["master"]))

    def _do_port_release(self, a):
        self._write(self.ipr.link_set, a["index"], master=0)

    def _do_addr_add(self, a):
        addr, plen = a["address"].split("/")
        self._write(self.sock(a["ns"]).addr, "add", self._idx(a["ns"], a["name"]), addr, int(plen))

    def _do_addr_del(self, a):
        addr, plen = a["address"].split("/")
        self._write(self.sock(a["ns"]).addr, "del", self._idx(a["ns"], a["name"]), addr, int(plen))

    def _do_route_replace(self, a):
        self._write(self.sock(a["ns"]).route, "replace", "::/0" if ":" in a["gateway"] else "0.0.0.0/0", a["gateway"],
                    oif=self._idx(a["ns"], a["dev"]))

    def _do_route_del_default(self, a):
        self._write(self.sock(a["ns"]).route, "del", "::/0" if ":" in a["gateway"] else "0.0.0.0/0", a["gateway"],
                    oif=self._idx(a["ns"], a["dev"]))

    def _do_route_add_ns(self, a):
        self._write(self.sock(a["ns"]).route, "replace", a["dst"], a["gateway"], oif=self._idx(a["ns"], a["dev"]))

    def _do_route_del_ns(self, a):
        self._write(self.sock(a["ns"]).route, "del", a["dst"], a["gateway"], oif=self._idx(a["ns"], a["dev"]))

    def _do_route_add(self, a):
        self._write(self.ipr.route, "replace" if a.get("replace") else "add", a["dst"], a["via"], proto=ROUTE_PROTO,
                    oif=self._idx(None, a["dev"]) if a.get("dev") else None)

    def _do_route_del(self, a):
        self._write(self.ipr.route, "del", a["dst"], a["via"], proto=ROUTE_PROTO,
                    oif=self._idx(None, a["dev"]) if a.get("dev") else None)

    def _do_vxlan_add(self, a):
        self._write(self.ipr.vxlan_add, a["name"], a["vni"], a["local"], a["port"], a["learning"], a["mtu"],
                    self._idx(None, a["master"]), group=marks.MARK_GROUP)
        self._write(self.ipr.link_set, self._idx(None, a["name"]), alias=a["alias"])

    def _do_fdb_add(self, a):
        # the all-zero MAC (flooding) has one entry per peer: append; a unicast MAC has one destination: replace
        # (a learning VXLAN device may have learnt it already; the permanent entry takes its place)
        self._write(self.ipr.fdb, "append" if a["mac"] == ZERO_MAC else "replace", self._idx(None, a["dev"]),
                    a["mac"], a["dst"])

    def _do_fdb_del(self, a):
        self._write(self.ipr.fdb, "del", self._idx(None, a["dev"]), a["mac"], a["dst"])

    def _do_neigh_replace(self, a):
        self._write(self.sock(a["ns"]).neigh, "replace", self._idx(a["ns"], a["dev"]), a["ip"], a["mac"])

    def _do_neigh_del(self, a):
        try:
            self._write(self.sock(a["ns"]).neigh, "del", self._idx(a["ns"], a["dev"]), a["ip"])
        except NetlinkError as e:
            # already gone (the kernel drops an interface's neighbours with it, and with its last address): the goal
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
        group = self.next_group()
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
