"""Docker Engine driver: finds the network namespaces of Docker containers and keeps the Docker networks netstitch
offers in step with the spec. Imported only when a host's spec involves Docker (a ``kind: docker`` container or a
network with ``docker:``), so hosts without Docker need neither the SDK nor the engine.

netstitch talks to the engine named by the host's ``docker_host`` in the topology, else ``DOCKER_HOST``, else the
default socket. Everything here goes through the Docker Engine API (the SDK's low-level client); nothing reads
Docker's files or touches Docker's firewall.
"""

import os
import sys

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import faults
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import docker_network
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import LABEL_HOST
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError

DEFAULT_URL = "unix:///var/run/docker.sock"
TIMEOUT = 30


def url_of(spec):
    return spec.get("docker_host") or os.environ.get("DOCKER_HOST") or DEFAULT_URL


def _sdk(host, why):
    try:
        import docker
        import docker.errors   # noqa: F401
    except ImportError:
        raise ApplyError("host %s: the Docker SDK for Python (package 'docker'), needed for %s, is not installed "
                         "for %s (pip install docker)" % (host, why, sys.executable))
    return docker


class Engine(object):
    """One Docker Engine API client for one apply (or one watcher)."""

    def __init__(self, url, host, why):
        self.url = url
        self.host = host
        self.why = why
        self.writes = 0
        docker = _sdk(host, why)
        self.errors = docker.errors
        try:
            self.api = docker.APIClient(base_url=url, version="auto", timeout=TIMEOUT)
        except Exception as e:    # the SDK raises several kinds (DockerException, requests' ConnectionError)
            raise ApplyError("host %s: cannot reach the Docker Engine at %s, needed for %s: %s"
                             % (host, url, why, _short(e)))

    def close(self):
        try:
            self.api.close()
        except Exception:
            pass

    def _fail(self, what, e):
        return ApplyError("host %s: Docker Engine at %s: %s: %s" % (self.host, self.url, what, _short(e)))

    # -- containers --------------------------------------------------------------------------------------------------
    def container(self, ref):
        """{"id", "name", "running", "status", "pid", "hosts_path", "started_at"} of a container by name or id, or None
        when there is none (``hosts_path``: Docker's file that is the container's /etc/hosts, kinds.docker_hosts;
        ``started_at``: Docker's RFC 3339 time of its last start)."""
        try:
            d = self.api.inspect_container(ref)
        except self.errors.NotFound:
            return None
        except Exception as e:
            raise self._fail("inspecting container %s" % ref, e)
        st = d.get("State") or {}
        return {"id": d["Id"], "name": (d.get("Name") or "").lstrip("/"), "running": bool(st.get("Running")),
                "status": st.get("Status"), "pid": st.get("Pid") or 0, "hosts_path": d.get("HostsPath") or None,
                "started_at": st.get("StartedAt")}

    def published_ports(self):
        """{(protocol, port)} the engine's running containers publish on the host (`docker ps` PORTS), which an
        automatic host port must not take (ports.py)."""
        try:
            listed = self.api.containers()
        except Exception as e:
            raise self._fail("listing containers", e)
        return published_of(listed)

    # -- networks ----------------------------------------------------------------------------------------------------
    def networks(self, names):
        """The Docker networks named ``names`` and those netstitch made for this host (by label), as
        {name: docker_network view}."""
        try:
            listed = self.api.networks()
        except Exception as e:
            raise self._fail("listing networks", e)
        out = {}
        for n in listed:
            labels = n.get("Labels") or {}
            if n["Name"] in names or labels.get(LABEL_HOST) == self.host:
                try:
                    full = self.api.inspect_network(n["Id"])
                except self.errors.NotFound:
                    continue
                except Exception as e:
                    raise self._fail("inspecting network %s" % n["Name"], e)
                out[full["Name"]] = docker_network.view(full)
        return out

    def create_network(self, name, want):
        from docker.types import IPAMConfig, IPAMPool
        self.writes += 1
        faults.point("docker create network %s" % name)
        try:
            # a plugin's network: Docker calls the plugin (RequestPool, RequestAddress, CreateNetwork) before it
            # answers; the caller holds no lock the plugin takes (host.reconcile)
            pools = [IPAMPool(subnet=want["subnet"], iprange=want["ip_range"], gateway=want["gateway"])]
            if want.get("subnet6"):     # a dual-stack network (kinds.docker_network.desired)
                pools.append(IPAMPool(subnet=want["subnet6"], iprange=want.get("ip_range6"),
                                      gateway=want.get("gateway6")))
            self.api.create_network(
                name, driver=want["driver"], options=docker_network.options(want), labels=want["labels"],
                ipam=IPAMConfig(driver=want.get("ipam_driver"), pool_configs=pools),
                enable_ipv6=bool(want.get("ipv6")), check_duplicate=True)
        except Exception as e:
            raise self._fail("creating network %s" % name, e)

    def remove_network(self, name, disconnect=()):
        for c in disconnect:
            self.writes += 1
            faults.point("docker disconnect %s" % name)
            try:
                self.api.disconnect_container_from_network(c["id"], name, force=True)
            except self.errors.NotFound:
                pass
            except Exception as e:
                raise self._fail("disconnecting container %s from network %s" % (c["name"], name), e)
        self.writes += 1
        faults.point("docker remove network %s" % name)
        try:
            self.api.remove_network(name)
        except self.errors.NotFound:
            pass
        except Exception as e:
            raise self._fail("removing network %s" % name, e)

    def connect(self, name, c):
        self.writes += 1
        faults.point("docker connect %s" % name)
        try:
            self.api.connect_container_to_network(c["id"], name, ipv4_address=c.get("ipv4"),
                                                  ipv6_address=c.get("ipv6"))
        except Exception as e:
            kept = [a for a in (c.get("ipv4"), c.get("ipv6")) if a]
            raise self._fail("reconnecting container %s to network %s%s" % (
                c["name"], name, " with address %s" % " and ".join(kept) if kept else ""), e)

    def execute(self, action):
        op = action["op"]
        if op == "docker_net_create":
            self.create_network(action["name"], action["want"])
        elif op == "docker_net_remove":
            self.remove_network(action["name"], action["disconnect"])
        elif op == "docker_net_recreate":
            self.remove_network(action["name"], action["reconnect"])
            self.create_network(action["name"], action["want"])
            for c in action["reconnect"]:
                self.connect(action["name"], c)
        else:
            raise ValueError("not a Docker action: %r" % op)

    # -- events (netstitch watch) ------------------------------------------------------------------------------------
    def starts(self, since=None):
        """A blocking stream of the events after which a container needs netstitch again: its start (a new network
        namespace, and Docker writes its hosts file anew) and its connection to or disconnection from a Docker network
        (Docker edits its hosts file): {"id" (the container's), "name" (None for a network event), "time_nano",
        "action"}."""
        try:
            stream = self.api.events(decode=True, since=since,
                                     filters={"type": ["container", "network"],
                                              "event": ["start", "connect", "disconnect"]})
        except Exception as e:
            raise self._fail("subscribing to events", e)
        for ev in stream:
            actor = ev.get("Actor") or {}
            attrs = actor.get("Attributes") or {}
            when = ev.get("timeNano") or (ev.get("time") or 0) * 10 ** 9
            action = ev.get("Action") or ev.get("status") or "start"
            if ev.get("Type") == "network":
                if attrs.get("container"):
                    yield {"id": attrs["container"], "name": None, "time_nano": when, "action": action}
                continue
            yield {"id": actor.get("ID") or ev.get("id"), "name": attrs.get("name"), "time_nano": when,
                   "action": action}


