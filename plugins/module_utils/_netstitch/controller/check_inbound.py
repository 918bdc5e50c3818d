"""Semantic checks of networks.N.inbound (issue 16, item 1): a network the outside reaches by routing, no NAT."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict


class InboundChecks(object):
    def inbound(self, p, spec, net):
        """The network's inbound allow list [model.Allow] (set on ``net``); problems said with their paths."""
        raw = spec.get("inbound")
        if not is_dict(raw):
            return
        p += ".inbound"
        if spec.get("masquerade") is True:
            self.add(p, "a routed gateway keeps the containers' own addresses: it cannot masquerade too")
        if net.internal:
            self.add(p, "an internal network has no way in or out")
        if net.isolated:
            self.add(p, "not on an isolated network (its containers reach each other only through links; let the "
                        "outside in through a published port or a link instead)")
        net.inbound = []
        net.announce = raw.get("announce") is True
        for i, a in enumerate(raw.get("allow") if isinstance(raw.get("allow"), list) else []):
            if is_dict(a):
                allow = self._allow("%s.allow[%d]" % (p, i), a)
                if allow is not None:
                    net.inbound.append(allow)

    def _allow(self, p, a):
        ok = True
        proto = a.get("protocol", "tcp")
        src = None
        if isinstance(a.get("from"), str):
            try:
                src = ipaddress.IPv4Network(a["from"], strict=True)
            except ValueError as e:
                self.add(p + ".from", "%r is not an IPv4 prefix without host bits (%s)" % (a["from"], e))
                ok = False
        ports = self.port_list(p, a, "protocol any has no ports (say tcp or udp)")
        ok = ok and ports is not None
        if "ports" not in a and "from" not in a:
            self.add(p, "allows every port from anywhere: give ports or from (from: 0.0.0.0/0 to mean it)")
            ok = False
        return model.Allow(src, proto, ports) if ok and proto in ("tcp", "udp", "any") else None

    def inbound_routes(self, hosts, nets):
        """Once the hosts of each network are known: the route the outside needs must name one host per block."""
        for name, n in sorted(nets.items()):
            if n is None or n.inbound is None:
                continue
            p = "networks.%s.inbound" % name
            if n.overlay is None and len(n.hosts) > 1:
                self.add(p, "host-local network on %d hosts (%s): each has its own copy of %s, which the outside "
                         "cannot route to; use an overlay or one host" % (len(n.hosts), ", ".join(sorted(n.hosts)),
                                                                          n.subnet))
            for h in sorted(n.hosts):
                if n.announce and h in hosts and hosts[h].bgp is None:
                    self.add(p + ".announce", "host %s carries the network and has no BGP speaker to announce it "
                             "(hosts.%s.bgp)" % (h, h))
                if h in hosts and hosts[h].underlay is None:
                    self.add("hosts.%s.underlay" % h, "host carries networks.%s, a routed gateway: the outside "
                             "routes to it at its underlay address, which is needed" % name)
                elif h in hosts and hosts[h].underlay.version == 6:
                    self.add("hosts.%s.underlay" % h, "host carries networks.%s, a routed gateway: a routed gateway "
                             "behind an IPv6 underlay address is not supported yet (the outside's route to %s would "
                             "need an IPv6 next hop)" % (name, n.subnet))
