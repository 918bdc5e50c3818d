"""Compile a validated topology into one self-contained spec per host (pure, controller side).

A host spec carries everything one host needs: its networks (with its own slice, gateway and bridge MAC), its
containers, and for overlays its peers (underlay addresses and the MAC addresses behind each, for static FDB
programming) or, in routed mode, the routes to the peers' slices. Addresses left to allocation are resolved on the
host (see ipam), from the host's own pool, so a host never needs another host's state.
"""

import copy
from typing import Any, Dict, List, Optional

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.hostspec_schema import HOSTSPEC_SCHEMA
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.model import derived_mac, router_netns, tenant_leg_name

HOST_SPEC_VERSION = 1     # the format of a host spec (schemas/hostspec.schema.json); a host applies only this one
SPEC_VERSION = HOST_SPEC_VERSION
_FAST = []


def schema_libraries():
    """(fastjsonschema or None, jsonschema or None), imported only when a spec's structure is checked (the modules
    do; the engine checks only the version), so an apply does not pay for their import."""
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover - jsonschema, or the hand checks below, still answer
        fastjsonschema = None
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - managed hosts need not have it
        jsonschema = None
    return fastjsonschema, jsonschema


def _overlay_spec(topo, net, host, macs_by_host):
    o = net.overlay
    me = topo.hosts[host]
    peers = [h for h in sorted(o.slices) if h != host]
    out = {"type": o.type, "subnet": _text(net.subnet), "local": str(me.underlay.ip)}
    if o.type == "routed":
        out["routes"] = [{"dst": str(o.slices[p]), "via": str(topo.hosts[p].underlay.ip), "host": p} for p in peers]
        if net.subnet6 is not None:
            # IPv6 slices: via the peer's IPv6 underlay address, or over an IPv4 underlay via the peer's link-local
            # address (None here: the host takes it from the peer's prepare facts; Linux routes IPv6 via no IPv4 hop)
            out["subnet6"] = str(net.subnet6)
            out["routes6"] = [{"dst": str(o.slices6[p]), "host": p, "via": str(topo.hosts[p].underlay.ip)
                               if topo.hosts[p].underlay.version == 6 else None} for p in peers if p in o.slices6]
        return out
    out.update({"device": o.device, "port": o.port})
    if o.type == "vxlan":
        out.update({"vni": o.vni, "learning": o.learning})
    out["peers"] = [{"host": p, "underlay": str(topo.hosts[p].underlay.ip),
                     "macs": sorted(macs_by_host.get(p, ()))} for p in peers]
    return out


def host_specs(topo: Any) -> Dict[str, Dict[str, Any]]:
    """Return {host name: spec dict} for every host in the topology (a host without networks gets an empty spec,
    which prunes whatever netstitch had made there)."""
    fixed, macs = _fixed_and_macs(topo)
    # grouped once (not per host: a topology of 1,000 hosts x 50 containers would sort 50,000 containers 1,000 times)
    by_host = {}
    for c in sorted(topo.containers.values(), key=lambda c: c.name):
        by_host.setdefault(c.host, []).append(c)
    nets_sorted = sorted(topo.networks.values(), key=lambda n: n.name)
    links_by_net = {}
    for pos, ln in enumerate(topo.links):
        links_by_net.setdefault(ln.network, []).append((pos, ln))
    specs = {}
    for host in topo.hosts:
        mine = by_host.get(host, [])
        nets = [_network_spec(topo, net, host, fixed, macs) for net in nets_sorted
                if host in net.hosts and net.macvlan is None]
        macvlans = [_macvlan_spec(net, host, fixed) for net in nets_sorted
                    if host in net.hosts and net.macvlan is not None]
        conts = [{"name": c.name, "kind": c.kind, "netns": c.netns if c.kind == "netns" else None,
                  "docker": c.docker if c.kind == "docker" else None,
                  "interfaces": [_interface_spec(i) for i in c.interfaces]} for c in mine]
        here = {n["name"] for n in nets}
        publish = [{"container": c.name, "ifname": c.interface_on(p.network).name, "network": p.network,
                    "host_ip": str(p.host_ip) if p.host_ip else None, "protocol": p.protocol,
                    "host_port": p.host_port, "container_port": p.container_port}
                   for c in mine for p in c.publish]
        links = [_link_spec(topo, ln) for _index, ln in sorted(
            (pos, ln) for net in here for pos, ln in links_by_net.get(net, ())
            if topo.networks[ln.network].isolated or topo.containers[ln.client].host == host)]
        specs[host] = {"version": HOST_SPEC_VERSION, "host": host, "networks": nets, "containers": conts,
                       "publish": publish, "links": links}
        if macvlans:
            specs[host]["macvlan_networks"] = macvlans      # only where there are some
        announce = [{"network": n.name, "bridge": n.bridge, "prefix": str(n.segment(host))}
                    for n in nets_sorted if host in n.hosts and n.announce]
        if announce:
            # a BGP speaker of netstitch's on this host (kinds.bgp): only where it announces something
            h = topo.hosts[host]
            specs[host]["bgp"] = {"asn": h.bgp[0], "router_id": str(h.underlay.ip), "announce": announce,
                                  "neighbors": [{"address": str(a), "asn": asn} for a, asn in h.bgp[1]]}
        if topo.hosts[host].docker_host:
            specs[host]["docker_host"] = topo.hosts[host].docker_host
        tenants = _tenants_spec(topo, host, nets)
        if tenants:
            specs[host]["tenants"] = tenants        # only where there are some
        chains = [c for c in (_chain_spec(topo, ch, host) for ch in topo.chains) if c]
        if chains:
            specs[host]["chains"] = chains      # only where a chain has a route or a service (kinds.chain)
    return specs