def published_of(listed):
    """{(protocol, port)} of the host ports in a container listing (the engine's /containers/json)."""
    out = set()
    for c in listed or ():
        for p in c.get("Ports") or ():
            if p.get("PublicPort") and p.get("Type") in ("tcp", "udp"):
                out.add((p["Type"], int(p["PublicPort"])))
    return out


def _short(e):
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def resolve_containers(spec, engine):
    """Point each Docker container of a spec (a copy is returned) at its network namespace, /proc/<pid>/ns/net, for
    this run, and give a running one its Docker id and hosts file (``docker_id``, ``hosts_path``: kinds.docker_hosts).
    A container that does not exist or does not run is marked absent: its interfaces are left out of this run (a
    stopped container has no namespace to attach to; its veths went with it) but its address leases stay, so it gets
    the same addresses when it runs again. Returns (spec, warnings)."""
    warnings = []
    out = dict(spec)
    out["containers"] = []
    for c in spec["containers"]:
        if c["kind"] != "docker":
            out["containers"].append(c)
            continue
        c = dict(c)
        info = engine.container(c["docker"])
        path = "/proc/%d/ns/net" % info["pid"] if info and info["running"] and info["pid"] else None
        if path is not None and not os.path.exists(path):
            path = None     # it stopped a moment ago
        if path is None:
            c["netns"], c["absent"] = None, True
            if info is None:
                what = "there is no Docker container %r" % c["docker"]
            else:
                what = "Docker container %r is not running (%s)" % (c["docker"], info["status"] or "no process")
            warnings.append("containers.%s: %s on host %s (Docker Engine at %s); its interfaces are left out until it "
                            "runs (the next apply, or `netstitch watch`, attaches it with the same addresses)"
                            % (c["name"], what, spec["host"], engine.url))
        else:
            c["netns"] = path
            c["docker_id"], c["hosts_path"] = info["id"], info["hosts_path"]
        out["containers"].append(c)
    return out, warnings
