"""Kind: the Docker networks netstitch offers (pure): desired state from a host spec, the view of what Docker has,
and the actions that make them agree.

A network with ``docker:`` becomes, on each host carrying it, a Docker network of the bridge driver bound to
netstitch's bridge (``com.docker.network.bridge.name``), with the subnet and gateway the host's bridge has and an
ip_range (the block of the host's pool that netstitch leaves to Docker). Docker's own masquerading is off: netstitch
enforces masquerade, internal, isolation, links and published ports in its own nftables table, by bridge, so those
options change without touching the Docker network. Docker cannot change anything of a network once created, so a
difference in what it holds (bridge, subnet, gateway, ip_range, MTU) means re-creating it: the plan says so first,
and while containers are connected it refuses unless forced (then they are disconnected and connected again, with
the same addresses where these still fit). netstitch marks its Docker networks with labels and only ever removes or
re-creates marked ones.

With ``driver: netstitch`` the Docker network is netstitch's own plugin's instead (``netstitch plugin``: network and
IPAM driver, one name): the same subnet and gateway, the option ``netstitch.network`` naming the topology network, no
bridge option and no ip_range (the plugin allocates from the host's whole pool, leased like netstitch's own
addresses). Docker asks the plugin while it creates such a network, and the plugin answers from the recorded spec of
the host, so these creations run once this run's spec is recorded (host.reconcile), never under the lease lock.
"""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import marks
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import LABEL_HOST, LABEL_NETWORK

OPT_BRIDGE = "com.docker.network.bridge.name"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_NETWORK = "netstitch.network"        # the plugin's option naming the topology network (plugin.core)
FIXED = ("driver", "bridge", "subnet", "gateway", "ip_range", "mtu", "masquerade",   # what Docker cannot change
         "ipv6", "subnet6", "gateway6", "ip_range6")
FIXED_PLUGIN = ("driver", "ipam_driver", "subnet", "gateway", "ip_range", "netstitch_network", "ipv6", "subnet6",
                "gateway6")


def desired(spec):
    """{Docker network name: want} for the networks of a host spec offered to Docker."""
    out = {}
    for n in spec["networks"]:
        d = n.get("docker")
        if not d:
            continue
        six = bool(n.get("subnet6"))    # a dual-stack network: EnableIPv6 and an IPv6 IPAM config beside the IPv4 one
        if d.get("driver") == "netstitch":
            out[d["name"]] = {
                "network": n["name"], "driver": d["plugin"], "ipam_driver": d["plugin"], "subnet": n["subnet"],
                "gateway": n["gateway"], "ip_range": None, "netstitch_network": n["name"],
                "labels": {LABEL_HOST: spec["host"], LABEL_NETWORK: n["name"]},
            }
            if six:     # the plugin hands out the IPv6 addresses too (its own IPv6 pool: no ip_range6)
                out[d["name"]].update(ipv6=True, subnet6=n["subnet6"], gateway6=n["gateway6"], ip_range6=None)
            continue
        out[d["name"]] = {
            "network": n["name"], "driver": "bridge", "bridge": n["bridge"], "subnet": n["subnet"],
            "gateway": n["gateway"], "ip_range": d["ip_range"], "mtu": str(n["mtu"]), "masquerade": "false",
            "ipv6": six, "subnet6": n["subnet6"] if six else None, "gateway6": n["gateway6"] if six else None,
            "ip_range6": d.get("ip_range6") if six else None,
            "labels": {LABEL_HOST: spec["host"], LABEL_NETWORK: n["name"]},
        }
    return out


def plugin_driven(want):
    """Whether a wanted Docker network is netstitch's plugin's (Docker calls the plugin to create it)."""
    return bool(want.get("ipam_driver"))


def options(want):
    if plugin_driven(want):
        return {OPT_NETWORK: want["netstitch_network"]}
    return {OPT_BRIDGE: want["bridge"], OPT_MTU: want["mtu"], OPT_MASQ: want["masquerade"]}


