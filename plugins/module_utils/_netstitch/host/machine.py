"""The host this process runs on: its drivers, how its current state is read, and how an action is dispatched to
the driver that carries it out (actions.OPS). Drivers are made lazily, so planning-only paths need no kernel."""

import os

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import OPS
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import bridge, chain, docker_hosts, docker_network
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import hosts_file, macvlan, nft, sysctl, tinc
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import tenant, tenant_nft
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.plugin import hostside as plugin_state


def namespaces(spec):
    """The container namespaces of a spec (a Docker container's is the /proc path resolve_docker() put in "netns";
    absent ones have none)."""
    return sorted({c.get("netns") or c["docker"] for c in spec["containers"] if not c.get("absent")} |
                  set(tenant.namespaces(spec)))    # and the tenants' router namespaces


class Host(object):
    """The drivers for the host this process runs in."""

    def __init__(self):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.dockeruser import DockerUser
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.hostsfile import HostsFiles
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.netlink import Netlink
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.nft import Nft
        self.netlink = Netlink()
        self.nft = Nft()
        self.hosts_files = HostsFiles()
        self.docker_user = DockerUser()
        self.tinc = None
        self.docker = None      # the Docker Engine client, only for a spec that involves Docker
        self._dispatch = {"netlink": self._netlink, "tinc": self._tinc_op, "docker": self._docker_op,
                          "files": self.hosts_files.execute, "iptables": self.docker_user.execute,
                          "dns": self._dns_op, "bgp": self._bgp_op,
                          "nft": self.nft.execute}
        self.dnsmasq = None
        self.bird = None

    def close(self):
        self.netlink.close()
        if self.docker is not None:
            self.docker.close()

    def docker_engine(self, spec, why):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import docker as docker_mod
        url = docker_mod.url_of(spec)
        if self.docker is None or self.docker.url != url or self.docker.host != spec["host"]:
            if self.docker is not None:
                self.docker.close()
            self.docker = None
            self.docker = docker_mod.Engine(url, spec["host"], why)
        return self.docker

    def tinc_driver(self, state_dir, host):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.tinc import Tinc
        if self.tinc is None or self.tinc.host != host:
            self.tinc = Tinc(state_dir, host)
        return self.tinc

    def read(self, spec, hstate, namespaces_=None, left=None):
        """The current state (current.py) for a spec: the host namespace and the spec's container namespaces (or
        only ``namespaces_``), netstitch's nft tables, hosts files, DOCKER-USER rules, tinc instances and, when
        Docker is involved, the Docker networks. ``left``: a spec besides the last applied one whose Docker clients
        may hold names netstitch wrote (a rollback: the spec that failed)."""
        if namespaces_ is None:
            # (and the last spec's namespaces a macvlan of netstitch's may be left in: kinds.macvlan)
            namespaces_ = sorted(set(namespaces(spec)) | set(macvlan.left_behind(hstate.spec, spec)))
        cur = self.netlink.read(namespaces_, sysctls=sysctl.READ)
        # a namespace netstitch made that has since gone is no longer netstitch's: someone may reuse the name
        hstate.owned_netns &= set(cur["named_netns"])
        cur["owned_netns"] = sorted(hstate.owned_netns)
        # an enslavement netstitch recorded is netstitch's while its interface is the one it enslaved (same index)
        attached = getattr(hstate, "attached", None)
        if attached:
            attached = {name: rec for name, rec in attached.items()
                        if (cur["links"].get(name) or {}).get("index") == rec["index"]}
            hstate.attached = attached
        cur["attached"] = dict(attached or {})
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import netlink as netlink_driver
        for n in spec.get("networks", []):
            # route_localnet of netstitch's bridges (loopback publishing, kinds.bridge)
            have = cur["links"].get(n["bridge"])
            if have is not None and have.get("kind") == "bridge":
                have["route_localnet"] = netlink_driver.read_sysctl(bridge.route_localnet_key(n["bridge"])) == "1"
                have["forwarding6"] = netlink_driver.read_sysctl(bridge.forwarding6_key(n["bridge"])) == "1"
                if n.get("subnet6"):
                    have["ipv6_disabled"] = netlink_driver.read_sysctl(bridge.disable6_key(n["bridge"])) == "1"
        for ns in chain.forward_namespaces(spec):
            # a service's forwarding switch, in its own namespace (kinds.chain)
            if cur["netns"].get(ns) is not None:
                cur["netns"][ns]["ip_forward"] = self.netlink.read_ns_sysctl(ns, chain.FORWARD)
        cur["nft"] = nft.current_tables({f: self.nft.read(f) for f in ("inet", "bridge")})
        cur["tenant_nft"], cur["tenant_sysctl"] = {}, {}
        for ns in tenant.namespaces(spec):      # a router namespace's own table and forwarding (kinds.tenant)
            if ns in cur["named_netns"] and ns not in cur["broken_netns"]:
                listing, cur["tenant_sysctl"][ns] = self.nft.read_in(ns, (tenant.FORWARD_KEY,))
                cur["tenant_nft"][ns] = tenant_nft.current(listing)
        # the namespaces the last applied spec named too: names written for a container that has left go with it
        cur["hosts_files"] = self.hosts_files.read(sorted(set(hosts_file.namespaces(spec)) |
                                                          set(hosts_file.namespaces(hstate.spec))))
        cur["docker_hosts"] = self._docker_hosts(spec, [hstate.spec, left])
        cur["docker_user"] = self.docker_user.read()
        if hasattr(hstate, "state_dir"):
            cur["dns"] = self.dns_driver(hstate.state_dir, spec["host"]).read(hosts_file.namespaces(spec))
        cur["tinc"] = self.tinc_driver(hstate.state_dir, spec["host"]).read(tinc.networks(spec))
        if hasattr(hstate, "state_dir"):
            cur["bgp"] = self.bird_driver(hstate.state_dir, spec["host"]).read()     # kinds.bgp
        cur["docker_plugin"] = plugin_state.load(hstate.state_dir, spec["host"]) if hasattr(hstate, "state_dir") \
            else None
        if self.docker is not None and docker_network.needed(spec, hstate.spec):
            cur["docker_networks"] = self.docker.networks(set(docker_network.desired(spec)))
        return cur

    def _docker_hosts(self, spec, previous):
        """The blocks in the hosts files of the spec's running Docker containers (resolve_docker gave them their
        ``hosts_path``) and of the named Docker clients of the ``previous`` specs (the last applied one, ...) that
        left it (kinds.docker_hosts)."""
        out = {}
        for c in spec.get("containers", []):
            own = _own_hosts_file(c.get("docker_id"), c.get("hosts_path"))
            if c.get("kind") == "docker" and not c.get("absent") and own:
                out[c["docker_id"]] = {"container": c["name"], "path": c["hosts_path"],
                                       "entries": self.hosts_files.read_docker(c["hosts_path"])}
        refs = {c["docker"] for c in spec.get("containers", []) if c.get("kind") == "docker"}
        gone, seen = [], set(refs)
        for prev in previous if isinstance(previous, list) else [previous]:
            for c in docker_hosts.clients(prev):
                if c["docker"] not in seen:
                    seen.add(c["docker"])
                    gone.append(c)
        if gone and self.docker is not None:
            for c in gone:
                info = self.docker.container(c["docker"])
                if info and info["running"] and _own_hosts_file(info["id"], info["hosts_path"]) \
                        and info["id"] not in out:
                    out[info["id"]] = {"container": c["name"], "path": info["hosts_path"],
                                       "entries": self.hosts_files.read_docker(info["hosts_path"])}
        return out

    @staticmethod
    def ports_in_use():
        """({(protocol, port)} the host's sockets listen on, the kernel's ephemeral range) for automatic ports."""
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import sockets
        return sockets.listening(), sockets.ephemeral_range()

    def ports_published_by_others(self, spec, hstate):
        """{(protocol, port)} published on this host by others than the spec, for automatic ports (ports.resolve's
        ``extra``): by the endpoints of netstitch's Docker plugin (its state file) and by the running containers of
        the Docker Engine (`docker ps`; Docker's DNAT needs no listening socket when its userland proxy is off). The
        engine is asked when the spec involves Docker (it must answer, as for the rest of the run), else only when
        its socket is on this host, and then quietly skipped when it does not answer."""
        out = set()
        state = plugin_state.load(hstate.state_dir, spec["host"]) if hasattr(hstate, "state_dir") else None
        for rec in ((state or {}).get("endpoints") or {}).values():
            for p in rec.get("ports") or ():
                out.add((p["protocol"], p["host_port"]))
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import docker as docker_mod
        why = _docker_users(spec, hstate.spec, names=False)
        if why:
            return out | self.docker_engine(spec, why).published_ports()
        url = docker_mod.url_of(spec)
        if not url.startswith("unix://") or not os.path.exists(url[len("unix://"):]):
            return out
        try:
            engine = docker_mod.Engine(url, spec["host"], "automatic host ports")
        except ApplyError:
            return out      # no SDK, or no engine behind the socket
        try:
            return out | engine.published_ports()
        except ApplyError:
            return out
        finally:
            engine.close()

    def dns_driver(self, state_dir, host):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.dnsmasq import DnsMasq
        if self.dnsmasq is None:
            self.dnsmasq = DnsMasq(state_dir, host)
        return self.dnsmasq

    def bird_driver(self, state_dir, host):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers.bird import Bird
        if self.bird is None:
            self.bird = Bird(state_dir, host)
        return self.bird

    def _bgp_op(self, action):
        return self.bird.execute(action)

    def _dns_op(self, action):
        return self.dnsmasq.execute(action)

    def execute(self, action):
        """Carry out one action through the driver actions.OPS names for it."""
        return self._dispatch[OPS[action["op"]]](action)

    def _netlink(self, action):
        if action["op"] in ("netns_del", "netns_clear"):
            # the names netstitch gave the namespace go first (see HostsFiles.forget)
            try:
                self.hosts_files.forget(action["netns"])
            except OSError as e:
                raise ApplyError("%s: removing its names: %s" % (action["text"], e))
        self.netlink.execute(action)

    def _tinc_op(self, action):
        return self.tinc.execute(action, self.netlink)

    def _docker_op(self, action):
        return self.docker.execute(action)

    @property
    def writes(self):
        return {"netlink": self.netlink.writes, "nft": self.nft.writes, "tinc": self.tinc.writes if self.tinc else 0,
                "files": self.hosts_files.writes, "iptables": self.docker_user.writes,
                "docker": self.docker.writes if self.docker else 0, "dns": self.dnsmasq.writes if self.dnsmasq else 0,
                "bgp": self.bird.writes if self.bird else 0}


