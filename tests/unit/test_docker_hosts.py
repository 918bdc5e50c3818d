"""Link names of Docker clients in Docker's own hosts file of the container (kinds.docker_hosts, the hosts-file
driver's in-place write, links.docker_names, what host.machine reads): pure parts and the driver on temporary files."""

import os
import types

from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch import actions, links, planner
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.drivers import hostsfile
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.host import machine
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.kinds import docker_hosts
from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.marks import HOSTS_BEGIN, HOSTS_END

# what Docker writes for a container (libnetwork etchosts.Build), and a line it appends on a network connect
DOCKER = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
          "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
APPENDED = "172.17.0.5\t1a2b3c4d5e6f\n"


def _file(tmp_path, text=DOCKER):
    p = str(tmp_path / "hosts")
    with open(p, "w") as f:
        f.write(text)
    return p


def _text(p):
    with open(p) as f:
        return f.read()


def test_the_block_is_written_in_place_and_docker_lines_stay(tmp_path):
    p = _file(tmp_path)
    ino = os.stat(p).st_ino
    with open(p) as seen:       # as the container's bind mount holds the file
        assert hostsfile.write_docker(p, [["198.51.100.7", "backend"], ["198.51.100.8", "cache"]])
        assert os.stat(p).st_ino == ino                 # the same file: not renamed over
        seen.seek(0)
        text = seen.read()
    assert text == DOCKER + "%s\n198.51.100.7\tbackend\n198.51.100.8\tcache\n%s\n" % (HOSTS_BEGIN, HOSTS_END)
    assert hostsfile.read_docker(p) == [["198.51.100.7", "backend"], ["198.51.100.8", "cache"]]


def test_a_line_docker_appends_after_the_block_stays_and_the_block_is_replaced(tmp_path):
    p = _file(tmp_path)
    hostsfile.write_docker(p, [["198.51.100.7", "backend"]])
    with open(p, "a") as f:
        f.write(APPENDED)       # Docker's etchosts.Add on a network connect
    hostsfile.write_docker(p, [["198.51.100.9", "db"]])
    assert _text(p) == DOCKER + APPENDED + "%s\n198.51.100.9\tdb\n%s\n" % (HOSTS_BEGIN, HOSTS_END)
    assert hostsfile.read_docker(p) == [["198.51.100.9", "db"]]


def test_no_entries_remove_the_block_and_leave_dockers_file(tmp_path):
    p = _file(tmp_path)
    hostsfile.write_docker(p, [["198.51.100.7", "backend"]])
    assert hostsfile.write_docker(p, [])
    assert _text(p) == DOCKER
    assert hostsfile.read_docker(p) == []       # a file without a block: nothing of netstitch's


def test_an_unchanged_block_is_not_written_again(tmp_path):
    p = _file(tmp_path)
    hostsfile.write_docker(p, [["198.51.100.7", "backend"]])
    before = os.stat(p).st_mtime_ns
    os.utime(p, ns=(before - 10 ** 9, before - 10 ** 9))
    hostsfile.write_docker(p, [["198.51.100.7", "backend"]])
    assert os.stat(p).st_mtime_ns == before - 10 ** 9


def test_a_container_that_is_gone_gets_no_file(tmp_path):
    p = str(tmp_path / "gone" / "hosts")
    assert hostsfile.read_docker(p) is None
    assert hostsfile.write_docker(p, [["198.51.100.7", "backend"]]) is False
    assert not os.path.exists(p)


def test_what_an_interrupted_shorter_write_leaves_is_harmless_and_cleaned_up(tmp_path):
    """The new text goes over the old one padded with newlines, then the file is cut: stopped in between, the file
    ends in blank lines (a hosts file ignores them), the block reads right, and the next write drops them."""
    block = "%s\n198.51.100.7\tbackend\n198.51.100.8\tcache\n%s\n" % (HOSTS_BEGIN, HOSTS_END)
    p = _file(tmp_path, DOCKER + block + "\n\n\n")
    assert hostsfile.read_docker(p) == [["198.51.100.7", "backend"], ["198.51.100.8", "cache"]]
    hostsfile.write_docker(p, [["198.51.100.7", "backend"]])
    assert _text(p) == DOCKER + "%s\n198.51.100.7\tbackend\n%s\n" % (HOSTS_BEGIN, HOSTS_END)


def test_the_files_driver_writes_a_docker_hosts_file(tmp_path):
    p = _file(tmp_path)
    drv = hostsfile.HostsFiles()
    drv.execute(actions.act("docker_hosts_write", "t", container="c", docker_id="0f", path=p,
                            entries=[["198.51.100.7", "backend"]]))
    assert drv.writes == 1 and drv.read_docker(p) == [["198.51.100.7", "backend"]]


