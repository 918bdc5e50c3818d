"""Semantic checks of the containers section: interfaces, addresses, MACs, names, default routes, published
ports."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict, parse_ports, ports_text
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import MAC_RE


class ContainerChecks(object):
    def containers(self, hosts, nets):
        out = {}
        conts = self.data.get("containers", {})
        if not is_dict(conts):
            return out
        fixed_ips = {}      # (network, scope) -> {ip: path}
        macs = {}           # (network, scope) -> {mac: path}
        host_ifnames = {}   # host -> {name: path}
        for host in hosts:
            host_ifnames[host] = {}
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
        ports = {}          # (host, network) -> count
        ns_ifnames = {}     # (host, netns) -> {ifname: (container, path)}: containers may share a namespace
        ns_default = {}     # (host, netns) -> path of the interface carrying the namespace's default route
        for cname, spec in conts.items():
            if not is_dict(spec) or not isinstance(cname, str):
                continue    # the schema reports it
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
            ifaces = []
            seen_names = {}
            default_routes = []
            raw_ifaces = spec.get("interfaces") if isinstance(spec.get("interfaces"), list) else []
            # an interface asking for the default route takes it from the first interface's implicit default
            explicit_default = any(is_dict(x) and x.get("default_route") is True for x in raw_ifaces)
            ns_key = (host, netns) if host is not None and kind == "netns" and isinstance(netns, str) else None
            for i, ispec in enumerate(raw_ifaces):
                if not is_dict(ispec):
                    continue
                ip_ = "%s.interfaces[%d]" % (p, i)
                netname = ispec.get("network")
                net = None
                if isinstance(netname, str):
                    if netname not in nets:
                        self.add(ip_ + ".network", "unknown network %r (not under networks)" % netname)
                    else:
                        net = nets[netname]
                ifname = ispec.get("name", model.default_ifname(kind, i))
                if isinstance(ifname, str):
                    self.ifname(ip_ + ".name", ifname)
                    if ifname in seen_names:
                        self.add(ip_ + ".name", "interface name %r is also used by %s" % (ifname, seen_names[ifname]))
                    seen_names.setdefault(ifname, ip_)
                    if ifname == "lo":
                        self.add(ip_ + ".name", "'lo' is the container's loopback interface")
                    if ns_key is not None:
                        other = ns_ifnames.setdefault(ns_key, {}).setdefault(ifname, (cname, ip_))
                        if other[0] != cname:
                            self.add(ip_ + ".name", "interface name %r in namespace %s on host %s is also used by %s"
                                     % (ifname, netns, host, other[1]))
                host_name = ispec.get("host_name", model.default_host_ifname(cname, ifname if isinstance(ifname, str) else str(i)))
                if isinstance(host_name, str):
                    self.ifname(ip_ + ".host_name", host_name, generated="host_name" not in ispec)
                    if host is not None:
                        other = host_ifnames[host].get(host_name)
                        if other:
                            self.add(ip_ + ".host_name", "interface name %r on host %s is also used by %s" % (host_name, host, other))
                        host_ifnames[host].setdefault(host_name, ip_ + ".host_name")
                # The scope of an address: an overlay spans hosts; a local network is one segment per host.
                scope = None if net is not None and net.overlay is not None else host
                addr = None
                if net is not None and isinstance(ispec.get("ip"), str):
                    addr = self.address_in(ip_ + ".ip", ispec["ip"], net.subnet)
                    if addr is not None and net.gateway is not None and addr == net.gateway:
                        self.add(ip_ + ".ip", "%s is the gateway of networks.%s" % (addr, netname))
                        addr = None
                    if addr is not None:
                        used = fixed_ips.setdefault((netname, scope), {})
                        if addr in used:
                            self.add(ip_ + ".ip", "%s is also used by %s" % (addr, used[addr]))
                        used.setdefault(addr, ip_ + ".ip")
                mac = ispec.get("mac")
                if isinstance(mac, str) and not MAC_RE.match(mac):
                    mac = None      # the schema reports the format
                if isinstance(mac, str) and net is not None:
                    mac = mac.lower()
                    if int(mac[0:2], 16) & 1:
                        self.add(ip_ + ".mac", "%s is a multicast MAC address; an interface needs a unicast one" % mac)
                    elif mac == "00:00:00:00:00:00":
                        self.add(ip_ + ".mac", "%s is the all-zero MAC address; an interface needs a unicast one" % mac)
                    used = macs.setdefault((netname, scope), {})
                    if mac in used:
                        self.add(ip_ + ".mac", "MAC %s is also used by %s" % (mac, used[mac]))
                    used.setdefault(mac, ip_ + ".mac")
                is_default = ispec.get("default_route")
                soft = False
                if is_default is None:
                    is_default = i == 0 and not explicit_default and not (net is not None and net.internal)
                    # Docker gives most containers a default route of its own: the implicit one yields to it
                    soft = is_default and kind == "docker"
                elif is_default is True:
                    if net is not None and net.internal:
                        self.add(ip_ + ".default_route", "networks.%s is internal: it has no way out to route through" % netname)
                    default_routes.append(ip_)
                if is_default is True and ns_key is not None:
                    other = ns_default.setdefault(ns_key, (cname, ip_))
                    if other[0] != cname:
                        self.add(ip_ + ".default_route", "namespace %s on host %s already gets its default route from %s"
                                 % (netns, host, other[1]))
                if net is not None and host is not None:
                    self.carried.add((host, netname))
                    ports[(host, netname)] = ports.get((host, netname), 0) + 1
                if net is not None and isinstance(ifname, str) and isinstance(host_name, str):
                    ifaces.append(model.Interface(
                        i, netname, ifname, host_name, addr,
                        mac if isinstance(mac, str) else model.derived_mac(netname, cname, ifname),
                        is_default is True))
                    ifaces[-1].default_route_soft = soft
            if len(default_routes) > 1:
                self.add(default_routes[1] + ".default_route",
                         "only one interface can carry the default route (also asked by %s)" % default_routes[0])
            publish = self.publish(p, spec.get("publish"), host, ifaces, nets)
            if host is not None and len(ifaces) == len(raw_ifaces):
                out[cname] = model.Container(cname, host, kind, netns if isinstance(netns, str) else cname,
                                             spec.get("docker", cname), ifaces, publish)
        for (host, netname), count in sorted(ports.items()):
            if count > model.BRIDGE_MAX_PORTS:
                self.add("networks.%s" % netname, "would have %d ports on host %s; a Linux bridge takes at most %d"
                         % (count, host, model.BRIDGE_MAX_PORTS))
        return out

    def publish(self, p, raw, host, ifaces, nets):
        out = []
        if not isinstance(raw, list):
            return out
        for i, pub in enumerate(raw):
            if not is_dict(pub):
                continue
            pp = "%s.publish[%d]" % (p, i)
            hp = parse_ports(pub.get("host_port"))
            cp = parse_ports(pub.get("container_port", pub.get("host_port")))
            bad = False
            for key, val in (("host_port", hp), ("container_port", cp)):
                if isinstance(val, str):
                    if key in pub:
                        self.add("%s.%s" % (pp, key), val)
                    bad = True
            if not bad and hp[1] - hp[0] != cp[1] - cp[0]:
                self.add(pp + ".container_port", "range %s has %d ports but host_port %s has %d"
                         % (ports_text(*cp), cp[1] - cp[0] + 1, ports_text(*hp), hp[1] - hp[0] + 1))
                bad = True
            host_ip = None
            if isinstance(pub.get("host_ip"), str):
                try:
                    host_ip = ipaddress.IPv4Address(pub["host_ip"])
                except ValueError:
                    self.add(pp + ".host_ip", "%r is not an IPv4 address" % pub["host_ip"])
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
            proto = pub.get("protocol", "tcp")
            if bad or host is None or proto not in ("tcp", "udp"):
                continue    # an odd protocol: the schema reports it
            for k in range(hp[1] - hp[0] + 1):
                key = (proto, hp[0] + k)
                where = "%s (%s %s:%d)" % (pp, proto, host_ip or "*", hp[0] + k)
                taken = self.bound.setdefault(host, {})
                specific = self.bound_specific.setdefault(host, {})   # (protocol, port) -> a path with a host_ip
                clash = taken.get((host_ip,) + key) or (taken.get((None,) + key) if host_ip else specific.get(key))
                if clash:
                    self.add(pp + ".host_port", "%s %s:%d on host %s is also published by %s"
                             % (proto, host_ip or "*", hp[0] + k, host, clash.split(" (")[0]))
                    break
                taken[(host_ip,) + key] = where
                if host_ip is not None:
                    specific.setdefault(key, where)
                out.append(model.Publish(host_ip, proto, hp[0] + k, cp[0] + k, net))
        return out
