"""Topology validation: JSON Schema (structure) plus semantic checks, every problem reported at once with its path.

``load(data)`` returns a ``model.Topology`` or raises ``errors.TopologyError`` listing all problems. It is pure: no
host is looked at or touched, so it runs on the controller before anything is applied.
"""

import copy
import ipaddress
import re

from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch import model, precheck
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.errors import (
    NetstitchError, Problem, TopologyError, escape)
from ansible_collections.netstitch.fabric.plugins.module_utils.netstitch.schema import SCHEMA


def _jsonschema():
    """jsonschema, imported only when a topology is invalid (it alone lists every problem; its import takes about
    0.3 s, which a valid topology never pays): the module, or None when it is not installed."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - reported by schema_problems()
        return None
    return jsonschema


def _path(parts):
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += "[%d]" % p
        else:
            out += ("." if out else "") + str(p)
    return out


try:
    import fastjsonschema
    HAS_FASTJSONSCHEMA = True
except ImportError:  # pragma: no cover - the slower jsonschema alone still gives the same answers
    HAS_FASTJSONSCHEMA = False

_FAST = []
_SLOW = []      # the jsonschema validator, built once (it caches what it resolves)


def _fast_valid(data):
    """True when the compiled validator (fastjsonschema, ~50x faster) accepts the topology; False when it rejects
    it or is not available: jsonschema then lists every problem with its path."""
    if not HAS_FASTJSONSCHEMA:
        return False
    if not _FAST:
        schema = copy.deepcopy(SCHEMA)      # the compiler annotates what it is given
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"     # the keywords used are all draft-07
        _FAST.append(fastjsonschema.compile(schema))
    try:
        _FAST[0](data)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def schema_problems(data):
    if _fast_valid(data):
        return []
    jsonschema = _jsonschema()
    if jsonschema is None:
        return [Problem("", "the Python package 'jsonschema' is needed to validate a topology (pip install jsonschema)")]
    if not _SLOW:
        _SLOW.append(jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()))
    validator = _SLOW[0]
    problems = []
    for err in validator.iter_errors(data):
        path = list(err.absolute_path)
        if err.validator == "propertyNames" or list(err.absolute_schema_path)[-2:-1] == ["propertyNames"]:
            # the offending key is in the instance (jsonschema reports it as a pattern/type error of the key,
            # with the mapping's path); name it in the path
            path.append(str(err.instance))
            if isinstance(err.instance, str):
                reason = "is not a valid name (letters, digits, '_', '.', '-'; at most 63 characters, starting with a letter or digit)"
            else:
                reason = "is not a valid name: a name is a string (quote %r in YAML)" % (err.instance,)
        elif err.validator == "additionalProperties" and err.validator_value is False and _is_dict(err.instance):
            # one problem per unknown key, at the key's own path
            known = sorted((err.schema.get("properties") or {}).keys())
            for key in err.instance:
                if key not in known:
                    problems.append(Problem(_path(path + [key]), "unknown key (expected one of: %s)" % ", ".join(known)))
            continue
        elif err.validator == "required" and _is_dict(err.instance):
            # at the missing key's own path
            for key in err.validator_value:
                if key not in err.instance:
                    problems.append(Problem(_path(path + [key]), "is required but missing"))
            continue
        elif err.validator == "pattern" and err.schema.get("pattern", "").startswith("^[0-9A-Fa-f]{2}"):
            reason = "%r is not a MAC address (six colon-separated hex bytes)" % (err.instance,)
        elif err.validator == "pattern" and err.schema.get("pattern") == "^[A-Za-z0-9_.-]+$":
            reason = "%r is not a valid interface name (letters, digits, '_', '.', '-')" % (err.instance,)
        else:
            reason = err.message
        problems.append(Problem(_path(path), reason))
    return sorted(set(problems), key=lambda p: (p.path, p.reason))


_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def _is_dict(x):
    return isinstance(x, dict)


def parse_ports(value):
    """A port or 'a-b' range -> (first, last), or a reason string."""
    if isinstance(value, bool):
        return "%r is not a port" % (value,)
    if isinstance(value, int):
        first = last = value
    elif isinstance(value, str) and value.count("-") == 1:
        a, b = value.split("-")
        if not (a.isdigit() and b.isdigit()):
            return "%r is not a port range like 8000-8010" % value
        first, last = int(a), int(b)
    else:
        return "%r is not a port or range" % (value,)
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        return "port %s is out of range (1 to 65535)" % value
    if last < first:
        return "range %s ends before it starts" % value
    if last - first + 1 > model.MAX_PORT_RANGE:
        return "range %s has %d ports; at most %d in one range" % (value, last - first + 1, model.MAX_PORT_RANGE)
    return first, last


def _ports_text(first, last):
    return str(first) if first == last else "%d-%d" % (first, last)


class _PublishChecks(object):
    def publish(self, p, raw, host, ifaces, nets):
        out = []
        if not isinstance(raw, list):
            return out
        for i, pub in enumerate(raw):
            if not _is_dict(pub):
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
                         % (_ports_text(*cp), cp[1] - cp[0] + 1, _ports_text(*hp), hp[1] - hp[0] + 1))
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

    def links(self, conts, nets):
        out = []
        raw = self.data.get("links")
        if not isinstance(raw, list):
            return out
        names = {}     # client -> {name: path}
        known = self.data.get("containers") if _is_dict(self.data.get("containers")) else {}
        for i, ln in enumerate(raw):
            if not _is_dict(ln):
                continue
            p = "links[%d]" % i
            # values of the wrong type are the schema's to report; they only stop the checks here
            ok = all(ln.get(k) is None or isinstance(ln[k], str) for k in ("client", "server", "network", "name")) \
                and ln.get("protocol", "tcp") in ("tcp", "udp", "any") and isinstance(ln.get("ports", []), list)
            client = ln.get("client")
            if isinstance(client, str) and client not in known:
                self.add(p + ".client", "unknown container %r (not under containers)" % client)
                ok = False
            server, network = ln.get("server"), ln.get("network")
            if (server is None) == (network is None):
                self.add(p, "a link names either a server container or a server network")
                ok = False
            if isinstance(server, str) and server not in known:
                self.add(p + ".server", "unknown container %r (not under containers)" % server)
                ok = False
            if isinstance(network, str) and network not in nets:
                self.add(p + ".network", "unknown network %r (not under networks)" % network)
                ok = False
            if server is not None and server == client:
                self.add(p + ".server", "a container does not need a link to itself")
                ok = False
            proto = ln.get("protocol", "tcp")
            ports = []
            for j, v in enumerate(ln.get("ports") if isinstance(ln.get("ports"), list) else []):
                r = parse_ports(v)
                if isinstance(r, str):
                    self.add("%s.ports[%d]" % (p, j), r)
                    ok = False
                else:
                    ports.append(r)
            if ports and proto == "any":
                self.add(p + ".ports", "ports need protocol tcp or udp")
                ok = False
            if network is not None and "name" in ln:
                self.add(p + ".name", "a link to a whole network gives no name")
                ok = False
            if not ok or client not in conts or (server is not None and server not in conts):
                continue
            c = conts[client]
            if server is not None:
                # the link holds on every network the two share; the name points at the first
                shared = [itf.network for itf in c.interfaces if conts[server].interface_on(itf.network)]
                if not shared:
                    self.add(p, "containers %s and %s share no network" % (client, server))
                    continue
            else:
                if not c.interface_on(network):
                    self.add(p + ".network", "container %s has no interface on network %s" % (client, network))
                    continue
                shared = [network]
            name = ln.get("name", server) if server is not None else None
            if name is not None:
                other = names.setdefault(client, {}).get(name)
                if other:
                    self.add(p + ".name", "container %s already knows %r from %s" % (client, name, other))
                    continue
                names[client][name] = p
            for k, net in enumerate(shared):
                out.append(model.Link(i, client, server, net, proto, ports, name if k == 0 else None))
        return out


class _Checker(_PublishChecks):
    def __init__(self, data):
        self.data = data
        self.problems = []
        self.vnis = {}
        self.tinc_index = 0
        self.carried = set()    # (host, network) for every interface naming both, valid or not
        self.bound = {}         # host -> {(host_ip or None, protocol, port): path} of published ports
        self.docker_names = {}  # Docker network name -> network offering it
        self.bound_specific = {}

    def add(self, path, reason):
        self.problems.append(Problem(path, reason))

    def ifname(self, path, name, generated=False):
        if isinstance(name, str) and len(name) > model.IFNAMSIZ:
            what = "generated interface name %r" % name if generated else "interface name %r" % name
            hint = "; set it explicitly to a shorter name" if generated else ""
            self.add(path, "%s is %d characters; Linux allows at most %d%s" % (what, len(name), model.IFNAMSIZ, hint))
        elif name in (".", ".."):
            self.add(path, "%r is not a valid interface name (Linux refuses '.' and '..')" % name)

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
            if not _is_dict(spec) or not isinstance(name, str):
                continue    # the schema reports it
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
            docker_host = spec.get("docker_host") if isinstance(spec.get("docker_host"), str) else None
            out[name] = model.Host(name, underlay, mtu if isinstance(mtu, int) else model.DEFAULT_MTU, docker_host)
        return out

    # -- networks ------------------------------------------------------------------------------------------------
    def networks(self, hosts):
        out = {}
        nets = self.data.get("networks")
        if not _is_dict(nets):
            return out
        bridges = {}
        for name, spec in nets.items():
            if not _is_dict(spec) or not isinstance(name, str):
                continue    # the schema reports it
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
                for h, host in sorted(hosts.items()):
                    if host.underlay is not None and host.underlay.ip in subnet:
                        self.add(p + ".subnet", "%s contains the underlay address %s of hosts.%s; the bridge's route "
                                 "would capture the host's own traffic" % (subnet, host.underlay.ip, h))
                if "gateway" in spec and isinstance(spec["gateway"], str):
                    gateway = self.address_in(p + ".gateway", spec["gateway"], subnet)
                    ok = gateway is not None
                elif "gateway" not in spec:
                    gateway = subnet.network_address + 1
                else:
                    ok = False      # not a string: the schema reports it
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
                if not isinstance(h, str):
                    continue    # the schema reports the type
                if h not in hosts and _is_dict(self.data.get("hosts")):
                    self.add("%s.hosts[%d]" % (p, i), "unknown host %r (not under hosts)" % h)
                net_hosts.add(h)
            overlay = None
            if _is_dict(spec.get("overlay")):
                overlay = self.overlay(p + ".overlay", name, spec["overlay"], subnet if ok else None)
                if overlay is None:
                    ok = False
                elif overlay.type == "routed" and "gateway" in spec:
                    self.add(p + ".gateway", "a routed network has one gateway per host (the first address of each "
                                             "host's slice); leave gateway out")
                    ok = False
                elif overlay.type == "routed":
                    gateway = None
            if "mtu" not in spec and overlay is not None:
                mtu = None      # the overlay's budget, set once the hosts are known
            if ok and isinstance(bridge, str) and (mtu is None or isinstance(mtu, int)):
                out[name] = model.Network(name, bridge, subnet, gateway, mtu, masquerade is True, internal, net_hosts,
                                          overlay)
                out[name].isolated = spec.get("isolated") is True
                out[name].docker = self.docker_offer(p + ".docker", name, spec.get("docker"))
            else:
                out[name] = None   # known name, unusable spec: references to it are fine, deeper checks skipped
        # an overlay device sits beside the bridges on every host carrying it: one name space
        devices = {}
        for name, n in out.items():
            dev = n.overlay.device if n is not None and n.overlay is not None else None
            if not dev:
                continue
            if dev in bridges:
                self.add("networks.%s.overlay.device" % name, "interface name %r is also the bridge of networks.%s"
                         % (dev, bridges[dev]))
            elif dev in devices:
                self.add("networks.%s.overlay.device" % name, "interface name %r is also the overlay device of "
                         "networks.%s" % (dev, devices[dev]))
            devices.setdefault(dev, name)
        self.overlaps(out)
        return out

    def docker_offer(self, p, netname, spec):
        """The network's offer to Docker (``docker: true`` or its settings), or None."""
        if spec is True:
            spec = {}
        if not _is_dict(spec):
            return None     # false, absent, or a wrong type (the schema reports it)
        name = spec.get("name", netname)
        if not isinstance(name, str):
            return None
        other = self.docker_names.setdefault(name, netname)
        if other != netname:
            self.add(p + ".name", "Docker network name %r is also used by networks.%s" % (name, other))
        range_len = spec.get("range_len")
        hosts = None
        if isinstance(spec.get("hosts"), list):
            hosts = set()
            for i, h in enumerate(spec["hosts"]):
                if isinstance(h, str) and _is_dict(self.data.get("hosts")) and h not in self.data["hosts"]:
                    self.add("%s.hosts[%d]" % (p, i), "unknown host %r (not under hosts)" % h)
                hosts.add(h)
        return model.DockerOffer(name, range_len if isinstance(range_len, int) and not isinstance(range_len, bool)
                                 else None, hosts)

    def docker_ranges(self, conts, nets):
        """Docker's range of each host's pool must fit in the pool, and no fixed address may lie in a range Docker
        hands out (Docker does not know netstitch's addresses)."""
        for name, n in sorted(nets.items()):
            if n is None or n.docker is None:
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
        for c in conts.values():
            for itf in c.interfaces:
                n = nets.get(itf.network)
                if n is None or n.docker is None or itf.ip is None:
                    continue
                shared = n.overlay is not None and not n.routed
                for h in (sorted(n.overlay.slices) if shared else [c.host]):
                    r = n.docker_range(h)
                    if r is not None and itf.ip in r:
                        self.add("containers.%s.interfaces[%d].ip" % (c.name, itf.index),
                                 "%s is in host %s's Docker range %s of networks.%s (Docker hands those addresses out)"
                                 % (itf.ip, h, r, n.name))
                        break

    def overlay(self, p, netname, spec, subnet):
        """Parse an overlay section (slices are placed later, once the hosts carrying the network are known)."""
        kind = spec.get("type")
        if kind not in ("vxlan", "routed", "tinc"):
            return None     # the schema reported it
        ok = True
        vni = spec.get("vni")
        if kind == "vxlan":
            if vni is None:
                self.add(p + ".vni", "a vxlan overlay needs a vni (1 to %d)" % model.VNI_MAX)
                ok = False
            elif isinstance(vni, int) and not 1 <= vni <= model.VNI_MAX:
                self.add(p + ".vni", "VNI %d is out of range (1 to %d)" % (vni, model.VNI_MAX))
                ok = False
            elif isinstance(vni, int):
                if vni in self.vnis:
                    self.add(p + ".vni", "VNI %d is also used by networks.%s" % (vni, self.vnis[vni]))
                    ok = False
                self.vnis.setdefault(vni, netname)
        elif vni is not None:
            self.add(p + ".vni", "vni applies to vxlan overlays only")
            ok = False
        port = spec.get("port")
        if port is not None and kind == "routed":
            self.add(p + ".port", "a routed overlay has no tunnel, so no port")
            ok = False
        elif isinstance(port, int) and not 1 <= port <= 65535:
            self.add(p + ".port", "port %d is out of range (1 to 65535)" % port)
            ok = False
        if kind == "vxlan" and port is None:
            port = model.VXLAN_PORT
        if kind == "tinc" and port is None:
            self.tinc_index += 1
            port = model.TINC_PORT_BASE + self.tinc_index
        if "learning" in spec and kind != "vxlan":
            self.add(p + ".learning", "learning applies to vxlan overlays only")
            ok = False
        device = spec.get("device")
        if kind == "routed" and device is not None:
            self.add(p + ".device", "a routed overlay has no device")
            ok = False
        elif device is None and kind == "vxlan" and isinstance(vni, int):
            device = "nsvx%d" % vni
        elif device is None and kind == "tinc":
            device = "nstc-%s" % netname
        if isinstance(device, str):
            self.ifname(p + ".device", device, generated="device" not in spec)
        slice_len = spec.get("slice_len")
        if slice_len is not None and (not isinstance(slice_len, int) or isinstance(slice_len, bool)):
            ok = False      # the schema reports the type
        if subnet is not None:
            if slice_len is None:
                slice_len = model.default_slice_len(subnet)
            limit = 30 if kind == "routed" else 32
            if isinstance(slice_len, int) and not subnet.prefixlen <= slice_len <= limit:
                self.add(p + ".slice_len", "slice length %d is out of range for %s (%d to %d)"
                         % (slice_len, subnet, subnet.prefixlen, limit))
                ok = False
        slices = {}
        raw = spec.get("slices") if _is_dict(spec.get("slices")) else {}
        for h, text in raw.items():
            sp = "%s.slices.%s" % (p, h)
            if _is_dict(self.data.get("hosts")) and h not in self.data["hosts"]:
                self.add(sp, "unknown host %r (not under hosts)" % h)
                ok = False
                continue
            if not isinstance(text, str):
                ok = False      # the schema reports the type
                continue
            try:
                sl = ipaddress.IPv4Network(text)
            except (ValueError, TypeError) as e:
                self.add(sp, "%r is not a subnet (%s)" % (text, e))
                ok = False
                continue
            if subnet is not None and not sl.subnet_of(subnet):
                self.add(sp, "%s is not inside the network's subnet %s" % (sl, subnet))
                ok = False
            elif isinstance(slice_len, int) and sl.prefixlen != slice_len:
                self.add(sp, "%s is not a /%d (the overlay's slice_len)" % (sl, slice_len))
                ok = False
            slices[h] = sl
        if not ok or subnet is None:
            return None
        return model.Overlay(kind, vni, port, spec.get("learning", False) is True, device, slice_len, slices)

    def place_overlays(self, hosts, nets):
        """Give every host carrying an overlay its slice; check underlays, slice clashes and the MTU budget."""
        for name, n in sorted(nets.items()):
            if n is None or n.overlay is None:
                if n is not None and n.mtu is None:
                    n.mtu = model.DEFAULT_MTU
                continue
            o, p = n.overlay, "networks.%s.overlay" % name
            nslices = 2 ** (o.slice_len - n.subnet.prefixlen)
            owner = {}
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
                    sl = ipaddress.IPv4Network((int(n.subnet.network_address) + index * 2 ** (32 - o.slice_len),
                                                o.slice_len))
                for other_sl, other in owner.items():
                    if sl.overlaps(other_sl):
                        self.add("%s.slices.%s" % (p, h) if h in o.explicit else p,
                                 "hosts %s and %s would share the slice %s; set overlay.slices explicitly"
                                 % (other, h, sl))
                        break
                owner[sl] = h
                o.slices[h] = sl
            # routed: every host must reach every other directly on one underlay subnet
            if o.type == "routed":
                nets_seen = {}
                for h in sorted(o.slices):
                    u = hosts[h].underlay
                    if u.network.prefixlen == 32:
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
                budget = low.underlay_mtu - model.OVERHEAD[o.type]
                if n.mtu is None:
                    n.mtu = budget
                elif n.mtu > budget:
                    self.add("networks.%s.mtu" % name, "MTU %d is over the %s budget of %d: underlay MTU %d - %d "
                             "bytes of encapsulation (the smallest underlay MTU is host %s's)"
                             % (n.mtu, o.type, budget, low.underlay_mtu, model.OVERHEAD[o.type], low.name))
            if n.mtu is None:
                n.mtu = model.DEFAULT_MTU - model.OVERHEAD[o.type]

    def capacity(self, conts, nets):
        """Fixed addresses in routed mode must sit in their host's slice; pools must hold what is to be allocated."""
        need, fixed = {}, {}
        for c in conts.values():
            for itf in c.interfaces:
                n = nets.get(itf.network)
                if n is None or (n.overlay is not None and c.host not in n.overlay.slices):
                    continue
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
            blocked = {seg.network_address, seg.broadcast_address, n.gateway_on(host)}
            if n.overlay is not None and not n.routed:
                blocked |= {a for (h, nn), s in fixed.items() if nn == name for a in s}
            else:
                blocked |= fixed.get((host, name), set())
            docker = n.docker_range(host)     # Docker's share of the pool: netstitch never allocates there
            free = pool.num_addresses - len({a for a in blocked if a in pool and not (docker and a in docker)}) - \
                (docker.num_addresses if docker else 0)
            if count > free:
                self.add("networks.%s" % name, "host %s needs %d allocated addresses but its pool %s has only %d free"
                         % (host, count, pool, max(free, 0)))

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
        # the hosts containers name (once: not once per network)
        cont_hosts = set(c.get("host") for c in conts.values() if _is_dict(c) and isinstance(c.get("host"), str))
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
            if not _is_dict(spec) or not isinstance(cname, str):
                continue    # the schema reports it
            p = "containers.%s" % cname
            host = spec.get("host")
            if not isinstance(host, str):
                host = None     # missing or not a string: the schema reports it
            elif host not in hosts:
                if _is_dict(self.data.get("hosts")):
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
            explicit_default = any(_is_dict(x) and x.get("default_route") is True for x in raw_ifaces)
            ns_key = (host, netns) if host is not None and kind == "netns" and isinstance(netns, str) else None
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
                if isinstance(mac, str) and not _MAC.match(mac):
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


