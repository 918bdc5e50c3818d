"""The base of the semantic checks of a topology: where problems are collected, and the small checks and parsers
every section uses."""

import ipaddress
import re

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_ipv6 import family_hint
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import Problem

MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def path_text(parts):
    """A path in the topology as the problems name it: networks.front.subnet, containers.web.interfaces[0]."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += "[%d]" % p
        else:
            out += ("." if out else "") + str(p)
    return out


def is_dict(x):
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


def ports_text(first, last):
    return str(first) if first == last else "%d-%d" % (first, last)


class Checker(object):
    """Collects problems; the section checks (check_*.py, placement.py) are mixins of it."""

    def __init__(self, data):
        self.data = data
        self.problems = []
        self.vnis = {}
        self.tinc_index = 0
        self.carried = set()    # (host, network) for every interface naming both, valid or not
        self.bound = {}         # host -> {(host_ip or None, protocol, port): path} of published ports
        self.docker_names = {}  # Docker network name -> network offering it
        self.bound_specific = {}
        self.auto_seen = {}     # (container, host_ip, protocol, container_port) -> path of an automatic host port

    def add(self, path, reason):
        self.problems.append(Problem(path, reason))

    def ifname(self, path, name, generated=False):
        if isinstance(name, str) and len(name) > model.IFNAMSIZ:
            what = "generated interface name %r" % name if generated else "interface name %r" % name
            hint = "; set it explicitly to a shorter name" if generated else ""
            self.add(path, "%s is %d characters; Linux allows at most %d%s" % (what, len(name), model.IFNAMSIZ, hint))
        elif name in (".", ".."):
            self.add(path, "%r is not a valid interface name (Linux refuses '.' and '..')" % name)

    def port_list(self, path, entry, any_reason):
        """The parsed ``ports`` of an entry (a link, an allow rule) as sorted (first, last) pairs, or None with every
        problem said: a bad port or range by its index, ports given with ``protocol: any`` (``any_reason``)."""
        ok = True
        ports = []
        for j, v in enumerate(entry.get("ports") if isinstance(entry.get("ports"), list) else []):
            r = parse_ports(v)
            if isinstance(r, str):
                self.add("%s.ports[%d]" % (path, j), r)
                ok = False
            else:
                ports.append(r)
        if ports and entry.get("protocol", "tcp") == "any":
            self.add(path + ".ports", any_reason)
            ok = False
        return sorted(ports) if ok else None

    def mtu(self, path, value):
        if isinstance(value, int) and not isinstance(value, bool) and not model.MTU_MIN <= value <= model.MTU_MAX:
            self.add(path, "MTU %d is out of range (%d to %d)" % (value, model.MTU_MIN, model.MTU_MAX))
            return False
        return True

    def address_in(self, path, text, subnet, v6_field=None):
        """An IPv4 address inside ``subnet`` and not its network or broadcast address, or None (with the problem
        said; an IPv6 address is told where it goes: ``v6_field``)."""
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            hint = family_hint(text, v6_field) if v6_field else None
            self.add(path, hint or "%r is not an IPv4 address" % (text,))
            return None
        if addr not in subnet:
            self.add(path, "%s is outside the subnet %s" % (addr, subnet))
            return None
        if addr in (subnet.network_address, subnet.broadcast_address):
            what = "network" if addr == subnet.network_address else "broadcast"
            self.add(path, "%s is the %s address of %s" % (addr, what, subnet))
            return None
        return addr
