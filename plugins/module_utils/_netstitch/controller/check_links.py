"""Semantic checks of the links section."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict


class LinkChecks(object):
    def links(self, conts, nets):
        out = []
        raw = self.data.get("links")
        if not isinstance(raw, list):
            return out
        names = {}     # client -> {name: path}
        known = self.data.get("containers") if is_dict(self.data.get("containers")) else {}
        for i, ln in enumerate(raw):
            if not is_dict(ln):
                continue
            p = "links[%d]" % i
            ports = self._link_fields(p, ln, known, nets)
            client, server, network = ln.get("client"), ln.get("server"), ln.get("network")
            if ports is None or client not in conts or (server is not None and server not in conts):
                continue
            shared = self._shared_networks(p, conts, client, server, network)
            if not shared:
                continue
            name = ln.get("name", server) if server is not None else None
            if name is not None:
                other = names.setdefault(client, {}).get(name)
                if other:
                    self.add(p + ".name", "container %s already knows %r from %s" % (client, name, other))
                    continue
                names[client][name] = p
            proto = ln.get("protocol", "tcp")
            if "ports" not in ln and server is not None and proto != "any":
                # a link without ports to a server that exposes some: those of its protocol (none: every port)
                ports = [(f, l) for pr, f, l in conts[server].expose if pr == proto] or ports
            for k, net in enumerate(shared):
                out.append(model.Link(i, client, server, net, proto, ports, name if k == 0 else None))
        self._served_names(out, conts, nets)
        return out

    def _served_names(self, links, conts, nets):
        """A Docker client's link name is answered by its network's name service (when it has one), for every
        container of that network: there a name must mean one container, and not another container's name."""
        served = {}     # (network, name) -> (server, path)
        for ln in links:
            net = nets.get(ln.network)
            if not (ln.name and ln.server and net is not None and net.dns and conts[ln.client].kind == "docker"):
                continue
            p = "links[%d].name" % ln.index
            member = conts.get(ln.name)
            if member is not None and member.name != ln.server and member.interface_on(ln.network) is not None:
                self.add(p, "%r is the name of container %s on network %s, whose name service answers a Docker "
                            "client's link names for the whole network" % (ln.name, ln.name, ln.network))
                continue
            other = served.setdefault((ln.network, ln.name), (ln.server, p))
            if other[0] != ln.server:
                self.add(p, "%r names %s here and %s at %s: the name service of network %s answers a Docker "
                            "client's link names for the whole network, so one name means one container"
                         % (ln.name, ln.server, other[0], other[1], ln.network))

    def _link_fields(self, p, ln, known, nets):
        """The link's ports as [(first, last)] when its fields are fine, else None (problems said)."""
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
        ports = self.port_list(p, ln, "ports need protocol tcp or udp")
        ok = ok and ports is not None
        if network is not None and "name" in ln:
            self.add(p + ".name", "a link to a whole network gives no name")
            ok = False
        return ports if ok else None

    def _shared_networks(self, p, conts, client, server, network):
        """The networks the link holds on: every network client and server share (the name points at the first),
        or the one network it names; [] with the problem said when there is none."""
        c = conts[client]
        if server is not None:
            shared = [itf.network for itf in c.interfaces if conts[server].interface_on(itf.network)]
            if not shared:
                self.add(p, "containers %s and %s share no network" % (client, server))
            return shared
        if not c.interface_on(network):
            self.add(p + ".network", "container %s has no interface on network %s" % (client, network))
            return []
        return [network]