def _chain_spec(topo, ch, host):
    """A chain as a host needs it: the routes of its containers there (via another container's interface: its
    address filled in on the host, as for links) and its services there (which forward), or None."""
    routes = [{"container": c, "ifname": topo.containers[c].interface_on(on).name,
               "dst": str(topo.networks[to].subnet), "via": _ref(topo, via, on)}
              for c, on, to, via in ch.routes if topo.containers[c].host == host]
    forward = [s for s in ch.services if topo.containers[s].host == host]
    if not routes and not forward:
        return None
    return {"name": ch.name, "from": ch.source, "to": ch.target, "services": list(ch.services), "routes": routes,
            "forward": forward}


def _fixed_and_macs(topo):
    """The fixed addresses {(network, host or None for overlays): addresses; (overlay, 6): its IPv6 ones} and, for
    shared overlays, the MACs behind each host {network: {host: MACs}} (its endpoints' and its bridge's), for static
    FDB programming."""
    fixed, macs = {}, {}
    for c in topo.containers.values():
        for itf in c.interfaces:
            net = topo.networks[itf.network]
            overlay = net.overlay is not None and not net.routed
            if itf.ip is not None:
                fixed.setdefault((itf.network, None if net.shared else c.host), set()).add(itf.ip)
            if itf.ip6 is not None and net.overlay is not None:
                fixed.setdefault((itf.network, 6), set()).add(itf.ip6)
            if overlay:
                macs.setdefault(itf.network, {}).setdefault(c.host, set()).add(itf.mac)
    for net in topo.networks.values():
        shared = net.overlay is not None and not net.routed
        if shared:
            for h in net.overlay.slices:
                macs.setdefault(net.name, {}).setdefault(h, set()).add(net.bridge_mac(h))
        for a in net.attach:
            # what is behind an attached interface: its address is never allocated, its MAC is behind its host
            if a.ip is not None:
                fixed.setdefault((net.name, None if shared else a.host), set()).add(a.ip)
            if shared and a.mac:
                macs.setdefault(net.name, {}).setdefault(a.host, set()).add(a.mac)
    return fixed, macs


