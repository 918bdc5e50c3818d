# -*- coding: utf-8 -*-
# Copyright: netstitch contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network driver half of the Docker plugin's protocol core (pure): NetworkDriver.* calls (see core.py)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.common import GENERIC, INTERNAL, OPT_NETWORK, PORTMAP, PROTOCOLS, ADDRESS_SPACE
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.common import Fail, host_ifname, mac_of, moved_ifname, net_of, short
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin.common import canon6, canon_net


class NetCalls(object):
    """NetworkDriver.<Method> is ``net_<Method>``; errors raise Fail (the core answers them in ``Err``)."""

    def net_GetCapabilities(self, body, st, view, now):
        return {"Scope": "local", "ConnectivityScope": "global"}, []

    def net_AllocateNetwork(self, body, st, view, now):
        raise Fail("swarm networks are not supported (netstitch is a local-scope driver)")

    net_FreeNetwork = net_AllocateNetwork

    def net_DiscoverNew(self, body, st, view, now):
        return {}, []

    net_DiscoverDelete = net_DiscoverNew

    def net_CreateNetwork(self, body, st, view, now):
        view = self._need_view(view)
        nid = body.get("NetworkID") or ""
        opts = body.get("Options") or {}
        v4, v6 = body.get("IPv4Data") or [], body.get("IPv6Data") or []
        if len(v4) != 1 or v4[0].get("AddressSpace") != ADDRESS_SPACE:
            raise Fail("use netstitch's IPAM as well: docker network create -d %s --ipam-driver %s --subnet <subnet> "
                       "(one subnet)" % (self.name, self.name))
        pool = v4[0].get("Pool")
        found = [nm for nm, n in sorted(view["networks"].items()) if n["subnet"] == pool]
        if not found:
            raise Fail("no network of host %s's topology has subnet %s" % (view["host"], pool))
        want = (opts.get(GENERIC) or {}).get(OPT_NETWORK)
        if want is not None and want not in found:
            raise Fail("-o %s=%s does not match subnet %s (network %s)" % (OPT_NETWORK, want, pool, found[0]))
        name = want or found[0]
        n = view["networks"][name]
        for other, rec in st["networks"].items():
            if rec["network"] == name and other != nid:
                raise Fail("network %s is already bound to Docker network %s on host %s"
                           % (name, short(other), view["host"]))
        if opts.get(INTERNAL) and not n["internal"]:
            raise Fail("--internal: network %s is not internal in the topology (set internal: true there)" % name)
        if v6 and (len(v6) != 1 or v6[0].get("AddressSpace") != ADDRESS_SPACE or not n.get("subnet6") or
                   canon_net(v6[0].get("Pool")) != n["subnet6"]):
            raise Fail("IPv6: network %s %s; give its subnet6 from netstitch's IPAM (--ipv6 --subnet %s --subnet "
                       "<subnet6>)" % (name, "has subnet6 %s" % n["subnet6"] if n.get("subnet6") else
                                       "has no subnet6 in the topology", pool))
        st["networks"][nid] = {"network": name, "subnet": pool, "internal": bool(n["internal"])}
        if v6:
            st["networks"][nid]["subnet6"] = n["subnet6"]
        return {}, [{"op": "check_bridge", "name": n["bridge"], "network": name,
                     "text": "check bridge %s of network %s" % (n["bridge"], name)}]

    def net_DeleteNetwork(self, body, st, view, now):
        nid = body.get("NetworkID") or ""
        st["networks"].pop(nid, None)
        actions = []
        for eid in sorted(e for e, rec in st["endpoints"].items() if rec["docker_network"] == nid):
            actions += self._drop_endpoint(st, eid)
        return {}, actions

    def net_CreateEndpoint(self, body, st, view, now):
        view = self._need_view(view)
        nid, eid = body.get("NetworkID") or "", body.get("EndpointID") or ""
        rec = st["networks"].get(nid)
        if rec is None:
            raise Fail("Docker network %s is unknown to netstitch (its state was lost?); re-create the network"
                       % short(nid))
        name = rec["network"]
        n = net_of(view, name)
        if n is None:
            raise Fail("network %s is no longer in the topology of host %s" % (name, view["host"]))
        itf = body.get("Interface") or {}
        address6 = itf.get("AddressIPv6") or None
        if address6 and not rec.get("subnet6"):
            raise Fail("the endpoint has an IPv6 address but Docker network %s has no IPv6 subnet of netstitch's"
                       % short(nid))
        address = itf.get("Address") or ""
        if not address:
            raise Fail("the endpoint has no IPv4 address (use --ipam-driver %s)" % self.name)
        ip = address.split("/")[0]
        mac = itf.get("MacAddress") or mac_of(ip)
        old = st["endpoints"].get(eid)
        if old is not None:        # a repeated call: the same answer, nothing to do again
            return ({"Interface": {} if itf.get("MacAddress") else {"MacAddress": old["mac"]}}, [])
        lease = st["leases"].setdefault(name, {}).setdefault(ip, {"endpoint": None, "since": now})
        lease["endpoint"] = eid
        ports = _ports(body.get("Options") or {})
        st["endpoints"][eid] = {"docker_network": nid, "network": name, "address": address, "mac": mac,
                                "host_ifname": host_ifname(eid), "ports": [], "requested_ports": ports,
                                "created": now, "sandbox": None}
        if address6:
            ip6 = canon6(address6)
            st.setdefault("leases6", {}).setdefault(name, {}).setdefault(ip6, {"endpoint": None, "since": now})[
                "endpoint"] = eid
            st["endpoints"][eid]["address6"] = "%s/%s" % (ip6, address6.partition("/")[2] or "128")
        action = {"op": "plugin_veth_add", "name": host_ifname(eid), "peer": moved_ifname(eid), "master": n["bridge"],
                  "mtu": n["mtu"], "mac": mac, "alias": marks.plugin_veth_alias(short(eid), name),
                  "text": "create veth %s on %s for endpoint %s (%s, mtu %d)" % (
                      host_ifname(eid), n["bridge"], short(eid), address, n["mtu"])}
        return {"Interface": {} if itf.get("MacAddress") else {"MacAddress": mac}}, [action]

    def _drop_endpoint(self, st, eid):
        rec = st["endpoints"].pop(eid, None)
        if rec is None:
            return []
        actions = [{"op": "link_del", "ns": None, "name": rec["host_ifname"],
                    "text": "remove veth %s of endpoint %s" % (rec["host_ifname"], short(eid))}]
        if rec["ports"]:
            actions.append({"op": "ports_sync", "release": True,
                            "text": "unpublish the ports of endpoint %s" % short(eid)})
        return actions

    def net_DeleteEndpoint(self, body, st, view, now):
        eid = body.get("EndpointID") or ""
        rec = st["endpoints"].get(eid)
        actions = self._drop_endpoint(st, eid)      # unknown: tolerated
        if rec is not None:
            lease = (st["leases"].get(rec["network"]) or {}).get(rec["address"].split("/")[0])
            if lease is not None and lease.get("endpoint") == eid:
                lease["endpoint"] = None            # the address itself goes with ReleaseAddress
            lease6 = (st.get("leases6", {}).get(rec["network"]) or {}).get(canon6(rec.get("address6")))
            if rec.get("address6") and lease6 is not None and lease6.get("endpoint") == eid:
                lease6["endpoint"] = None
        return {}, actions

    def net_EndpointOperInfo(self, body, st, view, now):
        rec = st["endpoints"].get(body.get("EndpointID") or "")
        if rec is None:
            return {"Value": {}}, []
        value = {"netstitch.network": rec["network"], "netstitch.address": rec["address"],
                 "netstitch.host_ifname": rec["host_ifname"]}
        if rec.get("address6"):
            value["netstitch.address6"] = rec["address6"]
        if rec["ports"]:
            value["netstitch.published"] = ["%s %s:%d->%d" % (p["protocol"], p["host_ip"] or "*", p["host_port"],
                                                              p["container_port"]) for p in rec["ports"]]
        return {"Value": value}, []

    def net_Join(self, body, st, view, now):
        view = self._need_view(view)
        eid = body.get("EndpointID") or ""
        rec = st["endpoints"].get(eid)
        if rec is None:
            raise Fail("endpoint %s is unknown to netstitch" % short(eid))
        n = net_of(view, rec["network"])
        if n is None:
            raise Fail("network %s is no longer in the topology of host %s" % (rec["network"], view["host"]))
        rec["sandbox"] = body.get("SandboxKey")
        resp = {"InterfaceName": {"SrcName": moved_ifname(eid), "DstPrefix": "eth"},
                "DisableGatewayService": True}
        o = n.get("overlay") or {}
        actions = []
        six = bool(rec.get("address6") and n.get("gateway6"))     # (a subnet6 dropped since: IPv4 only)
        if not n["internal"]:
            resp["Gateway"] = n["gateway"]
            if six:
                resp["GatewayIPv6"] = n["gateway6"]
            if o.get("type") == "routed":
                resp["StaticRoutes"] = [{"Destination": o["subnet"], "RouteType": 0, "NextHop": n["gateway"]}]
        elif o.get("type") == "routed":
            resp["StaticRoutes"] = [{"Destination": o["subnet"], "RouteType": 0, "NextHop": n["gateway"]}]
        if o.get("type") in ("vxlan", "tinc") and rec["sandbox"]:
            # every host's bridge holds the gateway address of a shared segment: pin the local one in the container
            # (done after Docker moved the interface in: asynchronous, never inside the call)
            for gw in [n["gateway"]] + ([n["gateway6"]] if six else []):
                actions.append({"op": "pin_gateway", "sandbox": rec["sandbox"], "host_ifname": rec["host_ifname"],
                                "ip": gw, "mac": n["bridge_mac"], "async": True,
                                "text": "pin gateway %s at %s in the container of endpoint %s" % (
                                    gw, n["bridge_mac"], short(eid))})
        return resp, actions

    def net_Leave(self, body, st, view, now):
        rec = st["endpoints"].get(body.get("EndpointID") or "")
        if rec is not None:
            rec["sandbox"] = None
        return {}, []

    def net_ProgramExternalConnectivity(self, body, st, view, now):
        view = self._need_view(view)
        eid = body.get("EndpointID") or ""
        rec = st["endpoints"].get(eid)
        if rec is None:
            raise Fail("endpoint %s is unknown to netstitch" % short(eid))
        ports = _ports(body.get("Options") or {})
        for p in ports:
            key = (p["protocol"], p["host_ip"], p["host_port"])
            owner = _publisher(view, st, key, eid)
            if owner:
                raise Fail("%s port %s%d is already published on host %s by %s" % (
                    p["protocol"], (p["host_ip"] + ":") if p["host_ip"] else "", p["host_port"], view["host"], owner))
        if ports == rec["ports"]:
            return {}, []
        rec["ports"] = ports
        return {}, [{"op": "ports_sync", "text": "publish %d port%s of endpoint %s" % (
            len(ports), "" if len(ports) == 1 else "s", short(eid))}]

    def net_RevokeExternalConnectivity(self, body, st, view, now):
        rec = st["endpoints"].get(body.get("EndpointID") or "")
        if rec is None or not rec["ports"]:
            return {}, []
        rec["ports"] = []
        return {}, [{"op": "ports_sync", "release": True,
                     "text": "unpublish the ports of endpoint %s" % short(body["EndpointID"])}]