def _own_hosts_file(docker_id, path):
    """Whether ``path`` is a container's own hosts file, as Docker keeps it: <data root>/containers/<id>/hosts (never
    a file shared with anything else, such as the host's /etc/hosts)."""
    return bool(docker_id and path) and os.path.basename(path) == "hosts" and \
        os.path.basename(os.path.dirname(path)) == docker_id


def _docker_users(spec, previous=None, names=True):
    """What on this host needs the Docker Engine (for error messages), or "" when nothing does (``names=False``: not
    counting the link names left in the hosts files of Docker containers that have left the spec, which only a
    reachable engine can find)."""
    conts = [c["name"] for c in spec["containers"] if c["kind"] == "docker"]
    nets = sorted(set(docker_network.desired(spec)) | set(docker_network.desired(previous) if previous else ()))
    refs = {c["docker"] for c in spec["containers"] if c["kind"] == "docker"}
    # names netstitch wrote into the hosts files of Docker containers that have left the spec go too
    named = sorted(c["name"] for c in docker_hosts.clients(previous) if c["docker"] not in refs) if names else []
    parts = []
    if conts:
        parts.append("Docker container%s %s" % ("s" if len(conts) > 1 else "", ", ".join(conts)))
    if named:
        many = "s" if len(named) > 1 else ""
        parts.append("the link names in the hosts file%s of Docker container%s %s" % (many, many, ", ".join(named)))
    if nets:
        parts.append("Docker network%s %s" % ("s" if len(nets) > 1 else "", ", ".join(nets)))
    return " and ".join(parts)