# -- the pure side ----------------------------------------------------------------------------------------------
def _ref(container, host="h1"):
    return {"container": container, "host": host, "ifname": "eth0", "ip": None}


def _spec(links_=None):
    return {
        "host": "h1",
        "networks": [{"name": "iso", "subnet": "198.51.100.0/24", "isolated": True}],
        "containers": [
            {"name": "cli", "kind": "docker", "docker": "nst-cli", "netns": "/proc/7/ns/net", "docker_id": "c1",
             "hosts_path": "/d/c1/hosts", "interfaces": []},
            {"name": "idle", "kind": "docker", "docker": "nst-idle", "netns": None, "absent": True, "interfaces": []},
            {"name": "db", "kind": "netns", "netns": "db", "docker": None, "interfaces": []},
        ],
        "links": links_ if links_ is not None else [
            {"index": 0, "network": "iso", "protocol": "tcp", "ports": [], "name": "backend",
             "client": _ref("cli"), "server": _ref("db")},
            {"index": 1, "network": "iso", "protocol": "tcp", "ports": [], "name": "far",
             "client": _ref("cli"), "server": _ref("web", "h2")},
            {"index": 2, "network": "iso", "protocol": "tcp", "ports": [], "name": "sleepy",
             "client": _ref("idle"), "server": _ref("db")},
            {"index": 3, "network": "iso", "protocol": "tcp", "ports": [], "name": None,
             "client": _ref("cli"), "server": _ref("db")},
        ],
    }


ADDRESSES = {("db", "eth0"): "198.51.100.2", ("cli", "eth0"): "198.51.100.3"}
PEERS = {"h2": {"addresses": {"web/eth0": "198.51.100.20"}}}


def test_docker_names_are_the_named_links_of_this_hosts_docker_clients():
    assert links.docker_names(_spec(), ADDRESSES, PEERS) == {
        "cli": [["198.51.100.2", "backend"], ["198.51.100.20", "far"]], "idle": [["198.51.100.2", "sleepy"]]}
    # a server whose address is not known in this run is left out (resolve_links warns about it)
    assert links.docker_names(_spec(), ADDRESSES, {}) == {"cli": [["198.51.100.2", "backend"]],
                                                          "idle": [["198.51.100.2", "sleepy"]]}
    # netns clients keep their names in /etc/netns (links.resolve_links), not here
    assert links.resolve_links(_spec(), ADDRESSES, PEERS)[1] == {}


def _diff(spec, have):
    out = actions.Plan()
    ctx = planner.Context(spec, ADDRESSES, peers=PEERS, docker_names=links.docker_names(spec, ADDRESSES, PEERS))
    docker_hosts.diff({"netns": []}, {"docker_hosts": have}, out, ctx)
    return [(a["container"], a["path"], a["entries"]) for a in out.actions()], out.conflicts


def test_the_diff_writes_what_differs_and_only_for_running_containers_with_a_file():
    have = {"c1": {"container": "cli", "path": "/d/c1/hosts", "entries": []}}
    assert _diff(_spec(), have) == ([("cli", "/d/c1/hosts", [["198.51.100.2", "backend"], ["198.51.100.20", "far"]])],
                                    [])
    have["c1"]["entries"] = [["198.51.100.2", "backend"], ["198.51.100.20", "far"]]
    assert _diff(_spec(), have) == ([], [])
    have["c1"]["entries"] = None            # the file went with its container meanwhile: nothing to write
    assert _diff(_spec(), have) == ([], [])


def test_names_go_when_the_link_goes_and_with_a_container_that_left():
    have = {"c1": {"container": "cli", "path": "/d/c1/hosts", "entries": [["198.51.100.2", "backend"]]},
            "o9": {"container": "old", "path": "/d/o9/hosts", "entries": [["198.51.100.2", "db"]]},
            "e0": {"container": "empty", "path": "/d/e0/hosts", "entries": []}}
    assert _diff(_spec([]), have) == ([("cli", "/d/c1/hosts", []), ("old", "/d/o9/hosts", [])], [])


def test_clients_are_the_docker_containers_with_named_links_on_this_host():
    assert [c["name"] for c in docker_hosts.clients(_spec())] == ["cli", "idle"]
    assert docker_hosts.clients(None) == [] and docker_hosts.clients(_spec([])) == []


class _Engine(object):
    def __init__(self, containers):
        self.containers = containers
        self.asked = []

    def container(self, ref):
        self.asked.append(ref)
        return self.containers.get(ref)