def _network_spec(topo, net, host, fixed, macs):
    shared = net.overlay is not None and not net.routed
    out = {
        "name": net.name,
        "bridge": net.bridge,
        "bridge_mac": net.bridge_mac(host),
        # an IPv6-only network: no IPv4 segment, gateway or pool (null), subnet6 and gateway6 below
        "subnet": _text(net.segment(host)),
        "gateway": _text(net.gateway_on(host)),
        "mtu": net.mtu,
        "masquerade": net.masquerade,
        "internal": net.internal,
        "pool": _text(net.pool(host)),
        "reserved": sorted(str(a) for a in fixed.get((net.name, None if shared else host), ())),
        "overlay": _overlay_spec(topo, net, host, macs.get(net.name, {})) if net.overlay else None,
        "isolated": net.isolated,
    }
    if net.subnet6 is not None:
        # keys that exist only on a dual-stack network: specs of other topologies stay as they were
        out["subnet6"] = str(net.segment6(host))
        out["gateway6"] = str(net.gateway6_on(host))
        if net.masquerade6:
            out["masquerade6"] = True
        if net.overlay is not None:
            # an overlay: this host's IPv6 slice, and the fixed IPv6 addresses on the whole segment
            out["pool6"] = str(net.pool6(host))
            out["reserved6"] = [str(a) for a in sorted(fixed.get((net.name, 6), ()))]
    if net.dns:
        members = sorted((c for c in topo.containers.values() if c.interface_on(net.name) is not None),
                         key=lambda c: c.name)
        out["dns"] = {"names": [_ref(topo, c.name, net.name) for c in members]}
        # link names of Docker clients (also in their own hosts files, kinds.docker_hosts): the network's name
        # service answers them too, to every container of the network (a network with a name service is never
        # isolated, so each of them may reach the server anyway; the name tells nothing that reachability hides)
        aliases = sorted({(ln.name, ln.server) for ln in topo.links
                          if ln.network == net.name and ln.name and ln.server and ln.name != ln.server
                          and topo.containers[ln.client].kind == "docker"})
        if aliases:
            out["dns"]["aliases"] = [{"name": name, "server": _ref(topo, server, net.name)}
                                     for name, server in aliases]
    if net.inbound is not None:
        # a routed gateway: what may come in, and the route the outside needs to this host's part of the network
        out["inbound"] = {"allow": [{"from": str(a.source) if a.source else None, "protocol": a.protocol,
                                     "ports": [list(r) for r in a.ports]} for a in net.inbound],
                          "routes": [{"dst": str(net.segment(host)), "via": str(topo.hosts[host].underlay.ip)}]}
    if net.tenant:
        # the gateway lives in the tenant's router namespace, on the leg with the MAC bridge_mac (which static FDB
        # programming names); the bridge, without an address, gets a MAC of its own
        out["tenant"] = {"name": net.tenant, "leg": tenant_leg_name(net.tenant, net.name),
                         "bridge_mac": derived_mac("tenant-bridge", net.name, host)}
    attach = [{"interface": a.interface} for a in net.attach if a.host == host]
    if attach:
        out["attach"] = attach      # only where there is one: specs of other topologies stay as they were
    if net.offered_to_docker(host):
        # keys that exist only where Docker is involved: specs of other topologies stay as they were
        if net.docker.driver == "netstitch":
            out["docker"] = {"name": net.docker.name, "driver": "netstitch", "plugin": topo.hosts[host].docker_plugin}
        else:
            out["docker"] = {"name": net.docker.name, "ip_range": str(net.docker_range(host))}
            if net.subnet6 is not None:
                out["docker"]["ip_range6"] = str(net.docker_range6(host))
    return out


def _tenants_spec(topo, host, nets):
    """The tenants with a network on this host: their router namespace, its uplink to the host (transit addresses),
    which of their networks are here and which pairs of them may talk."""
    out = []
    here = {n["name"] for n in nets}
    for name, t in sorted(topo.tenants.items()):
        mine = [n for n in t.networks if n in here]
        if not mine:
            continue
        hosts = list(t.transit.hosts())
        out.append({"name": name, "netns": router_netns(topo.hosts[host].router_prefix, name), "uplink": t.uplink_host_name(),
                    "transit": {"host": "%s/30" % hosts[0], "router": "%s/30" % hosts[1]},
                    "networks": mine, "connect": [list(p) for p in t.connect if p[0] in here and p[1] in here]})
    return out


def _text(value):
    return None if value is None else str(value)


def _macvlan_spec(net, host, fixed):
    """A macvlan network as a host needs it: no bridge; its gateway is the segment's router (or none)."""
    pool = net.pool(host)
    return {"name": net.name, "subnet": str(net.subnet), "gateway": str(net.gateway) if net.gateway else None,
            "mtu": net.mtu, "pool": str(pool) if pool is not None else None,
            "reserved": sorted(str(a) for a in fixed.get((net.name, None), ())), "parent": net.macvlan.parent}


def _interface_spec(i):
    out = {"name": i.name, "network": i.network, "host_ifname": i.host_name,
           "ip": str(i.ip) if i.ip is not None else None, "mac": i.mac, "default_route": i.default_route}
    if i.default_route_soft:
        out["default_route_soft"] = True    # a Docker container's implicit default: only while Docker gives none
    if i.ip6 is not None:
        out["ip6"] = str(i.ip6)             # canonical (RFC 5952); on a dual-stack network without it: allocated
    return out


def _ref(topo, container, network):
    c = topo.containers[container]
    itf = c.interface_on(network)
    return {"host": c.host, "container": c.name, "ifname": itf.name, "ip": str(itf.ip) if itf.ip else None}