def resolve_docker(host, spec, previous=None):
    """Connect to this host's Docker Engine when the spec (or the last one applied here) involves Docker, and point
    each Docker container at its network namespace for this run. Returns (spec for this run, warnings); a spec
    without Docker is returned as it is, and then neither the SDK nor the engine is needed."""
    why = _docker_users(spec, previous)
    if not why:
        host.docker = None
        return spec, []
    # the engine the spec names (none: the local one); only a spec with no Docker objects of its own, which is left
    # with cleaning up after the last one, uses the engine the last one named
    own = spec.get("docker_host") or not previous or _docker_users(spec, names=False)
    named = spec if own else dict(spec, docker_host=previous.get("docker_host"))
    if not _docker_users(spec, previous, names=False):
        # only names to take back from containers that left the spec: not worth failing a run (a teardown after
        # Docker went away) when the engine does not answer
        try:
            host.docker_engine(named, why)
        except ApplyError as e:
            host.docker = None
            return spec, ["%s; they are left as they are" % e]
        return spec, []
    engine = host.docker_engine(named, why)
    if not any(c["kind"] == "docker" for c in spec["containers"]):
        return spec, []
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import docker as docker_mod
    return docker_mod.resolve_containers(spec, engine)


def without_docker(host, spec):
    """The spec for a run that leaves Docker alone (at boot, before the Docker Engine runs), as resolve_docker
    returns it: its Docker containers are absent (not running yet; their leases and the host ends of their veths stay)
    and nothing is asked of the engine. The watcher, which starts after Docker, applies the whole spec."""
    if host.docker is not None:
        host.docker.close()
        host.docker = None
    out = dict(spec)
    out["containers"] = [dict(c, netns=None, absent=True) if c.get("kind") == "docker" else c
                         for c in spec["containers"]]
    return out, []