def test_the_host_reads_the_spec_containers_and_the_named_clients_that_left(tmp_path):
    d1, d2 = tmp_path / "c1", tmp_path / "o9"
    d1.mkdir()
    d2.mkdir()
    cli, old = _file(d1), _file(d2)
    hostsfile.write_docker(old, [["198.51.100.2", "db"]])
    spec = _spec([])
    spec["containers"][0]["hosts_path"] = cli
    previous = _spec([{"index": 0, "network": "iso", "protocol": "tcp", "ports": [], "name": "db",
                       "client": _ref("old"), "server": _ref("db")}])
    previous["containers"].append({"name": "old", "kind": "docker", "docker": "nst-old", "interfaces": []})
    host = types.SimpleNamespace(hosts_files=hostsfile.HostsFiles(), docker=_Engine({
        "nst-old": {"id": "o9", "running": True, "hosts_path": old}}))
    got = machine.Host._docker_hosts(host, spec, previous)
    assert got == {"c1": {"container": "cli", "path": cli, "entries": []},
                   "o9": {"container": "old", "path": old, "entries": [["198.51.100.2", "db"]]}}
    assert host.docker.asked == ["nst-old"]         # only a named client that left; never any other container
    # the engine is wanted for it (and said so), also when the new spec has no Docker container at all
    assert "Docker container old" in machine._docker_users({"containers": [], "networks": []}, previous)
    assert machine._docker_users({"containers": [], "networks": []}, _spec([])) == ""
    assert machine._docker_users({"containers": [], "networks": []}, previous, names=False) == ""


def test_names_to_take_back_do_not_fail_a_run_when_the_engine_does_not_answer():
    """A teardown (or a spec without Docker) after Docker went away: the names left in containers that left the spec
    cannot be found without the engine, and that is said, not a failure."""
    from ansible_collections.netstitch.fabric.plugins.module_utils._netstitch.errors import ApplyError
    previous = _spec([{"index": 0, "network": "iso", "protocol": "tcp", "ports": [], "name": "db",
                       "client": _ref("cli"), "server": _ref("db")}])
    empty = {"host": "h1", "containers": [], "networks": []}

    class Host(object):
        docker = "stale"

        def docker_engine(self, spec, why):
            raise ApplyError("host h1: cannot reach the Docker Engine at unix:///x.sock, needed for %s: refused" % why)
    host = Host()
    spec, warnings = machine.resolve_docker(host, empty, previous)
    assert spec is empty and host.docker is None
    assert warnings == ["host h1: cannot reach the Docker Engine at unix:///x.sock, needed for the link names in the "
                        "hosts file of Docker container cli: refused; they are left as they are"]
    # a spec that has Docker containers itself still needs the engine
    try:
        machine.resolve_docker(host, previous, None)
    except ApplyError as e:
        assert "needed for Docker containers cli, idle" in str(e)
    else:
        raise AssertionError("resolve_docker went on without the engine")


def test_only_a_containers_own_hosts_file_is_read():
    """Docker keeps a container's hosts file at <data root>/containers/<id>/hosts: any other path (the host's
    /etc/hosts, say) is never read, so never written."""
    spec = _spec([])
    host = types.SimpleNamespace(hosts_files=hostsfile.HostsFiles(), docker=None)
    for bad in ("/etc/hosts", "/d/other/hosts", "/d/c1/hostname", ""):
        spec["containers"][0]["hosts_path"] = bad
        assert machine.Host._docker_hosts(host, spec, None) == {}, bad
    spec["containers"][0]["hosts_path"] = "/nonexistent-netstitch-test/c1/hosts"
    assert machine.Host._docker_hosts(host, spec, None) == {
        "c1": {"container": "cli", "path": "/nonexistent-netstitch-test/c1/hosts", "entries": None}}


def test_a_spec_with_docker_objects_of_its_own_uses_its_own_engine():
    """A spec that names no engine means the local one for its own containers; only a spec left with cleaning up after
    the last one (no Docker object of its own) goes to the engine the last one named."""
    previous = _spec()      # its Docker client has link names to take back once it leaves
    previous["docker_host"] = "unix:///elsewhere.sock"
    asked = []

    class Asked(Exception):
        pass

    class Host(object):
        docker = None

        def docker_engine(self, spec, why):
            asked.append(spec.get("docker_host"))
            raise Asked()
    own = _spec([])
    own.pop("docker_host", None)
    left = {"host": "h1", "containers": [], "networks": []}
    for spec in (own, left):
        try:
            machine.resolve_docker(Host(), spec, previous)
        except Asked:
            pass
    assert asked == [None, "unix:///elsewhere.sock"]
