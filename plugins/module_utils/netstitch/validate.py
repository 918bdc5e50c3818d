"""Topology validation: JSON Schema (structure) plus semantic checks, every problem reported at once with its path.

``load(data)`` returns a ``model.Topology`` or raises ``errors.TopologyError`` listing all problems. It is pure: no
host is looked at or touched, so it runs on the controller before anything is applied.
"""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import model
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import Problem, TopologyError
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.schema import SCHEMA

try:
    import jsonschema
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - reported by load()
    HAS_JSONSCHEMA = False


def _path(parts):
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += "[%d]" % p
        else:
            out += ("." if out else "") + str(p)
    return out


def schema_problems(data):
    if not HAS_JSONSCHEMA:
        return [Problem("", "the Python package 'jsonschema' is needed to validate a topology (pip install jsonschema)")]
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    problems = []
    for err in validator.iter_errors(data):
        path = list(err.absolute_path)
        if err.validator == "propertyNames":
            # the offending key is in the instance; name it in the path
            path.append(err.instance)
            reason = "is not a valid name (letters, digits, '_', '.', '-'; at most 63 characters, starting with a letter or digit)"
        elif err.validator == "pattern" and err.schema.get("pattern", "").startswith("^[0-9A-Fa-f]{2}"):
            reason = "%r is not a MAC address (six colon-separated hex bytes)" % (err.instance,)
        elif err.validator == "pattern" and err.schema.get("pattern") == "^[A-Za-z0-9_.-]+$":
            reason = "%r is not a valid interface name (letters, digits, '_', '.', '-')" % (err.instance,)
        else:
            reason = err.message
        problems.append(Problem(_path(path), reason))
    return sorted(set(problems), key=lambda p: (p.path, p.reason))


def _is_dict(x):
    return isinstance(x, dict)