def _link_spec(topo, ln):
    """A link as a host needs it: the client's and server's interface on the link's network (addresses filled
    in on the host: its own from its allocation, the others' from what the run gathered), ports, hosts-file name."""
    return {"index": ln.index, "network": ln.network, "protocol": ln.protocol,
            "ports": [list(p) for p in ln.ports], "name": ln.name,
            "client": _ref(topo, ln.client, ln.network),
            "server": _ref(topo, ln.server, ln.network) if ln.server else None}


def needs_prepare(spec: Dict[str, Any]) -> bool:
    """Whether a host needs facts from the other hosts before it applies: tinc public keys, or the allocated address
    of a container on another host that one of its links names."""
    if any((n.get("overlay") or {}).get("type") == "tinc" for n in spec["networks"]):
        return True
    if any(r["via"] is None for n in spec["networks"] for r in (n.get("overlay") or {}).get("routes6", [])):
        return True     # the peers' IPv6 link-local addresses (routed IPv6 over an IPv4 underlay)
    for ln in spec.get("links", []):
        for ref in (ln["client"], ln["server"]):
            if ref and ref["host"] != spec["host"] and not ref["ip"]:
                return True
    for ch in spec.get("chains", []):
        if any(r["via"]["host"] != spec["host"] and not r["via"]["ip"] for r in ch["routes"]):
            return True     # a chain's next hop on another host
    # the name service of a network names the containers of the other hosts too
    return any(ref["host"] != spec["host"] and not ref["ip"] for n in spec["networks"]
               for ref in (n.get("dns") or {}).get("names", []))


def version_problem(spec: Any) -> Optional[str]:
    """Why a host spec of another format version cannot be applied here, or None."""
    version = spec.get("version") if isinstance(spec, dict) else None
    if version == HOST_SPEC_VERSION and not isinstance(version, bool):
        return None
    what = "version %r" % (version,) if version is not None else "without a version"
    return ("spec.version: this host spec is %s, but this netstitch.fabric collection applies host specs of version "
            "%d only; make the spec with the validate module (or bin/netstitch compile) of the same collection "
            "version as the apply" % (what, HOST_SPEC_VERSION))


def spec_problems(spec: Any) -> List[str]:
    """Every problem of a host spec, as "path: reason" lines: its version first (alone when it differs, since the
    rest of another format means nothing here), then its structure against schemas/hostspec.schema.json."""
    if not isinstance(spec, dict):
        return ["spec: a host spec is a mapping, not %s" % type(spec).__name__]
    problem = version_problem(spec)
    if problem:
        return [problem]
    fastjsonschema, jsonschema = schema_libraries()
    if fastjsonschema is not None:
        if not _FAST:
            schema = copy.deepcopy(HOSTSPEC_SCHEMA)     # the compiler annotates what it is given
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"     # the keywords used are all draft-07
            _FAST.append(fastjsonschema.compile(schema))
        try:
            _FAST[0](spec)
            return []
        except fastjsonschema.JsonSchemaException:
            pass
    if jsonschema is not None:
        validator = jsonschema.Draft202012Validator(HOSTSPEC_SCHEMA)
        return sorted("spec%s: %s" % ("".join("[%d]" % p if isinstance(p, int) else ".%s" % p for p in e.absolute_path),
                                      e.message) for e in validator.iter_errors(spec))
    return _hand_checks(spec)


def _hand_checks(spec):
    """The structure a host needs, without a JSON Schema library (a managed host need not have one)."""
    problems = []
    for key, kind in (("host", str), ("networks", list), ("containers", list)):
        if not isinstance(spec.get(key), kind):
            problems.append("spec.%s must be a %s" % (key, "string" if kind is str else "list"))
    if problems:
        return problems
    for i, n in enumerate(spec["networks"]):
        if not isinstance(n, dict):
            problems.append("spec.networks[%d] must be a mapping" % i)
            continue
        problems += ["spec.networks[%d].%s is missing" % (i, k) for k in
                     ("name", "bridge", "bridge_mac", "subnet", "gateway", "mtu", "pool") if k not in n]
    for i, c in enumerate(spec["containers"]):
        if not isinstance(c, dict):
            problems.append("spec.containers[%d] must be a mapping" % i)
            continue
        problems += ["spec.containers[%d].%s is missing" % (i, k) for k in ("name", "kind", "interfaces") if k not in c]
        for j, itf in enumerate(c.get("interfaces") or []):
            problems += ["spec.containers[%d].interfaces[%d].%s is missing" % (i, j, k)
                         for k in ("name", "network", "host_ifname", "mac") if not isinstance(itf, dict) or k not in itf]
    return problems