def _publisher(view, st, key, eid):
    """Who else publishes (protocol, host_ip, port) on this host: a topology container or another endpoint."""
    proto, hip, port = key
    for (p2, h2, port2), owner in (view.get("published") or {}).items():
        if p2 == proto and port2 == port and (h2 is None or hip is None or h2 == hip):
            return "containers.%s of the topology" % owner
    for other, rec in st["endpoints"].items():
        if other == eid:
            continue
        for p in rec["ports"]:
            if p["protocol"] == proto and p["host_port"] == port and (
                    p["host_ip"] is None or hip is None or p["host_ip"] == hip):
                return "Docker endpoint %s" % short(other)
    return None


def _ports(options):
    """Docker's port map -> [{protocol, host_ip (None = every host address), host_port, container_port}]. IPv6
    host addresses are left out (netstitch publishes on IPv4); a host port range with one container port takes its
    first port."""
    out = []
    for p in options.get(PORTMAP) or []:
        proto = PROTOCOLS.get(p.get("Proto"))
        if proto is None:
            raise Fail("protocol %r cannot be published (tcp and udp can)" % p.get("Proto"))
        hip = p.get("HostIP") or ""
        if ":" in hip:
            continue
        if not p.get("HostPort"):
            raise Fail("publish with an explicit host port (-p HOSTPORT:%s): netstitch does not pick ports"
                       % p.get("Port"))
        entry = {"protocol": proto, "host_ip": None if hip in ("", "0.0.0.0") else hip,
                 "host_port": int(p["HostPort"]), "container_port": int(p["Port"])}
        if entry not in out:
            out.append(entry)
    return sorted(out, key=lambda e: (e["protocol"], e["host_ip"] or "", e["host_port"]))
