"""Semantic checks of the tenants section (issue 16, item 3): networks grouped into tenants, each with a router
namespace of its own on every host carrying one of its networks (kinds.tenant).

What a tenant network does not support yet is refused here, by path, saying so."""

import hashlib
import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict

LINK_LOCAL = ipaddress.IPv4Network("169.254.0.0/16")
# never a default transit: RFC 3927's reserved first and last /24, and the cloud metadata address
_AVOID = [ipaddress.IPv4Network("169.254.0.0/24"), ipaddress.IPv4Network("169.254.255.0/24"),
          ipaddress.IPv4Network("169.254.169.252/30")]
NOT_YET = "not supported for tenant networks yet"


def default_transit(name, taken):
    """A /30 of 169.254.0.0/16 derived from the tenant's name (stable: it does not depend on the other tenants unless
    two names land on the same /30, when the later name in sorted order takes the next free one)."""
    slot = int(hashlib.sha1(("transit/" + name).encode("utf-8")).hexdigest()[:8], 16) % 16384
    for i in range(16384):
        net = ipaddress.IPv4Network((int(LINK_LOCAL.network_address) + ((slot + i) % 16384) * 4, 30))
        if not any(net.overlaps(a) for a in _AVOID) and not any(net.overlaps(t) for t in taken):
            return net
    return None     # pragma: no cover - 16,000 tenants


