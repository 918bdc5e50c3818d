"""Kind: the names of linked servers in a Docker client's hosts file. Docker owns a container's /etc/hosts: it is
Docker's file HostsPath (/var/lib/docker/containers/<id>/hosts), bind-mounted into the container, which Docker
writes anew whenever it starts the container (and appends to when it connects it to a network). netstitch keeps
its marked block there (as kinds.hosts_file does in /etc/netns/<netns>/hosts), only in the hosts files of the
spec's own Docker containers: written in place (drivers.hostsfile.write_docker), read back for the diff, emptied
when the names go, and written again after Docker rewrote the file (the next apply, or `netstitch watch`, which
applies at each start of one of the spec's containers).

The current state, ``current["docker_hosts"]``: {Docker container id: {"container", "path", "entries"}} for the
running Docker containers of this run's spec (host.machine reads their HostsPath from Docker, drivers.docker) and of
the last applied spec (names of a container that left the topology go too); "entries" is [[ip, name], ...] (empty:
no block) or None when the file is gone."""

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.actions import act

KEY = None


def clients(spec):
    """The Docker containers of a spec that are the client of a named link: [container], by topology name."""
    spec = spec or {}
    named = {ln["client"]["container"] for ln in spec.get("links", [])
             if ln.get("name") and ln["client"]["host"] == spec.get("host")}
    return [c for c in spec.get("containers", []) if c.get("kind") == "docker" and c["name"] in named]


def diff(desired_state, current, out, ctx):
    """``ctx.docker_names``: {container: [[ip, name]]} from links.docker_names."""
    have = current.get("docker_hosts") or {}
    mine = set()
    for c in ctx.spec.get("containers", []):
        if c.get("kind") != "docker" or c.get("absent") or not c.get("docker_id"):
            continue
        mine.add(c["docker_id"])
        h = have.get(c["docker_id"])
        want = ctx.docker_names.get(c["name"], [])
        if h is None or h["entries"] is None or h["entries"] == want:
            continue        # not read (no names ever), or the file is gone with its container
        out.add("files", _write(c["name"], c["docker_id"], h["path"], want))
    for cid, h in sorted(have.items()):
        # a Docker container that left the topology (or a run stopped half-way) keeps no names of netstitch's
        if cid not in mine and h["entries"]:
            out.add("files", _write(h["container"], cid, h["path"], []))


def _write(container, cid, path, entries):
    return act("docker_hosts_write", "write names in the hosts file of Docker container %s: %s" % (
        container, ", ".join("%s=%s" % (n, ip) for ip, n in entries) or "none"),
        container=container, docker_id=cid, path=path, entries=entries)
