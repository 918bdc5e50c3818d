"""Semantic checks of IPv6 (dual stack): a network's subnet6 and gateway6, an interface's ip6, and the clear errors
for an IPv6 value where an IPv4 one belongs.

Every address is parsed with the ipaddress module and compared as an object, so a textual form never matters:
``2001:db8::1``, ``2001:0DB8:0:0::1`` and ``2001:db8:0:0:0:0:0:1`` are one address, and the model (and everything
compiled from it) holds the canonical form (RFC 5952).

The rules:
- subnet6 is a unicast range (not multicast, link-local, loopback or IPv4-mapped) with a prefix length from /64 to
  /120. netstitch addresses statically (no SLAAC, no router advertisements), so a segment need not be a /64, but one
  link takes no more than a /64 (its interface identifiers are 64 bits, RFC 4291); /120 leaves, after the reserved
  addresses, 126 addresses.
- Never handed out, never a gateway or a fixed address: the subnet-router anycast address (the subnet's first,
  RFC 4291 2.6.1) and the reserved subnet anycast addresses (RFC 2526: in a /64 the interface identifiers
  fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff, in a longer prefix the subnet's last 128 addresses).
- IPv6-only: a network with subnet6 and no subnet has no IPv4 at all (no gateway, masquerade or interface ip; its
  overlay slices are parts of the subnet6 itself, controller.placement); what needs IPv4 is refused (v6only_network).
- On a vxlan or tinc overlay (layer 2) each host allocates from its IPv6 slice (controller.placement: the same share of the subnet6
  as its IPv4 slice is of the subnet); the gateway6 is on every host's bridge, as the IPv4 gateway.
- On a routed overlay each host owns its IPv6 slice (its bridge holds the slice's second address, a fixed ip6 lies in
  its host's slice) and routes the others' via their IPv6 underlay addresses, or over an IPv4 underlay via their
  IPv6 link-local addresses (Linux routes IPv6 via no IPv4 next hop). Not yet supported, said as such: on isolated
  routed networks. A network offered to Docker's bridge driver gives Docker an IPv6 range too
  (model.docker_range6); through netstitch's plugin, Docker asks for the subnet6 pool. (An isolated dual-stack
  network is isolated statefully where bridged IPv6 passes the inet hooks, bridge-nf-call-ip6tables, else
  statelessly in the bridge family, kinds.nft.)
"""

import ipaddress

PREFIX_MIN, PREFIX_MAX = 64, 120
ANYCAST_COUNT = 128         # RFC 2526: the reserved subnet anycast addresses at the top of a subnet
_EUI64_ANYCAST_FIRST = 0xFDFFFFFFFFFFFF80
_IID_MASK = (1 << 64) - 1
NOT_UNICAST = (
    (ipaddress.IPv6Network("ff00::/8"), "multicast"),
    (ipaddress.IPv6Network("fe80::/10"), "link-local"),
    (ipaddress.IPv6Network("::ffff:0:0/96"), "IPv4-mapped"),
    (ipaddress.IPv6Network("::/64"), "unspecified and loopback"),
)


def reserved_reason(addr, subnet):
    """Why ``addr`` (in ``subnet``) may be neither a gateway nor an interface's address, or None."""
    if addr == subnet.network_address:
        return "%s is the subnet-router anycast address of %s (RFC 4291)" % (addr, subnet)
    if subnet.prefixlen == 64:
        reserved = _EUI64_ANYCAST_FIRST <= (int(addr) & _IID_MASK) <= _EUI64_ANYCAST_FIRST + ANYCAST_COUNT - 1
    else:
        reserved = int(addr) > int(subnet.broadcast_address) - ANYCAST_COUNT
    if reserved:
        return "%s is one of the reserved subnet anycast addresses at the top of %s (RFC 2526)" % (addr, subnet)
    return None


def reserved_count(pool, subnet):
    """How many of the reserved addresses of ``subnet`` (reserved_reason) lie in ``pool``, a part of it."""
    if subnet.prefixlen == 64:
        first = (int(subnet.network_address) & ~_IID_MASK) + _EUI64_ANYCAST_FIRST
    else:
        first = int(subnet.broadcast_address) - ANYCAST_COUNT + 1
    lo, hi = int(pool.network_address), int(pool.broadcast_address)
    anycast = max(0, min(hi, first + ANYCAST_COUNT - 1) - max(lo, first) + 1)
    return anycast + (1 if subnet.network_address in pool else 0)


def family_hint(text, v6_field):
    """When ``text`` (given where an IPv4 value belongs) is IPv6: the problem's text, saying where it goes; else
    None."""
    try:
        value = ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
    except ValueError:
        return None
    if value.version != 6:
        return None
    what = "subnet" if "/" in text else "address"
    return "%r is an IPv6 %s; it goes under %s" % (text, what, v6_field)


