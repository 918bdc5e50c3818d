# -*- coding: utf-8 -*-
# Copyright: netstitch contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker plugin's protocol core (pure): one libnetwork call -> (response, actions, new plugin state).

netstitch answers Docker as a remote network driver (``NetworkDriver``) and as an IPAM driver (``IpamDriver``) at
once. Nothing here touches a host or Docker: the server hands in the call, the plugin's own state (docker networks,
endpoints, pools, leases it gave out) and a *view* of the host (the last applied spec and the addresses the Ansible
path holds), and executes the returned actions; only when they all succeed does it keep the new state.

Rules this core enforces (see docs/docker-plugin.md):
- scope ``local`` with connectivity scope ``global``: each host allocates from its own pool of the topology network;
- pools are never chosen: an automatic pool request is refused (Docker checks an automatic pool against the host's
  routes, netstitch's bridge already routes it, and Docker would ask again in a loop: moby/libnetwork#1386); a pool
  is handed out once per host, so a re-ask is refused as well;
- errors: ``{"Err": ...}`` for the network driver, ``{"Error": ...}`` for IPAM;
- releases of something unknown (a gateway Docker never requested, a call after a lost state) are tolerated.
"""

import copy
import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.common import (  # noqa: F401 (the core's names)
    ADDRESS_SPACE, GATEWAY_KEY, IPAM_METHODS, NET_METHODS, OPT_NETWORK, PLUGIN_CONTAINER, REQUEST_TYPE, Fail,
    Result, canon6, empty_state, host_ifname, mac_of, moved_ifname, names_of, net_of, parse_pool_id, pool_id, pool_v6)
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.ipam import _reserved6 as reserved6
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.net_calls import NetCalls

__all__ = ["ADDRESS_SPACE", "IPAM_METHODS", "NET_METHODS", "PLUGIN_CONTAINER", "Core", "Fail", "Result", "empty_state",
           "host_ifname", "mac_of", "moved_ifname", "reserved", "with_published"]


def _pool6(n):
    """Where this host hands out IPv6 addresses of a network: its IPv6 slice of an overlay, else the subnet6."""
    return ipaddress.IPv6Network(n.get("pool6") or n["subnet6"])


class Core(NetCalls):
    """The two drivers of one host. ``name`` is the plugin name Docker knows (for messages); ``view`` (per call) is
    {"host": name, "networks": {name: host spec network}, "taken": {network: set of addresses the Ansible path
    holds}, "published": {(proto, host_ip or None, port): owner} of the topology} or None when nothing was applied."""

    def __init__(self, name="netstitch"):
        self.name = name

    def handle(self, path, body, state, view, now=0.0):
        iface, _dot, method = path.lstrip("/").partition(".")
        body = body if isinstance(body, dict) else {}
        st = copy.deepcopy(state)
        if iface == "Plugin" and method == "Activate":
            return Result({"Implements": ["NetworkDriver", "IpamDriver"]}, state=st)
        if iface == "IpamDriver" and method in IPAM_METHODS:
            key, fn = "Error", getattr(self, "ipam_" + method)
        elif iface == "NetworkDriver" and method in NET_METHODS:
            key, fn = "Err", getattr(self, "net_" + method)
        else:
            return Result({"Err": "%s: %s is not implemented" % (self.name, path)}, state=state, status=404)
        try:
            resp, actions = fn(body, st, view, now)
        except Fail as e:
            return Result({key: "%s: %s" % (self.name, e)}, state=state)
        return Result(resp, actions, st)

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _need_view(self, view):
        if view is None or view.get("networks") is None:
            raise Fail("nothing was applied on this host yet (no topology in the state directory); run the netstitch "
                       "apply for this host first")
        return view

    def _network_of_pool(self, view, pid):
        name = parse_pool_id(pid)
        if name is None:
            raise Fail("pool %r is not one of netstitch's" % pid)
        n = net_of(view, name)
        if n is None:
            raise Fail("network %s is no longer in the topology of host %s" % (name, view["host"]))
        return name, n

    def _taken(self, view, st, name, n):
        subnet = ipaddress.IPv4Network(n["subnet"])
        taken = {str(subnet.network_address), str(subnet.broadcast_address), n["gateway"]}
        taken.update(n.get("reserved", ()))
        taken.update(view.get("taken", {}).get(name, ()))
        taken.update(st["leases"].get(name, {}))
        return taken

    # -- IPAM --------------------------------------------------------------------------------------------------------
    def ipam_GetCapabilities(self, body, st, view, now):
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}, []

    def ipam_GetDefaultAddressSpaces(self, body, st, view, now):
        return {"LocalDefaultAddressSpace": ADDRESS_SPACE, "GlobalDefaultAddressSpace": ADDRESS_SPACE}, []

    def ipam_RequestPool(self, body, st, view, now):
        view = self._need_view(view)
        if body.get("V6"):
            return self._request_pool6(body, st, view)
        opts = body.get("Options") or {}
        want = opts.get(OPT_NETWORK)
        pool = body.get("Pool") or ""
        if not pool:
            raise Fail("give the subnet of the netstitch network (docker network create --subnet ...): an automatic "
                       "pool is never offered, because Docker checks it against the host's routes, where netstitch's "
                       "bridge already routes it, and would ask again in a loop; networks of host %s: %s"
                       % (view["host"], names_of(view)))
        try:
            pool = str(ipaddress.IPv4Network(pool, strict=False))
        except ValueError:
            raise Fail("pool %r is not an IPv4 subnet" % pool)
        found = [nm for nm, n in sorted(view["networks"].items()) if n["subnet"] == pool]
        if want is not None and (want not in view["networks"]):
            raise Fail("network %s is not in the topology of host %s (networks: %s)" % (want, view["host"], names_of(view)))
        if want is not None and not view["networks"][want]["subnet"]:
            six = view["networks"][want].get("subnet6")
            raise Fail("network %s is IPv6-only (subnet6 %s) on host %s: netstitch's plugin offers IPv6 beside IPv4 "
                       "(dual stack), not IPv6-only networks yet" % (want, six, view["host"]))
        if want is not None and want not in found:
            have = view["networks"][want]["subnet"]
            raise Fail("network %s has subnet %s on host %s, not %s" % (want, have, view["host"], pool))
        if not found:
            raise Fail("no network of host %s's topology has subnet %s (networks: %s)"
                       % (view["host"], pool, names_of(view)))
        name = want or found[0]
        n = view["networks"][name]
        pid = pool_id(name, pool)
        if pid in st["pools"]:
            raise Fail("the pool %s of network %s is already handed out to Docker on host %s (one Docker network per "
                       "netstitch network and host)" % (pool, name, view["host"]))
        sub = body.get("SubPool") or ""
        if sub:
            try:
                subnet = ipaddress.IPv4Network(sub, strict=False)
            except ValueError:
                raise Fail("--ip-range %r is not an IPv4 subnet" % sub)
            if not subnet.subnet_of(ipaddress.IPv4Network(n["pool"])):
                raise Fail("--ip-range %s is outside host %s's pool %s of network %s"
                           % (sub, view["host"], n["pool"], name))
            sub = str(subnet)
        plen = ipaddress.IPv4Network(pool).prefixlen
        st["pools"][pid] = {"network": name, "pool": pool, "sub": sub or None}
        return {"PoolID": pid, "Pool": pool, "Data": {GATEWAY_KEY: "%s/%d" % (n["gateway"], plen)}}, []

    def ipam_ReleasePool(self, body, st, view, now):
        st["pools"].pop(body.get("PoolID"), None)     # unknown: tolerated
        return {}, []

    def ipam_RequestAddress(self, body, st, view, now):
        view = self._need_view(view)
        pid = body.get("PoolID")
        name, n = self._network_of_pool(view, pid)
        if pool_v6(pid):
            return self._request_address6(body, st, view, now, pid, name, n)
        plen = ipaddress.IPv4Network(n["subnet"]).prefixlen
        want = body.get("Address") or ""
        if (body.get("Options") or {}).get(REQUEST_TYPE) == GATEWAY_KEY:
            if want and want != n["gateway"]:
                raise Fail("the gateway of network %s is %s (from the topology), not %s" % (name, n["gateway"], want))
            return {"Address": "%s/%d" % (n["gateway"], plen), "Data": {}}, []
        taken = self._taken(view, st, name, n)
        pool = ipaddress.IPv4Network(n["pool"])
        sub = (st["pools"].get(pid) or {}).get("sub")
        if want:
            try:
                addr = ipaddress.IPv4Address(want)
            except ValueError:
                raise Fail("%r is not an IPv4 address" % want)
            if addr not in pool:
                raise Fail("%s is outside host %s's pool %s of network %s" % (want, view["host"], pool, name))
            if str(addr) in taken:
                raise Fail("%s is in use on network %s (host %s)" % (want, name, view["host"]))
        else:
            addr = None
            for a in (ipaddress.IPv4Network(sub) if sub else pool):
                if str(a) not in taken:
                    addr = a
                    break
            if addr is None:
                raise Fail("no free address left in host %s's pool %s of network %s"
                           % (view["host"], sub or pool, name))
        st["leases"].setdefault(name, {})[str(addr)] = {"endpoint": None, "since": now}
        return {"Address": "%s/%d" % (addr, plen), "Data": {}}, []

    def ipam_ReleaseAddress(self, body, st, view, now):
        name = parse_pool_id(body.get("PoolID"))
        addr = (body.get("Address") or "").split("/")[0]
        key = "leases6" if pool_v6(body.get("PoolID")) else "leases"    # each family's own leases
        if key == "leases6":
            addr = canon6(addr)
        leases = st.setdefault(key, {}).get(name) or {}
        leases.pop(addr, None)      # unknown (the gateway, a lost state): tolerated
        if name in st[key] and not leases:
            del st[key][name]
        return {}, []

    # -- IPAM, IPv6 (a dual-stack network: docker network create --ipv6 ... --subnet <subnet6>) -----------------------
    def _request_pool6(self, body, st, view):
        pool = body.get("Pool") or ""
        want = (body.get("Options") or {}).get(OPT_NETWORK)
        if not pool:
            raise Fail("give the subnet6 of the netstitch network (docker network create --ipv6 --subnet <subnet> "
                       "--subnet <subnet6>): an automatic IPv6 pool is never offered")
        try:
            net6 = ipaddress.IPv6Network(pool, strict=False)
        except ValueError:
            raise Fail("pool %r is not an IPv6 subnet" % pool)
        found = [nm for nm, n in sorted(view["networks"].items())
                 if n.get("subnet6") and ipaddress.IPv6Network(n["subnet6"]) == net6 and (want is None or nm == want)]
        if not found:
            raise Fail("no network of host %s's topology has subnet6 %s%s" % (
                view["host"], net6, "" if want is None else " (network %s)" % want))
        name = found[0]
        n = view["networks"][name]
        pid = pool_id(name, str(net6))
        if pid in st["pools"]:
            raise Fail("the IPv6 pool %s of network %s is already handed out to Docker on host %s"
                       % (net6, name, view["host"]))
        sub = body.get("SubPool") or ""
        if sub:
            try:
                sub6 = ipaddress.IPv6Network(sub, strict=False)
            except ValueError:
                raise Fail("--ip-range %r is not an IPv6 subnet" % sub)
            if not sub6.subnet_of(_pool6(n)):
                raise Fail("--ip-range %s is outside host %s's IPv6 pool %s of network %s"
                           % (sub6, view["host"], _pool6(n), name))
            sub = str(sub6)
        st["pools"][pid] = {"network": name, "pool": str(net6), "sub": sub or None, "v6": True}
        return {"PoolID": pid, "Pool": str(net6), "Data": {GATEWAY_KEY: "%s/%d" % (n["gateway6"], net6.prefixlen)}}, []

    def _request_address6(self, body, st, view, now, pid, name, n):
        subnet = ipaddress.IPv6Network(n["subnet6"])
        want = body.get("Address") or ""
        if (body.get("Options") or {}).get(REQUEST_TYPE) == GATEWAY_KEY:
            if want and canon6(want) != n["gateway6"]:
                raise Fail("the gateway6 of network %s is %s (from the topology), not %s" % (name, n["gateway6"], want))
            return {"Address": "%s/%d" % (n["gateway6"], subnet.prefixlen), "Data": {}}, []
        pool = _pool6(n)
        taken = {n["gateway6"]} | set(n.get("reserved6", ())) | set(view.get("taken", {}).get(name, ())) | \
            set(st.setdefault("leases6", {}).get(name, {}))
        rng = (n.get("docker") or {}).get("ip_range6")     # the bridge driver's range, where offered that way too
        rng = ipaddress.IPv6Network(rng) if rng else None

        def free(a):
            return str(a) not in taken and not reserved6(a, subnet) and not (rng and a in rng)
        if want:
            try:
                addr = ipaddress.IPv6Address(want.split("/")[0])
            except ValueError:
                raise Fail("%r is not an IPv6 address" % want)
            if addr not in pool:
                raise Fail("%s is outside host %s's IPv6 pool %s of network %s" % (addr, view["host"], pool, name))
            if not free(addr):
                raise Fail("%s is in use or reserved on network %s (host %s)" % (addr, name, view["host"]))
        else:
            sub = (st["pools"].get(pid) or {}).get("sub")
            block = ipaddress.IPv6Network(sub) if sub else pool
            addr = next((ipaddress.IPv6Address(v) for v in range(int(block.network_address), int(
                block.broadcast_address) + 1) if free(ipaddress.IPv6Address(v))), None)
            if addr is None:
                raise Fail("no free IPv6 address left in host %s's pool %s of network %s" % (view["host"], block, name))
        st["leases6"].setdefault(name, {})[str(addr)] = {"endpoint": None, "since": now}
        return {"Address": "%s/%d" % (addr, subnet.prefixlen), "Data": {}}, []

    # -- network driver ----------------------------------------------------------------------------------------------


# -- what the apply keeps of the plugin's (pure; ``state`` as the host side reads it) --------------------------------
def reserved(state, extra=None, key="leases"):
    """{network: addresses} never to hand out: ``extra`` plus every address the plugin gave out (``key``: its IPv4
    leases, or "leases6" for its IPv6 ones: each family's own, never read as the other)."""
    out = {k: list(v) for k, v in (extra or {}).items()}
    for net, leases in sorted((state or {}).get(key, {}).items()):
        out[net] = sorted(set(out.get(net, ())) | set(leases), key=ipaddress.ip_address)
    return out


def with_published(spec, addresses, state):
    """(spec, addresses) for the nft tables with the ports the plugin's endpoints publish: new objects, the inputs
    stay as they are. A plugin endpoint is the container ``plugin:<endpoint>`` with interface ``eth``."""
    known = {n["name"] for n in spec["networks"]}
    publish, extra = list(spec.get("publish", [])), {}
    for eid, rec in sorted((state or {}).get("endpoints", {}).items()):
        if rec["network"] not in known or not rec["ports"]:
            continue
        ref = (PLUGIN_CONTAINER + eid[:12], "eth")
        extra[ref] = ipaddress.IPv4Address(rec["address"].split("/")[0])
        for p in rec["ports"]:
            publish.append({"container": ref[0], "ifname": "eth", "network": rec["network"], "host_ip": p["host_ip"],
                            "protocol": p["protocol"], "host_port": p["host_port"],
                            "container_port": p["container_port"]})
    if not extra:
        return spec, addresses
    out = dict(addresses)
    out.update(extra)
    return dict(spec, publish=publish), out