class TenantChecks(object):
    def network_tenants(self):
        """{network: tenant} as the tenants section gives it (the first tenant naming a network; the rest are
        reported by tenants()). Known before the networks are checked: overlapping subnets are allowed only between
        networks of different tenants."""
        cached = getattr(self, "_network_tenants", None)
        if cached is not None:
            return cached
        out = {}
        raw = self.data.get("tenants")
        for tname, spec in sorted(raw.items(), key=lambda kv: str(kv[0])) if is_dict(raw) else ():
            nets = spec.get("networks") if is_dict(spec) else None
            for n in nets if isinstance(nets, list) else ():
                if isinstance(n, str):
                    out.setdefault(n, tname)
        self._network_tenants = out
        return out

    def may_overlap(self, a, b):
        """Whether networks ``a`` and ``b`` may have overlapping subnets: only when both are in tenants, different
        ones."""
        t = self.network_tenants()
        return a in t and b in t and t[a] != t[b]

    def tenants(self, hosts, nets, conts, links):
        raw = self.data.get("tenants")
        if not is_dict(raw):
            return {}
        out, owner, taken = {}, {}, []
        explicit = {}
        items = sorted(((k, v) for k, v in raw.items() if isinstance(k, str)), key=lambda kv: kv[0])
        for tname, spec in items:
            if is_dict(spec) and isinstance(spec.get("transit"), str):
                explicit[tname] = self._transit("tenants.%s.transit" % tname, spec["transit"], nets, hosts)
        taken = [t for t in explicit.values() if t is not None]
        seen_transit = {}
        for tname, t in sorted(explicit.items()):
            if t is None:
                continue
            for other, o in seen_transit.items():
                if o.overlaps(t):
                    self.add("tenants.%s.transit" % tname, "%s overlaps the transit %s of tenants.%s" % (t, o, other))
            seen_transit[tname] = t
        for tname, spec in items:
            if not is_dict(spec):
                continue    # the schema reports it
            p = "tenants.%s" % tname
            raw_nets = spec.get("networks") if isinstance(spec.get("networks"), list) else []
            names = [n for n in raw_nets if isinstance(n, str)]
            for i, n in enumerate(names):
                if n not in nets:
                    self.add("%s.networks[%d]" % (p, i), "unknown network %r (not under networks)" % n)
                elif n in owner and owner[n] != tname:
                    self.add("%s.networks[%d]" % (p, i), "networks.%s is also in tenants.%s; a network belongs to at "
                             "most one tenant" % (n, owner[n]))
                else:
                    owner[n] = tname
            connect = []
            for i, pair in enumerate(spec.get("connect") if isinstance(spec.get("connect"), list) else []):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    continue    # the schema reports it
                pp = "%s.connect[%d]" % (p, i)
                bad = [x for x in pair if x not in names]
                if bad:
                    self.add(pp, "%s not a network of tenants.%s (connect pairs networks of one tenant; tenants never "
                             "talk)" % (" and ".join(repr(x) for x in bad) + (" are" if len(bad) > 1 else " is"), tname))
                elif pair[0] == pair[1]:
                    self.add(pp, "a network talks to itself anyway: name two different networks")
                else:
                    connect.append(tuple(sorted(pair)))
            transit = explicit.get(tname)
            if transit is None and "transit" not in spec:
                transit = default_transit(tname, taken + [n.subnet for n in nets.values() if n is not None])
                taken.append(transit)
            out[tname] = model.Tenant(tname, names, sorted(set(connect)), transit)
        self._router_names(hosts, nets, conts, owner)
        for n, tname in owner.items():
            if nets.get(n) is not None:
                nets[n].tenant = tname
                self._tenant_network("networks.%s" % n, nets[n])
        self._tenant_containers(conts, nets)
        for i, ln in enumerate(links):
            net = nets.get(ln.network)
            if net is not None and net.tenant:
                self.add("links[%d]" % i, "links are %s (networks.%s is in tenants.%s); use tenants.%s.connect "
                         "between networks" % (NOT_YET, ln.network, net.tenant, net.tenant))
        return out

    def _router_names(self, hosts, nets, conts, owner):
        """A router namespace per tenant and host carrying one of its networks: a name of at most 15 characters,
        used by no container there."""
        used = {(c.host, c.netns): name for name, c in conts.items() if c is not None and c.kind == "netns"}
        done = set()
        for n, tname in sorted(owner.items()):
            for h in sorted(nets[n].hosts if nets.get(n) is not None else ()):
                if (h, tname) in done or hosts.get(h) is None:
                    continue
                done.add((h, tname))
                ns = model.router_netns(hosts[h].router_prefix, tname)
                if len(ns) > model.IFNAMSIZ:
                    self.add("tenants.%s" % tname, "its router namespace on host %s, %r, is %d characters; at most %d "
                             "(shorten the tenant's name or hosts.%s.router_netns_prefix)"
                             % (h, ns, len(ns), model.IFNAMSIZ, h))
                if (h, ns) in used:
                    self.add("tenants.%s" % tname, "its router namespace on host %s, %s, is the namespace of "
                             "containers.%s" % (h, ns, used[(h, ns)]))

    def _transit(self, p, text, nets, hosts):
        try:
            t = ipaddress.IPv4Network(text, strict=True)
        except ValueError as e:
            self.add(p, "%r is not an IPv4 network: %s" % (text, e))
            return None
        if t.prefixlen != 30:
            self.add(p, "%s is a /%d; a transit is a /30 (the host side takes its first address, the router namespace "
                     "its second)" % (t, t.prefixlen))
            return None
        for name, n in sorted(nets.items()):
            if n is not None and n.subnet.overlaps(t):
                self.add(p, "%s overlaps %s of networks.%s" % (t, n.subnet, name))
        for name, h in hosts.items():
            if h is not None and h.underlay is not None and h.underlay.ip in t:
                self.add(p, "%s contains the underlay address %s of hosts.%s" % (t, h.underlay.ip, name))
        return t

    def _tenant_network(self, p, net):
        """What a tenant network cannot have yet, refused by path."""
        if net.macvlan is not None:
            self.add(p + ".macvlan", "macvlan networks are %s" % NOT_YET)
        if not net.internal and not net.masquerade:
            self.add(p + ".masquerade", "masquerade: false is %s (the host has no route back to a tenant's "
                     "subnet)" % NOT_YET)
        if net.overlay is not None and net.overlay.type != "vxlan":
            self.add(p + ".overlay.type", "%s overlays are %s (vxlan overlays are)" % (net.overlay.type, NOT_YET))
        for key, on in (("subnet6", net.subnet6 is not None), ("isolated", net.isolated), ("dns", net.dns),
                        ("docker", net.docker is not None), ("inbound", net.inbound is not None),
                        ("attach", bool(net.attach))):
            if on:
                self.add("%s.%s" % (p, key), "%s is %s" % (key, NOT_YET))

    def _tenant_containers(self, conts, nets):
        for cname, c in sorted(conts.items()):
            if c is None:
                continue
            where = {}
            for itf in c.interfaces:
                net = nets.get(itf.network)
                if net is not None:
                    where.setdefault(net.tenant, itf.network)
            if len(where) > 1 and any(where):
                parts = ", ".join("networks.%s (%s)" % (n, "tenants.%s" % t if t else "no tenant")
                                  for t, n in sorted(where.items(), key=lambda x: x[1]))
                self.add("containers.%s.interfaces" % cname, "a container on a tenant network joins only networks "
                         "of that tenant (tenants never talk), not %s" % parts)
            for pub in c.publish:
                net = nets.get(pub.network)
                if net is not None and net.tenant:
                    self.add("containers.%s.publish" % cname, "published ports are %s (networks.%s is in tenants.%s)"
                             % (NOT_YET, pub.network, net.tenant))
                    break