class IPv6Checks(object):
    def subnet6(self, p, spec, subnet6_field="subnet6"):
        """The network's IPv6 subnet (an ipaddress.IPv6Network), or None (with the problem said, unless absent or
        not a string, which the schema reports)."""
        text = spec.get(subnet6_field)
        if not isinstance(text, str):
            return None
        path = "%s.%s" % (p, subnet6_field)
        try:
            subnet = ipaddress.ip_network(text, strict=False)
        except ValueError as e:
            self.add(path, "%r is not an IPv6 subnet (%s)" % (text, e))
            return None
        if subnet.version != 6:
            self.add(path, "%r is an IPv4 subnet; it goes under subnet" % text)
            return None
        if "%" in text:
            self.add(path, "%r has a zone index; a subnet has none" % text)
            return None
        if "/" not in text:
            self.add(path, "%r needs a prefix length (for example %s/64)" % (text, text))
            return None
        if ipaddress.IPv6Address(text.split("/")[0]) != subnet.network_address:
            self.add(path, "%r has host bits set; did you mean %s?" % (text, subnet))
            return None
        for special, what in NOT_UNICAST:
            if subnet.overlaps(special):
                self.add(path, "%s is in the %s range %s; a network needs a unicast range (2001:db8::/32 in "
                               "examples, a ULA fd00::/8 or a global prefix)" % (subnet, what, special))
                return None
        if subnet.prefixlen < PREFIX_MIN:
            self.add(path, "%s is larger than a /%d: one link takes at most a /64 (64-bit interface identifiers, "
                           "RFC 4291)" % (subnet, PREFIX_MIN))
            return None
        if subnet.prefixlen > PREFIX_MAX:
            self.add(path, "%s is too small: an IPv6 network needs at least a /%d (after the subnet-router anycast "
                           "and the %d reserved anycast addresses of RFC 2526)" % (subnet, PREFIX_MAX, ANYCAST_COUNT))
            return None
        return subnet

    def address6_in(self, path, text, subnet):
        """An IPv6 address inside ``subnet`` that is not reserved, or None (with the problem said)."""
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            self.add(path, "%r is not an IPv6 address" % (text,))
            return None
        if addr.version != 6:
            self.add(path, "%r is an IPv4 address; it goes under %s" % (text, "gateway" if path.endswith(
                "gateway6") else "ip"))
            return None
        if getattr(addr, "scope_id", None):
            self.add(path, "%r has a zone index; an address on a network has none" % (text,))
            return None
        if addr not in subnet:
            self.add(path, "%s is outside the subnet6 %s" % (addr, subnet))
            return None
        reason = reserved_reason(addr, subnet)
        if reason:
            self.add(path, reason)
            return None
        return addr

    def v6only_network(self, p, name, spec):
        """Whether a network without ``subnet`` is a usable IPv6-only network (its subnet6 is checked by network6);
        what needs an IPv4 subnet is refused with its path."""
        if "subnet6" not in spec:
            self.add(p + ".subnet", "a network needs subnet (IPv4), subnet6 (IPv6) or both")
            return False
        ok = isinstance(spec["subnet6"], str)   # else the schema reports the type
        what = "networks.%s is IPv6-only (subnet6 without subnet)" % name
        for key, why in (("gateway", "it has no IPv4 gateway; the bridge's gateway is gateway6"),
                         ("macvlan", "a macvlan network on an IPv6-only segment is not supported yet; give it a subnet"),
                         ("inbound", "a routed gateway (inbound) is not supported yet on an IPv6-only network; give it "
                                     "a subnet")):
            if key in spec:
                self.add("%s.%s" % (p, key), "%s: %s" % (what, why))
                ok = False
        if spec.get("masquerade") is True:
            self.add(p + ".masquerade", "%s: masquerade is NAT of IPv4; NAT66 is masquerade6" % what)
            ok = False
        return ok

    def network6(self, p, spec, net_ok, overlay_spec):
        """(subnet6, gateway6, fine) of a network: both None when it has no subnet6."""
        subnet6 = self.subnet6(p, spec)
        gateway6 = None
        ok = net_ok and (subnet6 is not None or not isinstance(spec.get("subnet6"), str))
        for key in ("gateway6", "masquerade6"):
            if key in spec and spec[key] is not False and "subnet6" not in spec:
                self.add("%s.%s" % (p, key), "%s needs subnet6 (the network has no IPv6 subnet)" % key)
                return None, None, False
        if spec.get("masquerade6") is True and spec.get("internal") is True:
            self.add(p + ".masquerade6", "an internal network has no way out, so it cannot masquerade")
            ok = False
        if subnet6 is None:
            return None, None, ok
        if isinstance(overlay_spec, dict) and overlay_spec.get("type") == "routed" and "subnet" not in spec:
            self.add(p + ".subnet6", "an IPv6-only routed overlay is not supported yet (its IPv6 slices are derived "
                                     "from the IPv4 ones); give it an IPv4 subnet too, or use a vxlan or tinc overlay")
            ok = False
        elif isinstance(overlay_spec, dict) and overlay_spec.get("type") == "routed":
            # Linux takes no IPv4 next hop for an IPv6 route (RTA_VIA: "IPv6 does not support RTA_VIA attribute"),
            # so over an IPv4 underlay the peers' IPv6 slices go via their IPv6 link-local addresses (prepare)
            if "gateway6" in spec:
                self.add(p + ".gateway6", "a routed network has one IPv6 gateway per host (the second address of "
                                          "each host's IPv6 slice); leave gateway6 out")
                ok = False
            if spec.get("isolated") is True:
                self.add(p + ".isolated", "an isolated routed network with subnet6 is not supported yet; leave "
                                          "subnet6 or isolated out")
                ok = False
        if isinstance(spec.get("gateway6"), str):
            gateway6 = self.address6_in(p + ".gateway6", spec["gateway6"], subnet6)
            ok = ok and gateway6 is not None
        elif "gateway6" not in spec:
            gateway6 = subnet6.network_address + 1
        else:
            ok = False      # not a string: the schema reports it
        return subnet6, gateway6, ok

    def overlaps6(self, nets):
        items = sorted((n.subnet6, name) for name, n in nets.items() if n is not None and n.subnet6 is not None)
        for i, (a, an) in enumerate(items):
            for b, bn in items[i + 1:]:
                if b.network_address > a.broadcast_address:
                    break
                if a.overlaps(b):
                    self.add("networks.%s.subnet6" % bn, "%s overlaps %s of networks.%s" % (b, a, an))

    def interface6(self, ip_, ispec, net, netname, scope, seen):
        """The interface's fixed IPv6 address, or None (allocated, or a problem said)."""
        text = ispec.get("ip6")
        if net is None or not isinstance(text, str):
            return None
        if net.subnet6 is None:
            self.add(ip_ + ".ip6", "networks.%s has no subnet6, so no IPv6 address" % netname)
            return None
        addr = self.address6_in(ip_ + ".ip6", text, net.subnet6)
        # routed: its host's slice and gateway are checked in capacity6, once the slices are placed
        if addr is not None and not net.routed and addr == net.gateway6:
            self.add(ip_ + ".ip6", "%s is the IPv6 gateway of networks.%s" % (addr, netname))
            addr = None
        if addr is not None:
            used = seen.fixed_ips.setdefault((netname, scope, 6), {})
            if addr in used:
                self.add(ip_ + ".ip6", "%s is also used by %s" % (addr, used[addr]))
            used.setdefault(addr, ip_ + ".ip6")
        return addr

    def capacity6(self, conts, nets):
        """Each host's IPv6 pool (its IPv6 slice of an overlay, else the subnet6) must hold the interfaces that get
        an allocated IPv6 address; on an overlay every fixed address and the gateway6 are taken on every host."""
        need, fixed = {}, {}
        for c in conts.values():
            for itf in c.interfaces:
                n = nets.get(itf.network)
                if n is None or n.subnet6 is None:
                    continue
                if itf.ip6 is not None and n.routed and c.host in n.overlay.slices6 and (
                        itf.ip6 not in n.overlay.slices6[c.host] or itf.ip6 == n.gateway6_on(c.host)):
                    self.add("containers.%s.interfaces[%d].ip6" % (c.name, itf.index), "%s is %s host %s's IPv6 "
                             "slice %s of the routed networks.%s" % (
                                 itf.ip6, "outside" if itf.ip6 not in n.overlay.slices6[c.host] else "the gateway of",
                                 c.host, n.overlay.slices6[c.host], n.name))
                if itf.ip6 is not None:
                    fixed.setdefault(None if n.shared else c.host, {}).setdefault(n.name, set()).add(itf.ip6)
                else:
                    need[(c.host, n.name)] = need.get((c.host, n.name), 0) + 1
        for (host, name), count in sorted(need.items()):
            n = nets[name]
            if n.overlay is not None and host not in n.overlay.slices6:
                continue        # no slice (placement said why)
            pool = n.pool6(host)
            seg = n.segment6(host)
            docker = n.docker_range6(host)     # Docker's share of the pool (no reserved address in it)
            taken = {a for a in fixed.get(None if n.shared else host, {}).get(name, set()) | {n.gateway6_on(host)}
                     if a in pool and not reserved_reason(a, seg) and not (docker and a in docker)}
            free = min(pool.num_addresses - (docker.num_addresses if docker else 0), 1 << 40) - \
                reserved_count(pool, seg) - len(taken)
            if count > free:
                self.add("networks.%s.subnet6" % name, "host %s needs %d allocated IPv6 addresses but %s has only "
                         "%d free" % (host, count, pool, max(free, 0)))