def view(d):
    """The parts of a `docker network inspect` document netstitch compares; every subnet, range and address in
    canonical form (parsed: Docker keeps the text it was given, and an IPv6 one has many spellings), so a spelling
    never re-creates a network. IPAM configs by family: ``configs``/``configs6`` count them."""
    configs = (d.get("IPAM") or {}).get("Config") or []
    by = {4: [], 6: []}
    for c in configs:
        by[_family(c.get("Subnet"))].append(c)
    c = by[4][0] if len(by[4]) == 1 else {}
    c6 = by[6][0] if len(by[6]) == 1 else {}
    opts = d.get("Options") or {}
    conts = []
    for cid, e in sorted((d.get("Containers") or {}).items()):
        conts.append({"id": cid, "name": e.get("Name") or cid[:12],
                      "ipv4": (e.get("IPv4Address") or "").split("/")[0] or None,
                      "ipv6": _canon_addr((e.get("IPv6Address") or "").split("/")[0] or None)})
    return {"id": d.get("Id"), "labels": d.get("Labels") or {}, "driver": d.get("Driver"),
            "bridge": opts.get(OPT_BRIDGE), "mtu": opts.get(OPT_MTU), "masquerade": opts.get(OPT_MASQ),
            "subnet": _canon(c.get("Subnet")), "gateway": _canon_addr(c.get("Gateway")),
            "ip_range": _canon(c.get("IPRange")), "ipv6": bool(d.get("EnableIPv6")),
            "subnet6": _canon(c6.get("Subnet")), "gateway6": _canon_addr(c6.get("Gateway")),
            "ip_range6": _canon(c6.get("IPRange")),
            "ipam_driver": (d.get("IPAM") or {}).get("Driver"), "netstitch_network": opts.get(OPT_NETWORK),
            "configs": len(by[4]), "configs6": len(by[6]), "containers": sorted(conts, key=lambda x: x["name"])}


def _family(cidr):
    try:
        return ipaddress.ip_network(cidr, strict=False).version
    except (ValueError, TypeError):
        return 4        # not a subnet: counted with IPv4 (a network netstitch did not make, or broken: re-created)


def _canon(cidr):
    try:
        return str(ipaddress.ip_network(cidr, strict=False)) if cidr else (cidr or None)
    except ValueError:
        return cidr


def _canon_addr(text):
    try:
        return str(ipaddress.ip_interface(text).ip) if text else (text or None)
    except ValueError:
        return text


owned = marks.docker_network_owned


def needed(spec, previous=None):
    """Whether a run needs the Docker Engine for networks: this spec offers one, or the last applied spec did (its
    Docker networks may have to go)."""
    return bool(desired(spec)) or bool(previous and desired(previous))


KEY = None      # not part of the kernel's desired state: Docker's networks are compared with the spec directly


def diff(desired_state, current, out, ctx):
    """Removals run before the kernel actions (while the bridges still exist), creations and re-creations after them
    (once the bridges exist with their addresses); nothing when the Docker Engine is not involved in this run."""
    if current.get("docker_networks") is not None:
        diff_networks(ctx.spec, current["docker_networks"], out, ctx.docker_force)


def diff_networks(spec, have, out, force=False):
    """The Docker networks of a spec against those Docker has ({name: view}); ``force``: re-create or remove them
    even while containers are connected."""
    want = desired(spec)
    host = spec["host"]
    have = have or {}
    for name, w in sorted(want.items()):
        h = have.get(name)
        where = "networks.%s.docker" % w["network"]
        if h is None and plugin_driven(w):
            six = ", subnet6 %s, gateway6 %s" % (w["subnet6"], w["gateway6"]) if w.get("ipv6") else ""
            text = ("create Docker network %s with netstitch's plugin %s (subnet %s, gateway %s%s, network %s)"
                    % (name, w["driver"], w["subnet"], w["gateway"], six, w["network"]))
            out.add("docker_create", act("docker_net_create", text, name=name, want=w))
            continue
        if h is None:
            six = (", IPv6: subnet6 %s, gateway6 %s, ip_range6 %s" % (w["subnet6"], w["gateway6"], w["ip_range6"])
                   if w["ipv6"] else "")
            text = ("create Docker network %s on bridge %s (subnet %s, gateway %s, ip_range %s, mtu %s%s)"
                    % (name, w["bridge"], w["subnet"], w["gateway"], w["ip_range"], w["mtu"], six))
            out.add("docker_create", act("docker_net_create", text, name=name, want=w))
            continue
        if not owned(h, host):
            out.conflict("%s: Docker network %s exists on host %s and netstitch did not create it"
                         % (where, name, host))
            continue
        diffs = ["%s %s -> %s" % (k, _get(h, k), _get(w, k)) for k in (FIXED_PLUGIN if plugin_driven(w) else FIXED)
                 if _get(h, k) != _get(w, k)]
        if h.get("configs") != 1:
            diffs.append("IPAM configs %s -> 1" % h.get("configs"))
        if h.get("configs6", 0) != (1 if w.get("subnet6") else 0):
            diffs.append("IPv6 IPAM configs %s -> %d" % (h.get("configs6", 0), 1 if w.get("subnet6") else 0))
        if not diffs:
            continue
        reconnect = [dict(c, ipv4=_kept(c["ipv4"], w["subnet"], w["gateway"]),
                          ipv6=_kept(c.get("ipv6"), w.get("subnet6"), w.get("gateway6"))) for c in h["containers"]]
        why = "Docker cannot change %s" % ", ".join(diffs)
        if reconnect and not force:
            out.conflict("%s: Docker network %s must be re-created (%s) but containers %s are connected to it; "
                         "run again with force (netstitch apply --docker-force) to disconnect them and connect "
                         "them again" % (where, name, why, ", ".join(c["name"] for c in reconnect)))
            continue
        again = "; containers connected again: %s" % ", ".join(
            "%s (%s)" % (c["name"], ", ".join(a for a in (c["ipv4"], c["ipv6"]) if a) or "a new address")
            for c in reconnect) if reconnect else ""
        out.add("docker_create", act("docker_net_recreate", "re-create Docker network %s (%s)%s" % (name, why, again),
                                     name=name, want=w, reconnect=reconnect))
    for name, h in sorted(have.items()):
        if name in want or not owned(h, host):
            continue
        net = h["labels"].get(LABEL_NETWORK)
        if h["containers"] and not force:
            out.conflict("networks.%s: Docker network %s is no longer offered on host %s but containers %s are "
                         "connected to it; disconnect them or run again with force (netstitch apply --docker-force)"
                         % (net, name, host, ", ".join(c["name"] for c in h["containers"])))
            continue
        gone = " (disconnecting %s)" % ", ".join(c["name"] for c in h["containers"]) if h["containers"] else ""
        out.add("docker_remove", act("docker_net_remove", "remove Docker network %s (network %s is not offered to Docker "
                                     "on this host any more)%s" % (name, net, gone), name=name,
                                     disconnect=h["containers"]))


