"""Semantic checks of the containers section: interfaces, addresses, MACs, names, default routes, published
ports."""

import ipaddress
import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict, parse_ports, ports_text
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import MAC_RE


class ContainerChecks(object):
    def containers(self, hosts, nets):
        out = {}
        conts = self.data.get("containers", {})
        if not is_dict(conts):
            return out
        seen = self.seen = _Seen(self._host_ifnames(hosts, nets, conts))     # check_attach goes on with it
        for cname, spec in conts.items():
            if not is_dict(spec) or not isinstance(cname, str):
                continue    # the schema reports it
            c = self._container(cname, spec, hosts, nets, seen)
            if c is not None:
                out[cname] = c
        for (host, netname), count in sorted(seen.ports.items()):
            if count > model.BRIDGE_MAX_PORTS:
                self.add("networks.%s" % netname, "would have %d ports on host %s; a Linux bridge takes at most %d"
                         % (count, host, model.BRIDGE_MAX_PORTS))
        return out

    @staticmethod
    def _host_ifnames(hosts, nets, conts):
        """host -> {interface name: path} of the names netstitch's bridges and overlay devices take on each host."""
        host_ifnames = {host: {} for host in hosts}
        # the hosts containers name (once: not once per network)
        cont_hosts = set(c.get("host") for c in conts.values() if is_dict(c) and isinstance(c.get("host"), str))
        for name, n in nets.items():
            if n is None:
                continue
            for h in n.hosts | cont_hosts:
                if h in host_ifnames:
                    host_ifnames[h].setdefault(n.bridge, "networks.%s.bridge" % name)
                    if n.overlay is not None and n.overlay.device:
                        host_ifnames[h].setdefault(n.overlay.device, "networks.%s.overlay.device" % name)
        return host_ifnames

    def _container(self, cname, spec, hosts, nets, seen):
        p = "containers.%s" % cname
        host = spec.get("host")
        if not isinstance(host, str):
            host = None     # missing or not a string: the schema reports it
        elif host not in hosts:
            if is_dict(self.data.get("hosts")):
                self.add(p + ".host", "unknown host %r (not under hosts)" % host)
            host = None
        kind = spec.get("kind", "netns")
        netns = spec.get("netns", cname)
        if kind == "docker" and "netns" in spec:
            self.add(p + ".netns", "netns applies to kind netns only")
        if kind == "netns" and "docker" in spec:
            self.add(p + ".docker", "docker applies to kind docker only")
        raw_ifaces = spec.get("interfaces") if isinstance(spec.get("interfaces"), list) else []
        c = _Where(cname, p, host, kind, netns, {}, [],
                   # an interface asking for the default route takes it from the first interface's implicit default
                   any(is_dict(x) and x.get("default_route") is True for x in raw_ifaces),
                   (host, netns) if host is not None and kind == "netns" and isinstance(netns, str) else None)
        ifaces = []
        for i, ispec in enumerate(raw_ifaces):
            if is_dict(ispec):
                itf = self._interface(c, i, ispec, nets, seen)
                if itf is not None:
                    ifaces.append(itf)
        if len(c.default_routes) > 1:
            self.add(c.default_routes[1] + ".default_route",
                     "only one interface can carry the default route (also asked by %s)" % c.default_routes[0])
        expose = self._expose(p, spec.get("expose"))
        publish = self.publish(p, _publish_all(spec, expose), host, ifaces, nets)
        if host is not None and len(ifaces) == len(raw_ifaces):
            return model.Container(cname, host, kind, netns if isinstance(netns, str) else cname,
                                   spec.get("docker", cname), ifaces, publish, expose)
        return None

    def _expose(self, p, raw):
        """[(protocol, first, last)] of the exposed ports (80, "80/tcp", "53/udp", "8000-8010/tcp")."""
        out = []
        for j, v in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, str) and EXPOSE_RE.match(v))):
                continue    # the schema reports it
            proto = "tcp"
            if isinstance(v, str) and "/" in v:
                v, proto = v.split("/", 1)
            if isinstance(v, str) and v.isdigit():
                v = int(v)
            r = parse_ports(v)
            if isinstance(r, str) or proto not in ("tcp", "udp"):
                self.add("%s.expose[%d]" % (p, j), r if isinstance(r, str) else "protocol %r: tcp or udp" % proto)
                continue
            out.append((proto, r[0], r[1]))
        return out

    def _interface(self, c, i, ispec, nets, seen):
        ip_ = "%s.interfaces[%d]" % (c.path, i)
        netname = ispec.get("network")
        net = None
        if isinstance(netname, str):
            if netname not in nets:
                self.add(ip_ + ".network", "unknown network %r (not under networks)" % netname)
            else:
                net = nets[netname]
        ifname, host_name = self._names(c, i, ip_, ispec, seen)
        # The scope of an address: an overlay spans hosts; a local network is one segment per host.
        scope = None if net is not None and (net.overlay is not None or net.macvlan is not None) else c.host
        addr = self._address(ip_, ispec, net, netname, scope, seen)
        addr6 = self.interface6(ip_, ispec, net, netname, scope, seen)
        mac = self._mac(ip_, ispec, net, netname, scope, seen)
        is_default, soft = self._default_route(c, i, ip_, ispec, net, netname, seen)
        if net is not None and c.host is not None:
            self.carried.add((c.host, netname))
            seen.ports[(c.host, netname)] = seen.ports.get((c.host, netname), 0) + 1
        if net is None or not isinstance(ifname, str) or not isinstance(host_name, str):
            return None
        itf = model.Interface(i, netname, ifname, host_name, addr,
                              mac if isinstance(mac, str) else model.derived_mac(netname, c.name, ifname),
                              is_default is True)
        itf.default_route_soft = soft
        itf.ip6 = addr6
        return itf

    def _names(self, c, i, ip_, ispec, seen):
        """The interface's name in the container and its host end's name, each unique where it must be."""
        ifname = ispec.get("name", model.default_ifname(c.kind, i))
        if isinstance(ifname, str):
            self.ifname(ip_ + ".name", ifname)
            if ifname in c.names:
                self.add(ip_ + ".name", "interface name %r is also used by %s" % (ifname, c.names[ifname]))
            c.names.setdefault(ifname, ip_)
            if ifname == "lo":
                self.add(ip_ + ".name", "'lo' is the container's loopback interface")
            if c.ns_key is not None:
                other = seen.ns_ifnames.setdefault(c.ns_key, {}).setdefault(ifname, (c.name, ip_))
                if other[0] != c.name:
                    self.add(ip_ + ".name", "interface name %r in namespace %s on host %s is also used by %s"
                             % (ifname, c.netns, c.host, other[1]))
        host_name = ispec.get("host_name", model.default_host_ifname(c.name, ifname if isinstance(ifname, str) else str(i)))
        if isinstance(host_name, str):
            self.ifname(ip_ + ".host_name", host_name, generated="host_name" not in ispec)
            if c.host is not None:
                other = seen.host_ifnames[c.host].get(host_name)
                if other:
                    self.add(ip_ + ".host_name", "interface name %r on host %s is also used by %s" % (host_name, c.host, other))
                seen.host_ifnames[c.host].setdefault(host_name, ip_ + ".host_name")
        return ifname, host_name

    def _address(self, ip_, ispec, net, netname, scope, seen):
        addr = None
        if net is not None and net.v6only and "ip" in ispec:
            self.add(ip_ + ".ip", "networks.%s is IPv6-only (subnet6 without subnet): no IPv4 address on it%s"
                     % (netname, "; give ip6" if ip_.startswith("containers.") else ""))
        elif net is not None and isinstance(ispec.get("ip"), str):
            addr = self.address_in(ip_ + ".ip", ispec["ip"], net.subnet, "ip6")
            if addr is not None and net.gateway is not None and addr == net.gateway:
                self.add(ip_ + ".ip", "%s is the gateway of networks.%s" % (addr, netname))
                addr = None
            if addr is not None:
                used = seen.fixed_ips.setdefault((netname, scope), {})
                if addr in used:
                    self.add(ip_ + ".ip", "%s is also used by %s" % (addr, used[addr]))
                used.setdefault(addr, ip_ + ".ip")
        return addr

    def _mac(self, ip_, ispec, net, netname, scope, seen):
        mac = ispec.get("mac")
        if isinstance(mac, str) and not MAC_RE.match(mac):
            mac = None      # the schema reports the format
        if isinstance(mac, str) and net is not None:
            mac = mac.lower()
            if int(mac[0:2], 16) & 1:
                self.add(ip_ + ".mac", "%s is a multicast MAC address; an interface needs a unicast one" % mac)
            elif mac == "00:00:00:00:00:00":
                self.add(ip_ + ".mac", "%s is the all-zero MAC address; an interface needs a unicast one" % mac)
            used = seen.macs.setdefault((netname, scope), {})
            if mac in used:
                self.add(ip_ + ".mac", "MAC %s is also used by %s" % (mac, used[mac]))
            used.setdefault(mac, ip_ + ".mac")
        return mac

    def _default_route(self, c, i, ip_, ispec, net, netname, seen):
        """(whether the interface carries the default route, whether that default yields to Docker's)."""
        is_default = ispec.get("default_route")
        soft = False
        if is_default is None:
            is_default = i == 0 and not c.explicit_default and not (net is not None and net.internal)
            # Docker gives most containers a default route of its own: the implicit one yields to it
            soft = is_default and c.kind == "docker"
        elif is_default is True:
            if net is not None and net.internal:
                self.add(ip_ + ".default_route", "networks.%s is internal: it has no way out to route through" % netname)
            c.default_routes.append(ip_)
        if is_default is True and c.ns_key is not None:
            other = seen.ns_default.setdefault(c.ns_key, (c.name, ip_))
            if other[0] != c.name:
                self.add(ip_ + ".default_route", "namespace %s on host %s already gets its default route from %s"
                         % (c.netns, c.host, other[1]))
        return is_default, soft

    def publish(self, p, raw, host, ifaces, nets):
        out = []
        if not isinstance(raw, list):
            return out
        for i, pub in enumerate(raw):
            if not is_dict(pub):
                continue
            pp = "%s.publish[%d]" % (p, i)
            auto = pub.get("host_port", "auto") == "auto"     # the host picks the port (ports.py)
            hp = parse_ports(pub.get("host_port")) if not auto else None
            cp = parse_ports(pub.get("container_port", pub.get("host_port")))
            bad = False
            for key, val in (("host_port", hp), ("container_port", cp)):
                if isinstance(val, str):
                    if key in pub:
                        self.add("%s.%s" % (pp, key), val)
                    bad = True
            if auto:
                bad = self._auto(pp, pub, cp) or bad
                hp = cp
            elif not bad and hp[1] - hp[0] != cp[1] - cp[0]:
                self.add(pp + ".container_port", "range %s has %d ports but host_port %s has %d"
                         % (ports_text(*cp), cp[1] - cp[0] + 1, ports_text(*hp), hp[1] - hp[0] + 1))
                bad = True
            net = pub.get("network")
            if isinstance(net, str):
                if not any(itf.network == net for itf in ifaces):
                    self.add(pp + ".network", "the container has no interface on network %r" % net)
                    bad = True
                elif nets.get(net) is not None and nets[net].internal:
                    self.add(pp + ".network", "networks.%s is internal: nothing can be published into it" % net)
                    bad = True
            else:
                usable = [itf.network for itf in ifaces if nets.get(itf.network) is not None
                          and not nets[itf.network].internal]
                if not usable:
                    if ifaces:
                        self.add(pp, "the container has no interface on a network that is not internal")
                    bad = True
                else:
                    net = usable[0]
            host_ip, bad_ip = self._host_ip(pp, pub, nets.get(net) if isinstance(net, str) else None)
            bad = bad or bad_ip
            proto = pub.get("protocol", "tcp")
            if bad or host is None or proto not in ("tcp", "udp"):
                continue    # an odd protocol: the schema reports it
            if auto:
                key = (c_name(p), host_ip, proto, cp[0])
                if key in self.auto_seen:
                    self.add(pp, "%s publishes %s %s/%d on an automatic host port twice (also %s)"
                             % (key[0], host_ip or "*", proto, cp[0], self.auto_seen[key]))
                    continue
                self.auto_seen[key] = pp
                out.append(model.Publish(host_ip, proto, None, cp[0], net))
                continue
            # what it takes: (family, address or None for every address of that family)
            if host_ip is None or host_ip == ANY6:
                dual = host_ip is None and nets.get(net) is not None and nets[net].subnet6 is not None
                only6 = nets.get(net) is not None and nets[net].v6only    # every IPv6 address, and no IPv4 one
                spots = [(6, None)] if only6 else [(4, None), (6, None)] if dual else [(6 if host_ip else 4, None)]
            else:
                spots = [(host_ip.version, host_ip)]
            for k in range(hp[1] - hp[0] + 1):
                where = "%s (%s %s:%d)" % (pp, proto, _addr_text(host_ip), hp[0] + k)
                taken = self.bound.setdefault(host, {})     # (family, address or None, protocol, port) -> path
                specific = self.bound_specific.setdefault(host, {})   # (family, protocol, port) -> a path with one
                clash = None
                for fam, ip in spots:
                    key = (fam, proto, hp[0] + k)
                    clash = clash or taken.get((fam, ip) + key[1:]) or (
                        taken.get((fam, None) + key[1:]) if ip else specific.get(key))
                if clash:
                    self.add(pp + ".host_port", "%s %s:%d on host %s is also published by %s"
                             % (proto, _addr_text(host_ip), hp[0] + k, host, clash.split(" (")[0]))
                    break
                for fam, ip in spots:
                    taken[(fam, ip, proto, hp[0] + k)] = where
                    if ip is not None:
                        specific.setdefault((fam, proto, hp[0] + k), where)
                out.append(model.Publish(host_ip, proto, hp[0] + k, cp[0] + k, net))
        return out

    def _host_ip(self, pp, pub, net):
        """(the host address of a published port: IPv4Address, IPv6Address, ANY6 or None, whether it is
        unusable). ``net``: the model's network it publishes into (None: unknown)."""
        text = pub.get("host_ip")
        if not isinstance(text, str):
            return None, False
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            self.add(pp + ".host_ip", "%r is not an IPv4 or IPv6 address" % text)
            return None, True
        if addr.version == 4:
            if net is not None and net.v6only:
                self.add(pp + ".host_ip", "%r is an IPv4 address, but networks.%s is IPv6-only: the container has no "
                         "IPv4 address to publish to; use :: or an IPv6 address of the host" % (text, net.name))
                return None, True
            return addr, False
        if addr.is_loopback:
            self.add(pp + ".host_ip", "%r: IPv6 has no route_localnet, and Linux never routes a packet with the "
                     "loopback source ::1 out of a bridge (a DNAT from ::1 to the container is lost), so a port "
                     "cannot be published on ::1; use 127.0.0.1 for a port only the host reaches, or one of the "
                     "host's IPv6 addresses" % text)
            return None, True
        if addr.is_multicast or addr.is_link_local or addr.ipv4_mapped is not None:
            self.add(pp + ".host_ip", "%r is not a unicast IPv6 address of the host (multicast, link-local and "
                     "IPv4-mapped addresses are not published on)" % text)
            return None, True
        if net is not None and net.subnet6 is None:
            self.add(pp + ".host_ip", "%r is an IPv6 address, but networks.%s has no subnet6: the container has no "
                     "IPv6 address to publish to" % (text, net.name))
            return None, True
        return (ANY6 if addr.is_unspecified else addr), False

    def _auto(self, pp, pub, cp):
        """Checks of an automatic host port; True when it is unusable."""
        if "container_port" not in pub:
            self.add(pp + ".container_port", "an automatic host port (host_port auto or omitted) needs container_port")
            return True
        if not isinstance(cp, str) and cp[0] != cp[1]:
            self.add(pp + ".container_port", "an automatic host port maps one port, not the range %s"
                     % ports_text(*cp))
            return True
        return False


