"""Semantic checks of macvlan networks (networks.N.macvlan, issue 16 item 4): containers directly on a physical
segment, with no bridge, gateway address, NAT or firewall of netstitch's."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict

# what a macvlan network cannot have, and why
_NOT_WITH = (
    ("overlay", "the physical segment spans the hosts itself"),
    ("attach", "there is no bridge to attach to"),
    ("internal", "netstitch does not filter a physical segment"),
    ("isolated", "netstitch does not filter a physical segment"),
    ("dns", "there is no gateway address of netstitch's to serve names on"),
    ("docker", "Docker's own macvlan driver does that"),
    ("inbound", "its containers are on the segment already, reached without routing through a host"),
)


class MacvlanChecks(object):
    def macvlan(self, p, spec, subnet, hosts):
        """The network's model.Macvlan, or None (problems said)."""
        m = spec["macvlan"]
        ok = True
        for key, why in _NOT_WITH:
            if key in spec and spec[key] not in (False, None):
                self.add("%s.%s" % (p, key), "not on a macvlan network: %s" % why)
                ok = False
        if spec.get("masquerade") is True:
            self.add(p + ".masquerade", "not on a macvlan network: its containers are on the segment itself, "
                     "with addresses of their own (no NAT)")
            ok = False
        parent = m.get("parent")
        if isinstance(parent, str):
            self.ifname(p + ".macvlan.parent", parent)
        else:
            ok = False      # the schema reports it
        ranges = {}
        raw = m.get("ranges") if is_dict(m.get("ranges")) else {}
        for h, text in sorted(raw.items()):
            rp = "%s.macvlan.ranges.%s" % (p, h)
            if h not in hosts and is_dict(self.data.get("hosts")):
                self.add(rp, "unknown host %r (not under hosts)" % h)
                continue
            if not isinstance(text, str):
                continue    # the schema reports it
            try:
                r = ipaddress.IPv4Network(text, strict=True)
            except ValueError as e:
                self.add(rp, "%r is not an IPv4 block without host bits (%s)" % (text, e))
                continue
            if subnet is not None and not r.subnet_of(subnet):
                self.add(rp, "%s is not inside the subnet %s" % (r, subnet))
                continue
            for other_h, other in sorted(ranges.items()):
                if r.overlaps(other):
                    self.add(rp, "%s overlaps host %s's range %s" % (r, other_h, other))
                    break
            under = sorted(x for x, host in hosts.items() if host.underlay is not None and host.underlay.ip in r)
            if under:
                self.add(rp, "%s holds the underlay address of hosts.%s" % (r, under[0]))
                continue
            ranges[h] = r
        return model.Macvlan(parent, ranges) if ok and subnet is not None else None

    def macvlan_uses(self, hosts, conts, nets, links):
        """What containers and links may not do on a macvlan network, and the ranges their hosts need."""
        need = {}
        underlay = {host.underlay.ip: h for h, host in sorted(hosts.items()) if host.underlay is not None}
        for cname, c in sorted(conts.items()):
            for itf in c.interfaces:
                n = nets.get(itf.network)
                if n is None or n.macvlan is None:
                    continue
                ip_ = "containers.%s.interfaces[%d]" % (cname, itf.index)
                if itf.default_route and n.gateway is None:
                    if self._explicit_default(cname, itf.index):
                        self.add(ip_ + ".default_route", "networks.%s has no gateway (the segment's router) to "
                                 "route through; set networks.%s.gateway" % (n.name, n.name))
                    itf.default_route = itf.default_route_soft = False
                if itf.ip is None:
                    need.setdefault((n.name, c.host), []).append(ip_)
                elif itf.ip in (n.subnet.network_address, n.subnet.broadcast_address):
                    self.add(ip_ + ".ip", "%s is the network or broadcast address of %s" % (itf.ip, n.subnet))
                elif itf.ip in underlay:
                    self.add(ip_ + ".ip", "%s is the underlay address of hosts.%s" % (itf.ip, underlay[itf.ip]))
            for j, pub in enumerate(c.publish):
                n = nets.get(pub.network)
                if n is not None and n.macvlan is not None:
                    self.add("containers.%s.publish" % cname, "networks.%s is a macvlan network: its containers "
                             "are reached at their own addresses on the segment, there is nothing to publish"
                             % n.name)
                    break
        for (netname, host), paths in sorted(need.items()):
            if host not in nets[netname].macvlan.ranges:
                self.add(paths[0] + ".ip", "networks.%s allocates on host %s from networks.%s.macvlan.ranges.%s, "
                         "which is not given (give the range, or a fixed ip)" % (netname, host, netname, host))
        for ln in links:
            n = nets.get(ln.network)
            if n is not None and n.macvlan is not None:
                self.add("links[%d]" % ln.index, "networks.%s is a macvlan network: netstitch does not filter or "
                         "name anything on a physical segment" % n.name)

    def _explicit_default(self, cname, index):
        itfs = ((self.data.get("containers") or {}).get(cname) or {}).get("interfaces") or []
        return index < len(itfs) and is_dict(itfs[index]) and itfs[index].get("default_route") is True