def _get(d, key):
    """A compared field; absent (a view or want of an IPv4-only network as an older netstitch wrote it): not IPv6."""
    return d.get(key, False if key == "ipv6" else None)


def _kept(addr, subnet, gateway):
    """A connected container's address kept when its network is re-created: while it is in the new subnet and not
    its gateway (else Docker gives a new one)."""
    if not addr or not subnet or addr == gateway:
        return None
    return addr if ipaddress.ip_address(addr) in ipaddress.ip_network(subnet) else None


def reserved_by_docker(spec, have, leases):
    """{network: addresses} that Docker's containers hold on netstitch's offered networks (an address given with
    `docker run --ip`, or one left from a larger Docker range), except addresses netstitch had already leased or
    fixed: netstitch never hands out an address Docker uses (ipam.allocate takes them as reserved)."""
    by_net = {}
    for name, w in desired(spec).items():
        h = (have or {}).get(name)
        if h is not None and owned(h, spec["host"]):
            by_net[w["network"]] = {c["ipv4"] for c in h["containers"] if c["ipv4"]}
    if not any(by_net.values()):
        return {}
    fixed = {i["ip"] for c in spec["containers"] for i in c["interfaces"] if i["ip"]}
    out = {}
    for n in spec["networks"]:
        extra = by_net.get(n["name"], set()) - fixed - set((leases or {}).get(n["name"], {}).values())
        if extra:
            out[n["name"]] = sorted(extra, key=ipaddress.IPv4Address)
    return out


def adoptable_bridges(spec, have, links):
    """Bridges of netstitch's Docker networks that Docker made itself (its daemon started before netstitch had put
    the bridge back, after a reboot): the bridge is netstitch's to manage, so it is adopted rather than reported as
    someone else's. Returns the bridge names."""
    out = []
    for name, w in desired(spec).items():
        h = (have or {}).get(name)
        if plugin_driven(w):
            continue
        link = (links or {}).get(w["bridge"])
        if h is not None and owned(h, spec["host"]) and h.get("bridge") == w["bridge"] and link is not None \
                and link.get("kind") == "bridge" and not marks.owned(link):
            out.append(w["bridge"])
    return sorted(out)


def reserved_by_docker6(spec, have, leases):
    """reserved_by_docker for IPv6: {network: IPv6 addresses} Docker's containers hold on netstitch's dual-stack
    networks offered to Docker (`docker run --ip6`), except the fixed and leased ones (ipam.allocate6)."""
    out = {}
    for name, w in desired(spec).items():
        h = (have or {}).get(name)
        if not w.get("subnet6") or h is None or not owned(h, spec["host"]):
            continue
        net = w["network"]
        known = {ipaddress.IPv6Address(i["ip6"]) for c in spec["containers"] for i in c["interfaces"]
                 if i.get("ip6") and i["network"] == net}
        known |= {ipaddress.IPv6Address(a) for k, a in (leases or {}).get(net, {}).items() if k.endswith("/6")}
        extra = {ipaddress.IPv6Address(c["ipv6"]) for c in h["containers"] if c.get("ipv6")} - known
        if extra:
            out[net] = sorted(extra)
    return out
