"""Semantic checks of networks.N.attach: existing host interfaces enslaved to a network's bridge (issue 16, item 4)."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_containers import _Seen
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict


class AttachChecks(object):
    def attachments(self, hosts, nets):
        """Fill each network's ``attach`` (after the containers: their addresses, MACs and host interface names are
        known, so an attachment using one of them is reported)."""
        raw = self.data.get("networks")
        if not is_dict(raw):
            return
        seen = getattr(self, "seen", None) or _Seen(self._host_ifnames(hosts, nets, {}))
        taken = {}      # (host, interface) -> path
        for netname, spec in raw.items():
            if not is_dict(spec) or not isinstance(spec.get("attach"), list):
                continue    # the schema reports a wrong type
            net = nets.get(netname)
            for i, a in enumerate(spec["attach"]):
                if is_dict(a):
                    self._attachment("networks.%s.attach[%d]" % (netname, i), a, netname, net, hosts, seen, taken)

    def _attachment(self, p, a, netname, net, hosts, seen, taken):
        ok = net is not None
        host, ifname = a.get("host"), a.get("interface")
        if isinstance(host, str) and host not in hosts:
            if is_dict(self.data.get("hosts")):
                self.add(p + ".host", "unknown host %r (not under hosts)" % host)
            host = None
        if net is not None and net.isolated:
            self.add(p, "an isolated network cannot take an attached interface: isolation is enforced per container "
                        "interface, and the machine behind an attached one would bypass it")
            ok = False
        if net is not None and net.routed:
            self.add(p, "a routed overlay has no shared layer-2 segment to attach to (use a vxlan or tinc overlay or a "
                        "host-local network)")
            ok = False
        if isinstance(ifname, str) and isinstance(host, str):
            self.ifname(p + ".interface", ifname)
            other = seen.host_ifnames.setdefault(host, {}).get(ifname)
            if other:
                self.add(p + ".interface", "interface name %r on host %s is netstitch's own (%s); attach only an "
                         "interface netstitch does not make" % (ifname, host, other))
                ok = False
            if (host, ifname) in taken:
                self.add(p + ".interface", "interface %s on host %s is also attached by %s"
                         % (ifname, host, taken[(host, ifname)]))
                ok = False
            taken.setdefault((host, ifname), p)
        else:
            ok = False      # missing or of a wrong type: the schema reports it
        scope = None if net is not None and net.overlay is not None else host
        addr = self._address(p, a, net, netname, scope, seen)
        mac = self._mac(p, a, net, netname, scope, seen)
        if ok:
            net.attach.append(model.Attachment(host, ifname, addr, mac if isinstance(mac, str) else None))