ANY6 = "::"      # host_ip: every IPv6 address of the host


def _addr_text(host_ip):
    """A published port's host address as the messages show it: "*" (every address), "[::]", "[2001:db8::1]"."""
    if host_ip is None:
        return "*"
    return "[%s]" % host_ip if ":" in str(host_ip) else str(host_ip)


EXPOSE_RE = re.compile(r"^[0-9]+(-[0-9]+)?(/(tcp|udp))?$")


def _publish_all(spec, expose):
    """The publish list, with publish_all (Docker's -P): every exposed port on an automatic host port, unless the
    list maps that container port (and protocol) already."""
    raw = spec.get("publish")
    if spec.get("publish_all") is not True or not expose:
        return raw
    raw = list(raw) if isinstance(raw, list) else []
    mapped = set()
    for pub in raw:
        if is_dict(pub):
            cp = parse_ports(pub.get("container_port", pub.get("host_port")))
            if not isinstance(cp, str):
                mapped.update((pub.get("protocol", "tcp"), n) for n in range(cp[0], cp[1] + 1))
    for proto, first, last in expose:
        raw += [{"container_port": n, "protocol": proto} for n in range(first, last + 1) if (proto, n) not in mapped]
    return raw


def c_name(path):
    """The container's name in a path "containers.NAME"."""
    return path.split(".", 1)[1] if path.startswith("containers.") else path


class _Seen(object):
    """What the containers checked so far use, to find what is used twice."""

    def __init__(self, host_ifnames):
        self.fixed_ips = {}     # (network, scope) -> {ip: path}
        self.macs = {}          # (network, scope) -> {mac: path}
        self.host_ifnames = host_ifnames    # host -> {name: path}
        self.ports = {}         # (host, network) -> count
        self.ns_ifnames = {}    # (host, netns) -> {ifname: (container, path)}: containers may share a namespace
        self.ns_default = {}    # (host, netns) -> (container, path of the interface carrying the default route)


class _Where(object):
    """The container whose interfaces are being checked."""

    def __init__(self, name, path, host, kind, netns, names, default_routes, explicit_default, ns_key):
        self.name, self.path, self.host, self.kind, self.netns = name, path, host, kind, netns
        self.names = names                      # interface name -> path, within the container
        self.default_routes = default_routes    # paths of the interfaces asking for the default route
        self.explicit_default = explicit_default
        self.ns_key = ns_key                    # (host, netns) for a netns container
