"""Semantic checks of the hosts section."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_ipv6 import NOT_UNICAST, family_hint
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict


class HostChecks(object):
    def hosts(self):
        out = {}
        hosts = self.data.get("hosts")
        if not is_dict(hosts):
            return out
        for name, spec in hosts.items():
            if not is_dict(spec) or not isinstance(name, str):
                continue    # the schema reports it
            p = "hosts.%s" % name
            underlay = None
            if isinstance(spec.get("underlay"), str):
                underlay = self._underlay(p + ".underlay", spec["underlay"])
            mtu = spec.get("underlay_mtu", model.DEFAULT_MTU)
            if not self.mtu(p + ".underlay_mtu", mtu):
                mtu = model.DEFAULT_MTU
            docker_host = spec.get("docker_host") if isinstance(spec.get("docker_host"), str) else None
            plugin = spec.get("docker_plugin") if isinstance(spec.get("docker_plugin"), str) else None
            out[name] = model.Host(name, underlay, mtu if isinstance(mtu, int) else model.DEFAULT_MTU, docker_host,
                                   plugin)
            out[name].bgp = self._bgp(p, spec.get("bgp"), underlay)
            if isinstance(spec.get("router_netns_prefix"), str):
                out[name].router_prefix = spec["router_netns_prefix"]
        return out

    def _underlay(self, p, text):
        """A host's underlay address, IPv4 or IPv6 (a global unicast one: VXLAN, tinc and routed next hops need an
        address that means the same on every host), as an interface (with its prefix length), or None."""
        version = 6 if family_hint(text, "-") else 4
        try:
            if version == 6:
                underlay = ipaddress.IPv6Interface(text if "/" in text else text + "/128")
            else:
                underlay = ipaddress.IPv4Interface(text if "/" in text else text + "/32")
        except ValueError as e:
            self.add(p, "%r is not an IPv4 or IPv6 address (%s)" % (text, e))
            return None
        for net, what in NOT_UNICAST:
            if version == 6 and underlay.ip in net:
                self.add(p, "%s is a %s address; an underlay address is a global unicast one" % (underlay.ip, what))
                return None
        return underlay

    def _bgp(self, p, raw, underlay):
        """(asn, [(address, asn)]) of a host's BGP speaker (kinds.bgp), or None."""
        if not is_dict(raw) or not isinstance(raw.get("asn"), int) or not isinstance(raw.get("neighbors"), list):
            return None     # absent, or the schema reports it
        if underlay is None:
            self.add(p + ".bgp", "a BGP speaker needs the host's underlay address (its router id and next hop)")
        elif underlay.version == 6:
            self.add(p + ".bgp", "a BGP speaker on a host with an IPv6 underlay address is not supported yet (its "
                                 "router id and IPv4 next hop come from an IPv4 underlay address)")
            return None
        peers = []
        for i, n in enumerate(raw["neighbors"]):
            if not (is_dict(n) and isinstance(n.get("address"), str) and isinstance(n.get("asn"), int)):
                continue    # the schema reports it
            try:
                addr = ipaddress.IPv4Address(n["address"])
            except ValueError as e:
                self.add("%s.bgp.neighbors[%d].address" % (p, i), "%r is not an IPv4 address (%s)" % (n["address"], e))
                continue
            if underlay is not None and addr == underlay.ip:
                self.add("%s.bgp.neighbors[%d].address" % (p, i), "%s is this host's own address" % addr)
            if addr in [a for a, _asn in peers]:
                self.add("%s.bgp.neighbors[%d].address" % (p, i), "%s is already a neighbor" % addr)
            peers.append((addr, n["asn"]))
        return (raw["asn"], peers)
