"""netstitch watch: keep Docker containers attached (and their link names) across restarts.

A Docker container that restarts gets a new network namespace, and the interfaces netstitch gave it are gone; Docker
also writes the container's hosts file anew, without the link names netstitch keeps there (kinds.docker_hosts), and
edits it when it connects the container to a network or disconnects it. The watcher listens to the host's Docker
events and, when a container that the host's last applied spec names starts or is connected or disconnected, applies
that spec again (engine.apply with the spec and peers kept in the host state), which attaches the container
with the same addresses (leases key on container name and interface). It runs in the host's network namespace, takes
the host lock like any apply (so it serialises with Ansible runs), and re-reads the host state at every event, so a
later `apply` with a new topology is picked up without restarting it.

Missed events are covered by applying once at start and after every reconnection to the engine. Events that arrive
while an apply runs are covered by that apply when they are older than its start (one apply for a burst of starts).
"""

import calendar
import json
import signal
import sys
import time

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import engine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import NetstitchError

RETRY_MIN, RETRY_MAX = 0.5, 30.0


def _refs(spec):
    return {c["docker"]: c["name"] for c in (spec or {}).get("containers", []) if c.get("kind") == "docker"}


def _named(spec, ev):
    """The topology name of the container an event is about, or None when the spec does not name it."""
    for ref, name in _refs(spec).items():
        if ref == ev["name"] or (ev["id"] and len(ref) >= 12 and ev["id"].startswith(ref)):
            return name
    return None


def _about(spec, ev, eng):
    """_named, for a network event too: it gives the container's id only, and counts only for a running container
    connected or disconnected after it started (the connections Docker makes while it starts a container come before
    its start event, which covers them)."""
    if ev.get("action", "start") == "start":
        return _named(spec, ev)
    if not ev["id"] or not _refs(spec):
        return None
    info = eng.container(ev["id"])
    if info is None or not info["running"]:
        return None
    started = _nanoseconds(info.get("started_at"))
    if started is not None and ev["time_nano"] <= started:
        return None
    return _named(spec, dict(ev, name=info["name"]))


def _nanoseconds(rfc3339):
    """Docker's "2026-12-01T19:40:01.123456789Z" as nanoseconds since the epoch, or None."""
    try:
        base, _dot, frac = rfc3339.rstrip("Z").partition(".")
        secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        return secs * 10 ** 9 + int((frac or "0").ljust(9, "0")[:9])
    except (AttributeError, ValueError):
        return None


class Watcher(object):
    def __init__(self, host, state_dir, docker_host=None, out=None):
        self.host = host
        self.state_dir = state_dir
        self.docker_host = docker_host
        self.out = out or sys.stdout
        self.applied_at = 0          # time.time_ns() of the start of the last apply
        self.applies = 0

    def log(self, **kw):
        kw.setdefault("host", self.host)
        self.out.write(json.dumps(kw, sort_keys=True) + "\n")
        self.out.flush()

    def state(self):
        hs = engine.HostState(self.state_dir, self.host)
        return hs.spec, hs.peers

    def apply(self, why):
        spec, peers = self.state()
        if spec is None:
            self.log(event="skip", reason="nothing applied on this host yet", trigger=why)
            return
        self.applied_at = time.time_ns()
        t0 = time.monotonic()
        try:
            res = engine.apply(spec, state_dir=self.state_dir, peers=peers, probe_peers=False)
        except NetstitchError as e:
            self.log(event="error", trigger=why, error=str(e))
            return
        self.applies += 1
        self.log(event="applied", trigger=why, changed=res["changed"], actions=len(res["actions"]),
                 warnings=res["warnings"], seconds=round(time.monotonic() - t0, 3))

    def url(self):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import docker as docker_mod
        spec = self.state()[0]
        return self.docker_host or docker_mod.url_of(spec or {})

    def run(self):
        from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import docker as docker_mod
        delay = RETRY_MIN
        while True:
            url = self.url()
            try:
                eng = docker_mod.Engine(url, self.host, "netstitch watch")
                since = time.time()
                stream = eng.starts(since=since)
                self.log(event="watching", docker=url)
                self.apply("start of the watcher" if not self.applies else "reconnected to the Docker Engine")
                delay = RETRY_MIN
                for ev in stream:
                    spec = self.state()[0]
                    name = _about(spec, ev, eng)
                    if name is None:
                        continue
                    if ev["time_nano"] < self.applied_at:
                        continue     # the apply that just ran already saw it running
                    what = {"start": "started", "connect": "connected to a network",
                            "disconnect": "disconnected from a network"}.get(ev.get("action"), ev.get("action"))
                    self.apply("container %s (%s) %s" % (name, (ev["id"] or "")[:12], what))
                self.log(event="disconnected", docker=url, retry=delay)
            except NetstitchError as e:
                self.log(event="error", error=str(e), retry=delay)
            except Exception as e:   # the engine went away mid-stream (restart, socket closed)
                self.log(event="disconnected", docker=url, error="%s: %s" % (type(e).__name__, e), retry=delay)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)


def main(host, state_dir, docker_host=None):
    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    w = Watcher(host, state_dir, docker_host)
    try:
        w.run()
    except KeyboardInterrupt:
        pass
    return 0