class _Checker(object):
    def __init__(self, data):
        self.data = data
        self.problems = []

    def add(self, path, reason):
        self.problems.append(Problem(path, reason))

    def ifname(self, path, name, generated=False):
        if isinstance(name, str) and len(name) > model.IFNAMSIZ:
            what = "generated interface name %r" % name if generated else "interface name %r" % name
            hint = "; set it explicitly to a shorter name" if generated else ""
            self.add(path, "%s is %d characters; Linux allows at most %d%s" % (what, len(name), model.IFNAMSIZ, hint))

    def mtu(self, path, value):
        if isinstance(value, int) and not isinstance(value, bool) and not model.MTU_MIN <= value <= model.MTU_MAX:
            self.add(path, "MTU %d is out of range (%d to %d)" % (value, model.MTU_MIN, model.MTU_MAX))
            return False
        return True

    # -- hosts ---------------------------------------------------------------------------------------------------
    def hosts(self):
        out = {}
        hosts = self.data.get("hosts")
        if not _is_dict(hosts):
            return out
        for name, spec in hosts.items():
            if not _is_dict(spec):
                continue
            p = "hosts.%s" % name
            underlay = None
            if isinstance(spec.get("underlay"), str):
                try:
                    text = spec["underlay"]
                    underlay = ipaddress.IPv4Interface(text if "/" in text else text + "/32")
                except ValueError as e:
                    self.add(p + ".underlay", "%r is not an IPv4 address (%s)" % (spec["underlay"], e))
            mtu = spec.get("underlay_mtu", model.DEFAULT_MTU)
            if not self.mtu(p + ".underlay_mtu", mtu):
                mtu = model.DEFAULT_MTU
            out[name] = model.Host(name, underlay, mtu if isinstance(mtu, int) else model.DEFAULT_MTU)
        return out

    # -- networks ------------------------------------------------------------------------------------------------
    def networks(self, hosts):
        out = {}
        nets = self.data.get("networks")
        if not _is_dict(nets):
            return out
        bridges = {}
        for name, spec in nets.items():
            if not _is_dict(spec):
                continue
            p = "networks.%s" % name
            ok = True
            subnet = gateway = None
            if isinstance(spec.get("subnet"), str):
                text = spec["subnet"]
                try:
                    subnet = ipaddress.IPv4Network(text, strict=False)
                    if "/" not in text:
                        self.add(p + ".subnet", "%r needs a prefix length (for example %s/24)" % (text, text))
                        ok = False
                    elif str(subnet.network_address) != text.split("/")[0]:
                        self.add(p + ".subnet", "%r has host bits set; did you mean %s?" % (text, subnet))
                        ok = False
                    elif subnet.prefixlen > 30:
                        self.add(p + ".subnet", "%s is too small: a network needs at least a /30 (gateway and one container)" % subnet)
                        ok = False
                except ValueError as e:
                    self.add(p + ".subnet", "%r is not an IPv4 subnet (%s)" % (text, e))
                    ok = False
            else:
                ok = False
            if ok:
                if "gateway" in spec and isinstance(spec["gateway"], str):
                    gateway = self.address_in(p + ".gateway", spec["gateway"], subnet)
                    ok = gateway is not None
                elif "gateway" not in spec:
                    gateway = subnet.network_address + 1
            bridge = spec.get("bridge", model.default_bridge_name(name))
            if isinstance(bridge, str):
                self.ifname(p + ".bridge", bridge, generated="bridge" not in spec)
                if bridge in bridges:
                    self.add(p + ".bridge", "bridge %r is also used by networks.%s" % (bridge, bridges[bridge]))
                bridges.setdefault(bridge, name)
            mtu = spec.get("mtu", model.DEFAULT_MTU)
            if not self.mtu(p + ".mtu", mtu):
                ok = False
            internal = spec.get("internal", False) is True
            masquerade = spec.get("masquerade", not internal)
            if internal and masquerade is True:
                self.add(p + ".masquerade", "an internal network has no way out, so it cannot masquerade")
                ok = False
            net_hosts = set()
            for i, h in enumerate(spec.get("hosts", []) if isinstance(spec.get("hosts"), list) else []):
                if isinstance(h, str) and h not in hosts and _is_dict(self.data.get("hosts")):
                    self.add("%s.hosts[%d]" % (p, i), "unknown host %r (not under hosts)" % h)
                net_hosts.add(h)
            if "overlay" in spec:
                self.add(p + ".overlay", "overlays are not supported by this version of netstitch yet")
                ok = False
            if ok and isinstance(bridge, str) and isinstance(mtu, int):
                out[name] = model.Network(name, bridge, subnet, gateway, mtu, masquerade is True, internal, net_hosts)
            else:
                out[name] = None   # known name, unusable spec: references to it are fine, deeper checks skipped
        self.overlaps(out)
        return out

    def address_in(self, path, text, subnet):
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            self.add(path, "%r is not an IPv4 address" % (text,))
            return None
        if addr not in subnet:
            self.add(path, "%s is outside the subnet %s" % (addr, subnet))
            return None
        if addr in (subnet.network_address, subnet.broadcast_address):
            what = "network" if addr == subnet.network_address else "broadcast"
            self.add(path, "%s is the %s address of %s" % (addr, what, subnet))
            return None
        return addr

    def overlaps(self, nets):
        items = sorted((n.subnet, name) for name, n in nets.items() if n is not None)
        for i, (a, an) in enumerate(items):
            for b, bn in items[i + 1:]:
                if b.network_address > a.broadcast_address:
                    break
                if a.overlaps(b):
                    self.add("networks.%s.subnet" % bn, "%s overlaps %s of networks.%s" % (b, a, an))

    # -- containers ----------------------------------------------------------------------------------------------
    def containers(self, hosts, nets):
        out = {}
        conts = self.data.get("containers", {})
        if not _is_dict(conts):
            return out
        fixed_ips = {}      # (network, scope) -> {ip: path}
        macs = {}           # (network, scope) -> {mac: path}
        host_ifnames = {}   # host -> {name: path}
        for host in hosts:
            host_ifnames[host] = {}
        for name, n in nets.items():
            if n is None:
                continue
            for h in n.hosts | set(c.get("host") for c in conts.values() if _is_dict(c)):
                if h in host_ifnames:
                    host_ifnames[h].setdefault(n.bridge, "networks.%s.bridge" % name)
        ports = {}          # (host, network) -> count
        allocated = {}      # (host, network) -> count of interfaces without fixed ip
        for cname, spec in conts.items():
            if not _is_dict(spec):
                continue
            p = "containers.%s" % cname
            host = spec.get("host")
            if isinstance(host, str) and host not in hosts:
                if _is_dict(self.data.get("hosts")):
                    self.add(p + ".host", "unknown host %r (not under hosts)" % host)
                host = None
            kind = spec.get("kind", "netns")
            if kind == "docker":
                self.add(p + ".kind", "Docker containers are not supported by this version of netstitch yet")
            netns = spec.get("netns", cname)
            if kind == "docker" and "netns" in spec:
                self.add(p + ".netns", "netns applies to kind netns only")
            if kind == "netns" and "docker" in spec:
                self.add(p + ".docker", "docker applies to kind docker only")
            ifaces = []
            seen_names = {}
            default_routes = []
            raw_ifaces = spec.get("interfaces") if isinstance(spec.get("interfaces"), list) else []
            for i, ispec in enumerate(raw_ifaces):
                if not _is_dict(ispec):
                    continue
                ip_ = "%s.interfaces[%d]" % (p, i)
                netname = ispec.get("network")
                net = None
                if isinstance(netname, str):
                    if netname not in nets:
                        self.add(ip_ + ".network", "unknown network %r (not under networks)" % netname)
                    else:
                        net = nets[netname]
                ifname = ispec.get("name", "eth%d" % i)
                if isinstance(ifname, str):
                    self.ifname(ip_ + ".name", ifname)
                    if ifname in seen_names:
                        self.add(ip_ + ".name", "interface name %r is also used by %s" % (ifname, seen_names[ifname]))
                    seen_names.setdefault(ifname, ip_)
                    if ifname == "lo":
                        self.add(ip_ + ".name", "'lo' is the container's loopback interface")
                host_name = ispec.get("host_name", model.default_host_ifname(cname, ifname if isinstance(ifname, str) else str(i)))
                if isinstance(host_name, str):
                    self.ifname(ip_ + ".host_name", host_name, generated="host_name" not in ispec)
                    if host is not None:
                        other = host_ifnames[host].get(host_name)
                        if other:
                            self.add(ip_ + ".host_name", "interface name %r on host %s is also used by %s" % (host_name, host, other))
                        host_ifnames[host].setdefault(host_name, ip_ + ".host_name")
                # The scope of an address: an overlay spans hosts; a local network is one segment per host.
                scope = host
                addr = None
                if net is not None and isinstance(ispec.get("ip"), str):
                    addr = self.address_in(ip_ + ".ip", ispec["ip"], net.subnet)
                    if addr is not None and addr == net.gateway:
                        self.add(ip_ + ".ip", "%s is the gateway of networks.%s" % (addr, netname))
                        addr = None
                    if addr is not None:
                        used = fixed_ips.setdefault((netname, scope), {})
                        if addr in used:
                            self.add(ip_ + ".ip", "%s is also used by %s" % (addr, used[addr]))
                        used.setdefault(addr, ip_ + ".ip")
                mac = ispec.get("mac")
                if isinstance(mac, str) and net is not None:
                    mac = mac.lower()
                    if int(mac[0:2], 16) & 1:
                        self.add(ip_ + ".mac", "%s is a multicast MAC address; an interface needs a unicast one" % mac)
                    used = macs.setdefault((netname, scope), {})
                    if mac in used:
                        self.add(ip_ + ".mac", "MAC %s is also used by %s" % (mac, used[mac]))
                    used.setdefault(mac, ip_ + ".mac")
                is_default = ispec.get("default_route")
                if is_default is None:
                    is_default = i == 0 and not (net is not None and net.internal)
                elif is_default is True:
                    if net is not None and net.internal:
                        self.add(ip_ + ".default_route", "networks.%s is internal: it has no way out to route through" % netname)
                    default_routes.append(ip_)
                if net is not None and host is not None:
                    ports[(host, netname)] = ports.get((host, netname), 0) + 1
                    if addr is None and "ip" not in ispec:
                        allocated[(host, netname)] = allocated.get((host, netname), 0) + 1
                if net is not None and isinstance(ifname, str) and isinstance(host_name, str):
                    ifaces.append(model.Interface(
                        i, netname, ifname, host_name, addr,
                        mac if isinstance(mac, str) else model.derived_mac(netname, cname, ifname),
                        is_default is True))
            if len(default_routes) > 1:
                self.add(default_routes[1] + ".default_route",
                         "only one interface can carry the default route (also asked by %s)" % default_routes[0])
            if host is not None and len(ifaces) == len(raw_ifaces):
                out[cname] = model.Container(cname, host, kind, netns if isinstance(netns, str) else cname,
                                             spec.get("docker", cname), ifaces)
        for (host, netname), count in sorted(ports.items()):
            if count > model.BRIDGE_MAX_PORTS:
                self.add("networks.%s" % netname, "would have %d ports on host %s; a Linux bridge takes at most %d"
                         % (count, host, model.BRIDGE_MAX_PORTS))
        for (host, netname), count in sorted(allocated.items()):
            net = nets[netname]
            taken = len(fixed_ips.get((netname, host), {}))
            free = net.subnet.num_addresses - 3 - taken     # network, broadcast, gateway
            if count > free:
                self.add("networks.%s" % netname, "host %s needs %d allocated addresses but the subnet %s has only %d free"
                         % (host, count, net.subnet, max(free, 0)))
        return out


def load(data):
    """Validate a topology (a dict as parsed from YAML) and return the normalised model."""
    if not _is_dict(data):
        raise TopologyError([Problem("", "a topology is a mapping with hosts, networks and containers, not %s"
                                     % type(data).__name__)])
    problems = schema_problems(data)
    chk = _Checker(data)
    hosts = chk.hosts()
    nets = chk.networks(hosts)
    conts = chk.containers(hosts, nets)
    # a network is carried by the hosts it names plus the hosts of the containers on it
    for c in conts.values():
        for itf in c.interfaces:
            if nets.get(itf.network) is not None:
                nets[itf.network].hosts.add(c.host)
    seen = set(problems)
    for p in chk.problems:
        if p not in seen:
            problems.append(p)
            seen.add(p)
    if problems:
        raise TopologyError(problems)
    return model.Topology(hosts, nets, conts)
