"""Semantic checks of the chains section (issue 16, item 2): service chains between two networks.

A chain from network F to network T through services s1..sk: s1 has an interface on F, sk one on T, and each
consecutive pair of services shares exactly one more network (the middle networks, inferred). Traffic is steered by
routes in the containers' own namespaces (the containers of F route T via s1, those of T route F via sk, each service
routes on to the next one and back to the previous one), so every hop is one layer-2 segment: the same host, or an
overlay that spans hosts (vxlan, tinc). The networks stay closed to each other on the hosts (kinds.nft), which is what
makes a chain fail closed.
"""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict


class ChainChecks(object):
    def chains(self, conts, nets):
        """[model.Chain] in name order; problems said with their paths."""
        raw = self.data.get("chains")
        if not is_dict(raw):
            return []
        out, pairs, routed = [], {}, {}
        for name in sorted(raw):
            if not is_dict(raw[name]):
                continue
            p = "chains.%s" % name
            ch = self._chain(p, name, raw[name], conts, nets)
            if ch is None:
                continue
            other = pairs.setdefault(frozenset((ch.source, ch.target)), name)
            if other != name:
                self.add(p, "chain %s already steers the traffic between networks %s and %s (both ways): one chain "
                            "per pair of networks" % (other, ch.source, ch.target))
                continue
            if self._chain_routes(p, ch, conts, nets, routed):
                out.append(ch)
        return out

    def _chain(self, p, name, ch, conts, nets):
        ok = True
        src, dst, services = ch.get("from"), ch.get("to"), ch.get("services")
        for key, v in (("from", src), ("to", dst)):
            if not isinstance(v, str):
                ok = False          # the schema's to report
            elif key == "to" and v == "outside" and v not in nets:
                self.add(p + ".to", "a chain to the outside (out of the fabric) is not supported yet: name a network")
                ok = False
            elif v not in nets:
                self.add("%s.%s" % (p, key), "unknown network %r (not under networks)" % v)
                ok = False
            else:
                ok = self._chain_network("%s.%s" % (p, key), nets[v]) and ok
        if ok and src == dst:
            self.add(p + ".to", "network %s is the chain's from too: a chain runs between two networks" % dst)
            ok = False
        if not isinstance(services, list) or not services or not all(isinstance(s, str) for s in services):
            return None
        for i, s in enumerate(services):
            if s not in conts:
                self.add("%s.services[%d]" % (p, i), "unknown container %r (not under containers)" % s)
                ok = False
            elif s in services[:i]:
                self.add("%s.services[%d]" % (p, i), "container %s is already service %d of this chain"
                         % (s, services.index(s)))
                ok = False
        if not ok:
            return None
        networks = self._chain_networks(p, src, dst, services, conts, nets)
        return model.Chain(name, src, dst, list(services), networks) if networks else None

    def _chain_networks(self, p, src, dst, services, conts, nets):
        """[from, the middle networks, to], or None (the problem said)."""
        networks = [src]
        for i, s in enumerate(services):
            sp = "%s.services[%d]" % (p, i)
            c = conts[s]
            if c.interface_on(networks[-1]) is None:
                self.add(sp, "container %s has no interface on network %s (%s)" % (
                    s, networks[-1], "the chain's from" if i == 0 else "the one it shares with service %s"
                    % services[i - 1]))
                return None
            if i == len(services) - 1:
                if c.interface_on(dst) is None:
                    self.add(sp, "container %s, the last service, has no interface on network %s (the chain's to)"
                             % (s, dst))
                    return None
                networks.append(dst)
                continue
            nxt = conts[services[i + 1]]
            shared = [itf.network for itf in c.interfaces
                      if itf.network not in networks and itf.network != dst and nxt.interface_on(itf.network)]
            if len(shared) != 1:
                self.add(sp, "containers %s and %s share %s: between two services of a chain there is exactly one "
                             "network, other than the chain's from, to and the networks before it"
                         % (s, services[i + 1], "networks " + ", ".join(shared) if shared else "no such network"))
                return None
            if not self._chain_network(sp, nets[shared[0]]):
                return None
            networks.append(shared[0])
        return networks

    def _chain_network(self, p, net):
        """Whether a chain can run over ``net`` (else the reason said at ``p``)."""
        why = None
        if net.macvlan is not None:
            why = "is a macvlan network"
        elif net.routed:
            why = "is a routed overlay (a chain's hops need one layer-2 segment)"
        elif net.subnet6 is not None:
            why = "has IPv6 (%s; chains steer IPv4 only)" % ("IPv6 only" if net.subnet is None else "dual stack")
        elif net.tenant is not None:
            why = "belongs to tenant %s (its traffic between networks is routed by the tenant's router)" % net.tenant
        elif net.isolated:
            why = "is isolated"
        if why:
            self.add(p, "network %s %s: not supported in a chain yet" % (net.name, why))
        return why is None

    def _chain_routes(self, p, ch, conts, nets, routed):
        """Fill ``ch.routes`` [(container, network of its interface, network routed to, via container)]; False with
        the problems said. ``routed``: {(container, network routed to): chain} over the chains so far."""
        src, dst, services, networks = ch.source, ch.target, ch.services, ch.networks
        routes = []
        for c in sorted(conts.values(), key=lambda c: c.name):
            if c.name in services:
                continue
            if c.interface_on(src) is not None:
                routes.append((c.name, src, dst, services[0]))
            if c.interface_on(dst) is not None:
                routes.append((c.name, dst, src, services[-1]))
        for i in range(len(services) - 1):
            routes.append((services[i], networks[i + 1], dst, services[i + 1]))
            routes.append((services[i + 1], networks[i + 1], src, services[i]))
        ok, said = True, set()
        for c, on, to, via in routes:
            a, b = conts[c], conts[via]
            if a.interface_on(to) is not None:
                if c in said:
                    continue
                said.add(c)
                self.add(p, "container %s is on both networks %s and %s: its traffic between them cannot pass the "
                            "chain" % (c, on, to))
                ok = False
            elif a.host != b.host and (nets[on].overlay is None or nets[on].routed):
                self.add(p, "container %s (host %s) reaches %s (host %s) on network %s, which has no overlay "
                            "spanning hosts: a chain's hop is one layer-2 segment" % (c, a.host, via, b.host, on))
                ok = False
            elif routed.get((c, to), ch.name) != ch.name:
                self.add(p, "container %s already routes to network %s through chain %s" % (c, to, routed[(c, to)]))
                ok = False
        if ok:
            routed.update({(c, to): ch.name for c, _on, to, _via in routes})
            ch.routes = routes
        return ok
