"""Where each host's addresses come from: overlay slices (placed by the host's underlay address modulo the
number of slices, or given), Docker's ranges, and whether every pool holds its containers."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model


class Placement(object):
    def place_overlays(self, hosts, nets):
        """Give every host carrying an overlay its slice; check underlays, slice clashes and the MTU budget."""
        for name, n in sorted(nets.items()):
            if n is None or n.overlay is None:
                if n is not None and n.mtu is None:
                    n.mtu = model.DEFAULT_MTU
                continue
            o, p = n.overlay, "networks.%s.overlay" % name
            base = n.subnet6 if n.v6only else n.subnet     # an IPv6-only overlay: slices of the subnet6 itself
            nslices = 2 ** (o.slice_len - base.prefixlen)
            owner = {}
            families = {}
            for h in sorted(n.hosts):
                if hosts.get(h) is not None and hosts[h].underlay is not None:
                    families.setdefault(hosts[h].underlay.version, []).append(h)
            if len(families) > 1:
                # one tunnel (or route) per pair of hosts: both ends must speak the same IP version
                self.add(p, "the hosts of an overlay share one underlay IP version, but %s" % " and ".join(
                    "%s %s IPv%d" % (", ".join(hs), "is" if len(hs) == 1 else "are", v)
                    for v, hs in sorted(families.items())))
                n.mtu = n.mtu or model.DEFAULT_MTU
                continue
            version = next(iter(families), 4)
            for h in sorted(n.hosts):
                host = hosts.get(h)
                if host is None:
                    continue
                if host.underlay is None:
                    self.add("hosts.%s.underlay" % h, "host carries the %s overlay networks.%s, which needs the "
                             "host's underlay address" % (o.type, name))
                    continue
                if h in o.explicit:
                    sl = o.explicit[h]
                else:
                    index = int(host.underlay.ip) % nslices
                    size = 2 ** (base.max_prefixlen - o.slice_len)
                    sl = type(base)((int(base.network_address) + index * size, o.slice_len))
                for other_sl, other in owner.items():
                    if sl.overlaps(other_sl):
                        self.add("%s.slices.%s" % (p, h) if h in o.explicit else p,
                                 "hosts %s and %s would share the slice %s; set overlay.slices explicitly"
                                 % (other, h, sl))
                        break
                owner[sl] = h
                o.slices[h] = sl
            if n.v6only:
                o.slices6 = dict(o.slices)
            elif n.subnet6 is not None:
                self._slices6(n, p)
            # routed: every host must reach every other directly on one underlay subnet
            if o.type == "routed":
                nets_seen = {}
                for h in sorted(o.slices):
                    u = hosts[h].underlay
                    if u.network.prefixlen == u.max_prefixlen:
                        self.add("hosts.%s.underlay" % h, "routed networks.%s needs the underlay prefix length "
                                 "(for example %s/24) to check the hosts share a subnet" % (name, u.ip))
                    else:
                        nets_seen.setdefault(u.network, []).append(h)
                if len(nets_seen) > 1:
                    self.add(p, "routed mode needs all its hosts on one underlay subnet, but they are on %s"
                             % ", ".join("%s (%s)" % (net, ", ".join(hs)) for net, hs in sorted(nets_seen.items())))
            # MTU budget: the smallest underlay MTU among the hosts, minus the encapsulation
            carrying = [hosts[h] for h in sorted(n.hosts) if h in hosts]
            if carrying:
                low = min(carrying, key=lambda x: x.underlay_mtu)
                cost = model.overhead(o.type, version)
                budget = low.underlay_mtu - cost
                if n.mtu is None:
                    n.mtu = budget
                elif n.mtu > budget:
                    self.add("networks.%s.mtu" % name, "MTU %d is over the %s budget of %d: underlay MTU %d - %d "
                             "bytes of encapsulation%s (the smallest underlay MTU is host %s's)"
                             % (n.mtu, o.type, budget, low.underlay_mtu, cost,
                                " over IPv6, whose header is 20 bytes more than IPv4's" if version == 6 else "",
                                low.name))
            if n.mtu is None:
                n.mtu = model.DEFAULT_MTU - model.overhead(o.type, version)

    def _slices6(self, n, p):
        """Each host's IPv6 slice: derived from its IPv4 slice, at the same place in the subnet6 (the i-th of the
        2^k IPv4 slices owns the i-th of the 2^k IPv6 ones), so two hosts share an IPv6 slice only when they share
        an IPv4 one, which place_overlays already refuses; explicit slices need no IPv6 counterpart."""
        o = n.overlay
        bits = o.slice_len - n.subnet.prefixlen
        plen6 = n.subnet6.prefixlen + bits
        if plen6 > 128:
            self.add("networks.%s.subnet6" % n.name, "%s is too small for the overlay's %d slices (one per %s of "
                     "the subnet %s; a host's IPv6 slice is the same share of the subnet6): use a subnet6 of /%d or "
                     "larger" % (n.subnet6, 2 ** bits, "/%d" % o.slice_len, n.subnet, 128 - bits))
            return
        size6 = 2 ** (128 - plen6)
        for h, sl in o.slices.items():
            index = (int(sl.network_address) - int(n.subnet.network_address)) >> (32 - o.slice_len)
            o.slices6[h] = ipaddress.IPv6Network((int(n.subnet6.network_address) + index * size6, plen6))

    def docker_ranges(self, conts, nets):
        """Docker's range of each host's pool must fit in the pool, and no fixed address may lie in a range Docker
        hands out (Docker does not know netstitch's addresses)."""
        for name, n in sorted(nets.items()):
            if n is None or n.docker is None or n.docker.driver == "netstitch":
                continue
            hosts = sorted(n.overlay.slices) if n.overlay is not None else sorted(n.hosts)
            for h in hosts:
                if not n.offered_to_docker(h):
                    continue
                pool = n.pool(h)
                rl = n.docker.range_len if n.docker.range_len is not None else pool.prefixlen + 1
                if not pool.prefixlen < rl <= 32:
                    if n.docker.range_len is None:
                        self.add("networks.%s.docker" % name, "host %s's pool %s is too small to share with Docker"
                                 % (h, pool))
                    else:
                        self.add("networks.%s.docker.range_len" % name, "%d does not fit host %s's pool %s (%d to 32)"
                                 % (rl, h, pool, pool.prefixlen + 1))
                    n.docker = None
                    break
                if n.subnet6 is not None and (n.overlay is None or h in n.overlay.slices6) and \
                        n.docker_range6(h) is None:
                    self.add("networks.%s.docker" % name, "host %s's IPv6 pool %s is too small to share with Docker "
                             "(Docker's IPv6 range is a quarter of it without reserved addresses)" % (h, n.pool6(h)))
                    n.docker = None
                    break
        for c in conts.values():
            for itf in c.interfaces:
                n = nets.get(itf.network)
                if n is None or n.docker is None or (itf.ip is None and itf.ip6 is None):
                    continue
                shared = n.overlay is not None and not n.routed
                for h in (sorted(n.overlay.slices) if shared else [c.host]):
                    r = n.docker_range(h)
                    if r is not None and itf.ip is not None and itf.ip in r:
                        self.add("containers.%s.interfaces[%d].ip" % (c.name, itf.index),
                                 "%s is in host %s's Docker range %s of networks.%s (Docker hands those addresses out)"
                                 % (itf.ip, h, r, n.name))
                        break
                    r6 = n.docker_range6(h)
                    if r6 is not None and itf.ip6 is not None and itf.ip6 in r6:
                        self.add("containers.%s.interfaces[%d].ip6" % (c.name, itf.index),
                                 "%s is in host %s's Docker IPv6 range %s of networks.%s (Docker hands those "
                                 "addresses out)" % (itf.ip6, h, r6, n.name))
                        break

    def capacity(self, conts, nets):
        """Fixed addresses in routed mode must sit in their host's slice; pools must hold what is to be allocated."""
        need, fixed = {}, {}
        for c in conts.values():
            for itf in c.interfaces:
                n = nets.get(itf.network)
                if n is None or n.v6only or (n.overlay is not None and c.host not in n.overlay.slices) or \
                        (n.macvlan is not None and n.pool(c.host) is None):
                    continue    # (a macvlan network without a range here: check_macvlan says what it needs)
                if itf.ip is not None:
                    fixed.setdefault((c.host, n.name), set()).add(itf.ip)
                    if n.routed and itf.ip not in n.overlay.slices[c.host]:
                        self.add("containers.%s.interfaces[%d].ip" % (c.name, itf.index),
                                 "%s is outside host %s's slice %s of the routed networks.%s"
                                 % (itf.ip, c.host, n.overlay.slices[c.host], n.name))
                    elif n.routed and itf.ip in (n.gateway_on(c.host), n.overlay.slices[c.host].broadcast_address,
                                                 n.overlay.slices[c.host].network_address):
                        self.add("containers.%s.interfaces[%d].ip" % (c.name, itf.index),
                                 "%s is the gateway, network or broadcast address of host %s's slice %s"
                                 % (itf.ip, c.host, n.overlay.slices[c.host]))
                else:
                    need[(c.host, n.name)] = need.get((c.host, n.name), 0) + 1
        for (host, name), count in sorted(need.items()):
            n = nets[name]
            pool, seg = n.pool(host), n.segment(host)
            blocked = {seg.network_address, seg.broadcast_address, n.gateway_on(host)} - {None}
            if n.shared:
                blocked |= {a for (h, nn), s in fixed.items() if nn == name for a in s}
            else:
                blocked |= fixed.get((host, name), set())
            docker = n.docker_range(host)     # Docker's share of the pool: netstitch never allocates there
            free = pool.num_addresses - len({a for a in blocked if a in pool and not (docker and a in docker)}) - \
                (docker.num_addresses if docker else 0)
            if count > free:
                self.add("networks.%s" % name, "host %s needs %d allocated addresses but its pool %s has only %d free"
                         % (host, count, pool, max(free, 0)))