def load(data, debug=False):
    """Validate a topology (a dict as parsed from YAML) and return the normalised model.

    Raises TopologyError with every problem found, each with its path. Any other failure inside the checks (a bug)
    comes out as a NetstitchError saying so, never as a traceback; ``debug`` (the tests) lets it through instead."""
    if not _is_dict(data):
        raise TopologyError([Problem("", "a topology is a mapping with hosts, networks and containers, not %s"
                                     % type(data).__name__)])
    problems, data = precheck.check(data)
    try:
        return _load(data, problems)
    except (TopologyError, NetstitchError):
        raise
    except Exception as e:  # noqa: BLE001 - reported, not shown as a traceback
        if debug:
            raise
        if problems:
            raise TopologyError(problems)   # checks that stumbled over values already reported
        raise NetstitchError("internal error while validating the topology (%s: %s); please report it with the "
                             "topology" % (type(e).__name__, escape(str(e), 200)))


def _load(data, first):
    covered = precheck.supersedes(first)
    problems = list(first) + [p for p in schema_problems(data) if not covered(p)]
    chk = _Checker(data)
    hosts = chk.hosts()
    nets = chk.networks(hosts)
    conts = chk.containers(hosts, nets)
    # a network is carried by the hosts it names plus the hosts of the containers on it
    for host, netname in chk.carried:
        nets[netname].hosts.add(host)
    chk.place_overlays(hosts, nets)
    chk.docker_ranges(conts, nets)
    chk.capacity(conts, nets)
    links = chk.links(conts, nets)
    seen = set(problems)
    for p in chk.problems:
        if p not in seen and not covered(p):
            problems.append(p)
            seen.add(p)
    if problems:
        raise TopologyError(problems)
    return model.Topology(hosts, nets, conts, links)
