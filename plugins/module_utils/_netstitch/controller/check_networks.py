"""Semantic checks of the networks section: subnets, gateways, bridges, MTU, overlays, Docker offers."""

import ipaddress

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller import model
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.check_ipv6 import family_hint
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.controller.checking import is_dict


class NetworkChecks(object):
    def networks(self, hosts):
        out = {}
        nets = self.data.get("networks")
        if not is_dict(nets):
            return out
        bridges = {}
        for name, spec in nets.items():
            if not is_dict(spec) or not isinstance(name, str):
                continue    # the schema reports it
            out[name] = self._network(name, spec, hosts, bridges)
        self._overlay_devices(out, bridges)
        self.overlaps(out)
        self.overlaps6(out)
        return out

    def _network(self, name, spec, hosts, bridges):
        """The network, or None for a known name whose spec is unusable (references to it are fine, deeper checks
        are skipped)."""
        p = "networks.%s" % name
        subnet = self._subnet(p, spec)
        v6only = "subnet" not in spec       # an IPv6-only network (subnet6 alone)
        ok = subnet is not None or (v6only and self.v6only_network(p, name, spec))
        gateway = None
        macvlan = is_dict(spec.get("macvlan"))
        if subnet is not None:
            for h, host in sorted(hosts.items()):
                # (a macvlan network is a physical segment, often the underlay's own: it has no bridge route)
                if host.underlay is not None and host.underlay.ip in subnet and not macvlan:
                    self.add(p + ".subnet", "%s contains the underlay address %s of hosts.%s; the bridge's route "
                             "would capture the host's own traffic" % (subnet, host.underlay.ip, h))
            if "gateway" in spec and isinstance(spec["gateway"], str):
                gateway = self.address_in(p + ".gateway", spec["gateway"], subnet, "gateway6")
                ok = gateway is not None
            elif "gateway" not in spec:
                # a macvlan network's gateway is the segment's router: none unless given
                gateway = None if macvlan else subnet.network_address + 1
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
        # a routed gateway (inbound) keeps the containers' own addresses: no masquerade unless asked (an error)
        masquerade = spec.get("masquerade", not internal and not is_dict(spec.get("inbound")) and not v6only)
        if internal and masquerade is True:
            self.add(p + ".masquerade", "an internal network has no way out, so it cannot masquerade")
            ok = False
        net_hosts = self._network_hosts(p, spec, hosts)
        subnet6, gateway6, ok = self.network6(p, spec, ok, spec.get("overlay"))
        for h, host in sorted(hosts.items()) if subnet6 is not None and not macvlan else ():
            if host.underlay is not None and host.underlay.ip in subnet6:
                self.add(p + ".subnet6", "%s contains the underlay address %s of hosts.%s; the bridge's route "
                         "would capture the host's own traffic" % (subnet6, host.underlay.ip, h))
                ok = False
        overlay = None
        if is_dict(spec.get("overlay")):
            # an IPv6-only overlay places its slices in the subnet6 itself
            overlay = self.overlay(p + ".overlay", name, spec["overlay"], (subnet6 if v6only else subnet) if ok else None)
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
        if not (ok and isinstance(bridge, str) and (mtu is None or isinstance(mtu, int))):
            return None
        net = model.Network(name, bridge, subnet, gateway, mtu, masquerade is True, internal, net_hosts, overlay)
        net.subnet6, net.gateway6 = subnet6, gateway6
        net.masquerade6 = subnet6 is not None and spec.get("masquerade6") is True
        net.isolated = spec.get("isolated") is True
        net.dns = spec.get("dns") is True
        if net.dns and net.isolated:
            self.add(p + ".dns", "an isolated network gets no name service: a name server answers every container "
                     "of the network alike, so it would tell each one the names links do not give it")
            net.dns = False
        net.docker = self.docker_offer(p + ".docker", name, spec.get("docker"))
        self.inbound(p, spec, net)
        if macvlan:
            net.macvlan = self.macvlan(p, spec, subnet, hosts)
            net.masquerade = False
            if net.macvlan is None:
                return None
        return net

    def _subnet(self, p, spec):
        """The network's subnet, or None (with the problem said, unless the schema says it)."""
        if not isinstance(spec.get("subnet"), str):
            return None
        text = spec["subnet"]
        try:
            subnet = ipaddress.IPv4Network(text, strict=False)
        except ValueError as e:
            self.add(p + ".subnet", family_hint(text, "subnet6") or "%r is not an IPv4 subnet (%s)" % (text, e))
            return None
        if "/" not in text:
            self.add(p + ".subnet", "%r needs a prefix length (for example %s/24)" % (text, text))
        elif str(subnet.network_address) != text.split("/")[0]:
            self.add(p + ".subnet", "%r has host bits set; did you mean %s?" % (text, subnet))
        elif subnet.prefixlen > 30:
            self.add(p + ".subnet", "%s is too small: a network needs at least a /30 (gateway and one container)" % subnet)
        else:
            return subnet
        return None

    def _network_hosts(self, p, spec, hosts):
        net_hosts = set()
        for i, h in enumerate(spec.get("hosts", []) if isinstance(spec.get("hosts"), list) else []):
            if not isinstance(h, str):
                continue    # the schema reports the type
            if h not in hosts and is_dict(self.data.get("hosts")):
                self.add("%s.hosts[%d]" % (p, i), "unknown host %r (not under hosts)" % h)
            net_hosts.add(h)
        # a host with an interface attached to the network carries it (check_attach reports unknown ones)
        for a in spec.get("attach", []) if isinstance(spec.get("attach"), list) else []:
            if is_dict(a) and isinstance(a.get("host"), str) and a["host"] in hosts:
                net_hosts.add(a["host"])
        return net_hosts

    def _overlay_devices(self, out, bridges):
        """An overlay device sits beside the bridges on every host carrying it: one name space."""
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

    def docker_offer(self, p, netname, spec):
        """The network's offer to Docker (``docker: true`` or its settings), or None."""
        if spec is True:
            spec = {}
        if not is_dict(spec):
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
                if isinstance(h, str) and is_dict(self.data.get("hosts")) and h not in self.data["hosts"]:
                    self.add("%s.hosts[%d]" % (p, i), "unknown host %r (not under hosts)" % h)
                hosts.add(h)
        driver = spec.get("driver", "bridge")
        if driver == "netstitch" and range_len is not None:
            self.add(p + ".range_len", "with driver netstitch, netstitch's plugin allocates from the host's whole pool: "
                     "there is no range left to Docker")
        return model.DockerOffer(name, range_len if isinstance(range_len, int) and not isinstance(range_len, bool)
                                 else None, hosts, driver if driver in ("bridge", "netstitch") else "bridge")

    def overlay(self, p, netname, spec, subnet):
        """Parse an overlay section (slices are placed later, once the hosts carrying the network are known)."""
        kind = spec.get("type")
        if kind not in ("vxlan", "routed", "tinc"):
            return None     # the schema reported it
        vni, ok = self._vni(p, netname, spec, kind)
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
        slice_len, len_ok = self._slice_len(p, spec, kind, subnet)
        slices, slices_ok = self._explicit_slices(p, spec, subnet, slice_len)
        if not (ok and len_ok and slices_ok) or subnet is None:
            return None
        return model.Overlay(kind, vni, port, spec.get("learning", False) is True, device, slice_len, slices)

    def _vni(self, p, netname, spec, kind):
        """(the VNI, whether it is fine): a vxlan overlay needs one, unique; the others have none."""
        vni = spec.get("vni")
        if kind != "vxlan":
            if vni is not None:
                self.add(p + ".vni", "vni applies to vxlan overlays only")
                return vni, False
            return vni, True
        if vni is None:
            self.add(p + ".vni", "a vxlan overlay needs a vni (1 to %d)" % model.VNI_MAX)
            return vni, False
        if isinstance(vni, int) and not 1 <= vni <= model.VNI_MAX:
            self.add(p + ".vni", "VNI %d is out of range (1 to %d)" % (vni, model.VNI_MAX))
            return vni, False
        ok = True
        if isinstance(vni, int):
            if vni in self.vnis:
                self.add(p + ".vni", "VNI %d is also used by networks.%s" % (vni, self.vnis[vni]))
                ok = False
            self.vnis.setdefault(vni, netname)
        return vni, ok

    def _slice_len(self, p, spec, kind, subnet):
        slice_len = spec.get("slice_len")
        ok = True
        if slice_len is not None and (not isinstance(slice_len, int) or isinstance(slice_len, bool)):
            ok = False      # the schema reports the type
        if subnet is not None:
            if slice_len is None:
                slice_len = model.default_slice_len(subnet)
            limit = subnet.max_prefixlen - (2 if kind == "routed" else 0)
            if isinstance(slice_len, int) and not subnet.prefixlen <= slice_len <= limit:
                self.add(p + ".slice_len", "slice length %d is out of range for %s (%d to %d)"
                         % (slice_len, subnet, subnet.prefixlen, limit))
                ok = False
        return slice_len, ok

    def _explicit_slices(self, p, spec, subnet, slice_len):
        """The slices the topology gives ({host: IPv4Network}), and whether they are all fine."""
        slices, ok = {}, True
        raw = spec.get("slices") if is_dict(spec.get("slices")) else {}
        for h, text in raw.items():
            sp = "%s.slices.%s" % (p, h)
            if is_dict(self.data.get("hosts")) and h not in self.data["hosts"]:
                self.add(sp, "unknown host %r (not under hosts)" % h)
                ok = False
                continue
            if not isinstance(text, str):
                ok = False      # the schema reports the type
                continue
            try:
                sl = ipaddress.IPv6Network(text) if subnet is not None and subnet.version == 6 else \
                    ipaddress.IPv4Network(text)
            except (ValueError, TypeError) as e:
                if subnet is not None and subnet.version == 6:
                    self.add(sp, "%r is not an IPv6 subnet (%s); the slices of an IPv6-only network are parts of its "
                             "subnet6" % (text, e))
                else:
                    self.add(sp, "%r is an IPv6 subnet; overlay slices are IPv4 (a host's IPv6 slice follows its IPv4 "
                             "one)" % text if family_hint(text, "subnet6") else "%r is not a subnet (%s)" % (text, e))
                ok = False
                continue
            if subnet is not None and not sl.subnet_of(subnet):
                self.add(sp, "%s is not inside the network's subnet %s" % (sl, subnet))
                ok = False
            elif isinstance(slice_len, int) and sl.prefixlen != slice_len:
                self.add(sp, "%s is not a /%d (the overlay's slice_len)" % (sl, slice_len))
                ok = False
            slices[h] = sl
        return slices, ok

    def overlaps(self, nets):
        items = sorted((n.subnet, name) for name, n in nets.items() if n is not None and n.subnet is not None)
        for i, (a, an) in enumerate(items):
            for b, bn in items[i + 1:]:
                if b.network_address > a.broadcast_address:
                    break
                if a.overlaps(b) and not self.may_overlap(an, bn):
                    self.add("networks.%s.subnet" % bn, "%s overlaps %s of networks.%s" % (b, a, an))
